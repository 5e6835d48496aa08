#include "storage/Jobs.h"

#include <algorithm>

#include "common/Error.h"
#include <nlohmann/json.hpp>
#include "storage/Db.h"
#include "storage/Sql.h"

namespace segnode::storage {
namespace {
using namespace transition;

constexpr const char* kJobColumns =
    "SELECT id, series_uid, route, model, state, COALESCE(reason, ''), generation, seg_series_uid, seg_sop_uid,"
    " COALESCE(seg_path, ''), seg_series_number, COALESCE(destinations, '[]'), attempts,"
    " COALESCE(on_implausible, 'reject'), confidence, COALESCE(plausibility, '') FROM jobs";

std::string toJson(const std::vector<std::string>& names) { return nlohmann::json(names).dump(); }

std::vector<std::string> fromJson(const std::string& text) {
  return nlohmann::json::parse(text).get<std::vector<std::string>>();
}

Job readJob(SQLite::Statement& q) {
  Job j;
  j.id = q.getColumn(0).getInt64();
  j.seriesUid = q.getColumn(1).getString();
  j.route = q.getColumn(2).getString();
  j.model = q.getColumn(3).getString();
  j.state = stateFromSql<JobState>(q.getColumn(4).getString());
  j.reason = q.getColumn(5).getString();
  j.generation = q.getColumn(6).getInt64();
  j.segSeriesUid = q.getColumn(7).getString();
  j.segSopUid = q.getColumn(8).getString();
  j.segPath = q.getColumn(9).getString();
  j.segSeriesNumber = q.getColumn(10).getInt64();
  j.destinations = fromJson(q.getColumn(11).getString());
  j.attempts = q.getColumn(12).getInt();
  j.sendImplausible = q.getColumn(13).getString() == "send_flagged";
  if (!q.getColumn(14).isNull()) j.confidence = q.getColumn(14).getDouble();
  j.plausibility = q.getColumn(15).getString();
  return j;
}

constexpr const char* kOutboxColumns =
    "SELECT o.id, o.job_id, o.destination, COALESCE(j.seg_path, ''), o.state, COALESCE(o.last_error, ''), o.attempts,"
    " o.next_attempt_ms FROM outbox o JOIN jobs j ON j.id = o.job_id";

OutboxItem readOutbox(SQLite::Statement& q) {
  OutboxItem o;
  o.id = q.getColumn(0).getInt64();
  o.jobId = q.getColumn(1).getInt64();
  o.destination = q.getColumn(2).getString();
  o.segPath = q.getColumn(3).getString();
  o.state = stateFromSql<OutboxState>(q.getColumn(4).getString());
  o.lastError = q.getColumn(5).getString();
  o.attempts = q.getColumn(6).getInt();
  o.nextAttemptMs = q.getColumn(7).getInt64();
  return o;
}

}  // namespace

Job Jobs::create(const std::string& seriesUid, int64_t generation, const std::string& route, const std::string& model,
                 const std::vector<std::string>& destinations, const std::string& segSeriesUid,
                 const std::string& segSopUid, bool sendImplausible) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  // A superseding SEG gets the next series number after the one it replaces.
  SQLite::Statement num(db_, "SELECT COALESCE((SELECT MAX(seg_series_number) + 1 FROM jobs WHERE series_uid = :s),"
                             " 1000 + COALESCE((SELECT series_number FROM series WHERE series_uid = :s), 0))");
  num.bind(":s", seriesUid);
  num.executeStep();
  int64_t number = num.getColumn(0).getInt64();
  static const std::string supersede =
      sqlMove("jobs", kJobSupersededWaiting, ", finished_ms = COALESCE(finished_ms, ?)", "series_uid = ?");
  SQLite::Statement sup(db_, supersede);
  sup.bind(1, nowMs());
  sup.bind(2, seriesUid);
  sup.exec();
  SQLite::Statement ins(db_, "INSERT INTO jobs (series_uid, generation, route, model, seg_series_uid, seg_sop_uid,"
                             " seg_series_number, created_ms, destinations, on_implausible)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  ins.bind(1, seriesUid);
  ins.bind(2, generation);
  ins.bind(3, route);
  ins.bind(4, model);
  ins.bind(5, segSeriesUid);
  ins.bind(6, segSopUid);
  ins.bind(7, number);
  ins.bind(8, nowMs());
  ins.bind(9, toJson(destinations));
  ins.bind(10, sendImplausible ? "send_flagged" : "reject");
  ins.exec();
  Job j;
  j.id = db_.getLastInsertRowid();
  static const std::string routed = sqlMove("series", kSeriesRouted, ", note = NULL", "series_uid = ?");
  SQLite::Statement ser(db_, routed);
  ser.bind(1, seriesUid);
  ser.exec();
  tx.commit();
  j.seriesUid = seriesUid;
  j.generation = generation;
  j.route = route;
  j.model = model;
  j.state = JobState::Queued;
  j.segSeriesUid = segSeriesUid;
  j.segSopUid = segSopUid;
  j.segSeriesNumber = number;
  j.destinations = destinations;
  j.sendImplausible = sendImplausible;
  return j;
}

int Jobs::fillLegacyDestinations(
    const std::function<std::optional<std::vector<std::string>>(const std::string&)>& routeDestinations) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(db_, "SELECT id, route FROM jobs WHERE destinations IS NULL");
  std::vector<std::pair<int64_t, std::string>> legacy;
  while (q.executeStep()) legacy.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getString());
  for (const auto& [id, route] : legacy) {
    SQLite::Statement u(db_, "UPDATE jobs SET destinations = ? WHERE id = ?");
    u.bind(1, toJson(routeDestinations(route).value_or(std::vector<std::string>{})));
    u.bind(2, id);
    u.exec();
  }
  tx.commit();
  return int(legacy.size());
}

void Jobs::closeUnprocessed(const std::string& seriesUid, const std::string& note) {
  std::lock_guard<std::mutex> lock(mutex_);
  static const std::string closed = sqlMove("series", kSeriesNotProcessed, ", done_ms = ?, note = ?", "series_uid = ?");
  SQLite::Statement u(db_, closed);
  u.bind(1, nowMs());
  u.bind(2, note);
  u.bind(3, seriesUid);
  u.exec();
}

std::optional<Job> Jobs::claimNext() {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(db_, std::string(kJobColumns) + " WHERE state IN (" + kJobClaimed.fromList() + ") ORDER BY id LIMIT 1");
  if (!q.executeStep()) return std::nullopt;
  Job j = readJob(q);
  static const std::string claim = sqlMove("jobs", kJobClaimed, ", started_ms = ?, attempts = attempts + 1", "id = ?");
  SQLite::Statement u(db_, claim);
  u.bind(1, nowMs());
  u.bind(2, j.id);
  u.exec();
  tx.commit();
  j.state = kJobClaimed.to;
  ++j.attempts;
  return j;
}

JobState Jobs::finish(int64_t jobId, JobState outcome, const std::string& reason, const std::string& segPath,
                      const std::string& timingsJson, std::optional<double> confidence, const std::string& plausibility) {
  if (outcome != JobState::Done && outcome != JobState::Failed && outcome != JobState::Rejected)
    throw Error(ErrorCode::InvalidArgument, std::string("a job cannot finish as ") + sqlName(outcome));
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement newer(db_, "SELECT COUNT(*) FROM jobs j, jobs me WHERE me.id = ? AND j.series_uid = me.series_uid"
                               " AND j.id > me.id");
  newer.bind(1, jobId);
  newer.executeStep();
  const JobState finalState = newer.getColumn(0).getInt() > 0 ? JobState::Superseded : outcome;
  const auto& t = *std::find_if(kJobFinished.begin(), kJobFinished.end(), [&](const auto& x) { return x.to == finalState; });
  SQLite::Statement u(db_, sqlMove("jobs", t, ", reason = ?, seg_path = ?, timings = ?, finished_ms = ?, confidence = ?,"
                                             " plausibility = ?", "id = ?"));
  bindText(u, 1, reason);
  bindText(u, 2, segPath);
  u.bind(3, timingsJson);
  u.bind(4, nowMs());
  if (confidence) u.bind(5, *confidence);
  else u.bind(5);
  bindText(u, 6, plausibility);
  u.bind(7, jobId);
  if (u.exec() != 1) throw Error(ErrorCode::Internal, "job " + std::to_string(jobId) + " is not running");
  if (finalState == JobState::Done) {
    SQLite::Statement dq(db_, "SELECT COALESCE(destinations, '[]') FROM jobs WHERE id = ?");
    dq.bind(1, jobId);
    dq.executeStep();
    for (const auto& d : fromJson(dq.getColumn(0).getString())) {
      SQLite::Statement o(db_, "INSERT INTO outbox (job_id, destination, next_attempt_ms) VALUES (?, ?, ?)");
      o.bind(1, jobId);
      o.bind(2, d);
      o.bind(3, nowMs());
      o.exec();
    }
  }
  if (finalState != JobState::Superseded) {
    static const std::string finished =
        sqlMove("series", kSeriesFinished, ", done_ms = ?, note = ?", "series_uid = (SELECT series_uid FROM jobs WHERE id = ?)");
    SQLite::Statement s(db_, finished);
    s.bind(1, nowMs());
    bindText(s, 2, reason.empty() ? std::string() : std::string(sqlName(finalState)) + ": " + reason);
    s.bind(3, jobId);
    s.exec();
  }
  tx.commit();
  return finalState;
}

Jobs::Requeued Jobs::requeueRunning(int maxAttempts) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  const std::string reason = "the process ended while this job ran, " + std::to_string(maxAttempts) +
                             " times (processing.max_job_attempts): not retried";
  static const std::string seriesDone = sqlMove("series", kSeriesFinished, ", done_ms = ?, note = ?",
                                                "series_uid IN (SELECT series_uid FROM jobs WHERE state = '" +
                                                    std::string(sqlName(kJobGivenUp.from[0])) + "' AND attempts >= ?)");
  SQLite::Statement series(db_, seriesDone);
  series.bind(1, nowMs());
  series.bind(2, std::string(sqlName(kJobGivenUp.to)) + ": " + reason);
  series.bind(3, maxAttempts);
  series.exec();
  SQLite::Statement fail(db_, sqlMove("jobs", kJobGivenUp, ", reason = ?, finished_ms = ?", "attempts >= ?"));
  fail.bind(1, reason);
  fail.bind(2, nowMs());
  fail.bind(3, maxAttempts);
  Requeued r;
  r.givenUp = fail.exec();
  r.requeued = db_.exec(sqlMove("jobs", kJobRequeued, ", started_ms = NULL", "1"));
  tx.commit();
  return r;
}

void Jobs::release(int64_t jobId) {
  std::lock_guard<std::mutex> lock(mutex_);
  static const std::string release = sqlMove("jobs", kJobReleased, ", started_ms = NULL, attempts = MAX(attempts - 1, 0)", "id = ?");
  SQLite::Statement u(db_, release);
  u.bind(1, jobId);
  if (u.exec() != 1) throw Error(ErrorCode::Internal, "job " + std::to_string(jobId) + " is not running");
}

std::vector<Job> Jobs::list(std::optional<JobState> state, int limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, std::string(kJobColumns) + (state ? " WHERE state = :state" : "") +
                               " ORDER BY id DESC LIMIT :limit");
  if (state) q.bind(":state", sqlName(*state));
  q.bind(":limit", limit);
  std::vector<Job> out;
  while (q.executeStep()) out.push_back(readJob(q));
  return out;
}

std::optional<OutboxItem> Jobs::nextDue(const std::string& destination, int64_t now) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, std::string(kOutboxColumns) +
                               " WHERE o.destination = ? AND o.state = '" + sqlName(OutboxState::Pending) +
                               "' AND o.next_attempt_ms <= ?"
                               " ORDER BY o.next_attempt_ms, o.id LIMIT 1");
  q.bind(1, destination);
  q.bind(2, now);
  if (q.executeStep()) return readOutbox(q);
  return std::nullopt;
}

std::optional<int64_t> Jobs::nextAttemptMs(const std::string& destination) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, std::string("SELECT MIN(next_attempt_ms) FROM outbox WHERE destination = ? AND state = '") +
                               sqlName(OutboxState::Pending) + "'");
  q.bind(1, destination);
  if (q.executeStep() && !q.getColumn(0).isNull()) return q.getColumn(0).getInt64();
  return std::nullopt;
}

std::vector<std::pair<int64_t, std::string>> Jobs::deliveredSegsBefore(int64_t cutoffMs) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, "SELECT id, seg_path FROM jobs WHERE seg_path IS NOT NULL AND finished_ms < ? AND NOT EXISTS"
                           " (SELECT 1 FROM outbox o WHERE o.job_id = jobs.id AND o.state != '" +
                               std::string(sqlName(OutboxState::Sent)) + "')");
  q.bind(1, cutoffMs);
  std::vector<std::pair<int64_t, std::string>> out;
  while (q.executeStep()) out.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getString());
  return out;
}

void Jobs::forgetSeg(int64_t jobId) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement u(db_, "UPDATE jobs SET seg_path = NULL WHERE id = ?");
  u.bind(1, jobId);
  u.exec();
}

namespace {
// The audit row of one delivery attempt, written in the transaction that records its outcome.
void auditDelivery(SQLite::Database& db, int64_t outboxId, const char* outcome, const std::string& detail) {
  SQLite::Statement a(db, "INSERT INTO audit (at_ms, event, peer, subject, outcome, detail)"
                          " SELECT ?, 'delivery', o.destination, 'job ' || o.job_id || ', SEG ' || j.seg_sop_uid, ?, ?"
                          " FROM outbox o JOIN jobs j ON j.id = o.job_id WHERE o.id = ?");
  a.bind(1, nowMs());
  a.bind(2, outcome);
  bindText(a, 3, detail);
  a.bind(4, outboxId);
  a.exec();
}
}  // namespace

void Jobs::markSent(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  static const std::string sent = sqlMove("outbox", kOutboxSent, ", sent_ms = ?, attempts = attempts + 1", "id = ?");
  SQLite::Statement u(db_, sent);
  u.bind(1, nowMs());
  u.bind(2, id);
  u.exec();
  auditDelivery(db_, id, "sent", "");
  tx.commit();
}

void Jobs::markFailed(int64_t id, const std::string& error, int64_t next, bool dead) {
  std::lock_guard<std::mutex> lock(mutex_);
  static const std::string failed =
      sqlMove("outbox", kOutboxFailed, ", attempts = attempts + 1, last_error = ?, next_attempt_ms = ?", "id = ?");
  static const std::string deadLetter =
      sqlMove("outbox", kOutboxDead, ", attempts = attempts + 1, last_error = ?, next_attempt_ms = ?", "id = ?");
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement u(db_, dead ? deadLetter : failed);
  u.bind(1, error);
  u.bind(2, next);
  u.bind(3, id);
  u.exec();
  auditDelivery(db_, id, dead ? "dead" : "failed", error);
  tx.commit();
}

int Jobs::deadLetterUnknown(const std::vector<std::string>& configured) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string known;
  for (size_t i = 0; i < configured.size(); ++i) known += (known.empty() ? "?" : ", ?");
  SQLite::Statement u(db_, sqlMove("outbox", kOutboxDead, ", last_error = 'destination ' || destination ||"
                                                       " ' is not in the configuration'",
                                known.empty() ? "1" : "destination NOT IN (" + known + ")"));
  int i = 1;
  for (const auto& d : configured) u.bind(i++, d);
  return u.exec();
}

std::vector<OutboxItem> Jobs::outbox(std::optional<OutboxState> state, int limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, std::string(kOutboxColumns) + (state ? " WHERE o.state = :state" : "") +
                               " ORDER BY o.id DESC LIMIT :limit");
  if (state) q.bind(":state", sqlName(*state));
  q.bind(":limit", limit);
  std::vector<OutboxItem> out;
  while (q.executeStep()) out.push_back(readOutbox(q));
  return out;
}

int Jobs::retryJob(int64_t jobId) {
  std::lock_guard<std::mutex> lock(mutex_);
  static const std::string retry = sqlMove("outbox", kOutboxRetried, ", attempts = 0, next_attempt_ms = ?", "job_id = ?");
  SQLite::Statement u(db_, retry);
  u.bind(1, nowMs());
  u.bind(2, jobId);
  return u.exec();
}

int Jobs::retryDead() {
  std::lock_guard<std::mutex> lock(mutex_);
  static const std::string retryDead = sqlMove("outbox", kOutboxRevived, ", attempts = 0, next_attempt_ms = ?", "1");
  SQLite::Statement u(db_, retryDead);
  u.bind(1, nowMs());
  return u.exec();
}

}  // namespace segnode::storage
