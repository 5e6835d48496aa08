#include "storage/Jobs.h"

#include "storage/Db.h"
#include "storage/Sql.h"

namespace segnode::storage {
namespace {

constexpr const char* kJobColumns =
    "SELECT id, series_uid, route, model, state, COALESCE(reason, ''), generation, seg_series_uid, seg_sop_uid,"
    " COALESCE(seg_path, ''), seg_series_number FROM jobs";

Job readJob(SQLite::Statement& q) {
  Job j;
  j.id = q.getColumn(0).getInt64();
  j.seriesUid = q.getColumn(1).getString();
  j.route = q.getColumn(2).getString();
  j.model = q.getColumn(3).getString();
  j.state = q.getColumn(4).getString();
  j.reason = q.getColumn(5).getString();
  j.generation = q.getColumn(6).getInt64();
  j.segSeriesUid = q.getColumn(7).getString();
  j.segSopUid = q.getColumn(8).getString();
  j.segPath = q.getColumn(9).getString();
  j.segSeriesNumber = q.getColumn(10).getInt64();
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
  o.state = q.getColumn(4).getString();
  o.lastError = q.getColumn(5).getString();
  o.attempts = q.getColumn(6).getInt();
  o.nextAttemptMs = q.getColumn(7).getInt64();
  return o;
}

}  // namespace

Job Jobs::create(const std::string& seriesUid, int64_t generation, const std::string& route, const std::string& model,
                 const std::string& segSeriesUid, const std::string& segSopUid) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  // A superseding SEG gets the next series number after the one it replaces.
  SQLite::Statement num(db_, "SELECT COALESCE((SELECT MAX(seg_series_number) + 1 FROM jobs WHERE series_uid = :s),"
                             " 1000 + COALESCE((SELECT series_number FROM series WHERE series_uid = :s), 0))");
  num.bind(":s", seriesUid);
  num.executeStep();
  int64_t number = num.getColumn(0).getInt64();
  SQLite::Statement sup(db_, "UPDATE jobs SET state = 'superseded', finished_ms = COALESCE(finished_ms, ?) "
                             "WHERE series_uid = ? AND state IN ('queued', 'done', 'failed', 'rejected')");
  sup.bind(1, nowMs());
  sup.bind(2, seriesUid);
  sup.exec();
  SQLite::Statement ins(db_, "INSERT INTO jobs (series_uid, generation, route, model, seg_series_uid, seg_sop_uid,"
                             " seg_series_number, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  ins.bind(1, seriesUid);
  ins.bind(2, generation);
  ins.bind(3, route);
  ins.bind(4, model);
  ins.bind(5, segSeriesUid);
  ins.bind(6, segSopUid);
  ins.bind(7, number);
  ins.bind(8, nowMs());
  ins.exec();
  Job j;
  j.id = db_.getLastInsertRowid();
  SQLite::Statement ser(db_, "UPDATE series SET state = 'processing', note = NULL WHERE series_uid = ? AND state = 'ready'");
  ser.bind(1, seriesUid);
  ser.exec();
  tx.commit();
  j.seriesUid = seriesUid;
  j.generation = generation;
  j.route = route;
  j.model = model;
  j.state = "queued";
  j.segSeriesUid = segSeriesUid;
  j.segSopUid = segSopUid;
  j.segSeriesNumber = number;
  return j;
}

void Jobs::noRoute(const std::string& seriesUid, const std::string& note) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement u(db_, "UPDATE series SET state = 'done', done_ms = ?, note = ? WHERE series_uid = ? AND state = 'ready'");
  u.bind(1, nowMs());
  u.bind(2, note);
  u.bind(3, seriesUid);
  u.exec();
}

std::optional<Job> Jobs::claimNext() {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement q(db_, std::string(kJobColumns) + " WHERE state = 'queued' ORDER BY id LIMIT 1");
  if (!q.executeStep()) return std::nullopt;
  Job j = readJob(q);
  SQLite::Statement u(db_, "UPDATE jobs SET state = 'running', started_ms = ? WHERE id = ?");
  u.bind(1, nowMs());
  u.bind(2, j.id);
  u.exec();
  tx.commit();
  j.state = "running";
  return j;
}

std::string Jobs::finish(int64_t jobId, const std::string& state, const std::string& reason, const std::string& segPath,
                         const std::string& timingsJson, const std::vector<std::string>& destinations) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement newer(db_, "SELECT COUNT(*) FROM jobs j, jobs me WHERE me.id = ? AND j.series_uid = me.series_uid"
                               " AND j.id > me.id");
  newer.bind(1, jobId);
  newer.executeStep();
  std::string finalState = newer.getColumn(0).getInt() > 0 ? "superseded" : state;
  SQLite::Statement u(db_, "UPDATE jobs SET state = ?, reason = ?, seg_path = ?, timings = ?, finished_ms = ? WHERE id = ?");
  u.bind(1, finalState);
  bindText(u, 2, reason);
  bindText(u, 3, segPath);
  u.bind(4, timingsJson);
  u.bind(5, nowMs());
  u.bind(6, jobId);
  u.exec();
  if (finalState == "done") {
    for (const auto& d : destinations) {
      SQLite::Statement o(db_, "INSERT INTO outbox (job_id, destination, next_attempt_ms) VALUES (?, ?, ?)");
      o.bind(1, jobId);
      o.bind(2, d);
      o.bind(3, nowMs());
      o.exec();
    }
  }
  if (finalState != "superseded") {
    SQLite::Statement s(db_, "UPDATE series SET state = 'done', done_ms = ?, note = ? WHERE state = 'processing'"
                             " AND series_uid = (SELECT series_uid FROM jobs WHERE id = ?)");
    s.bind(1, nowMs());
    bindText(s, 2, reason.empty() ? std::string() : finalState + ": " + reason);
    s.bind(3, jobId);
    s.exec();
  }
  tx.commit();
  return finalState;
}

int Jobs::requeueRunning() {
  std::lock_guard<std::mutex> lock(mutex_);
  return db_.exec("UPDATE jobs SET state = 'queued', started_ms = NULL WHERE state = 'running'");
}

std::vector<Job> Jobs::list(const std::string& state, int limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, std::string(kJobColumns) + (state.empty() ? "" : " WHERE state = :state") +
                               " ORDER BY id DESC LIMIT :limit");
  if (!state.empty()) q.bind(":state", state);
  q.bind(":limit", limit);
  std::vector<Job> out;
  while (q.executeStep()) out.push_back(readJob(q));
  return out;
}

std::optional<OutboxItem> Jobs::nextDue(const std::string& destination, int64_t now) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, std::string(kOutboxColumns) +
                               " WHERE o.destination = ? AND o.state = 'pending' AND o.next_attempt_ms <= ?"
                               " ORDER BY o.next_attempt_ms, o.id LIMIT 1");
  q.bind(1, destination);
  q.bind(2, now);
  if (q.executeStep()) return readOutbox(q);
  return std::nullopt;
}

std::optional<int64_t> Jobs::nextAttemptMs(const std::string& destination) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, "SELECT MIN(next_attempt_ms) FROM outbox WHERE destination = ? AND state = 'pending'");
  q.bind(1, destination);
  if (q.executeStep() && !q.getColumn(0).isNull()) return q.getColumn(0).getInt64();
  return std::nullopt;
}

void Jobs::markSent(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement u(db_, "UPDATE outbox SET state = 'sent', sent_ms = ?, attempts = attempts + 1 WHERE id = ?");
  u.bind(1, nowMs());
  u.bind(2, id);
  u.exec();
}

void Jobs::markFailed(int64_t id, const std::string& error, int64_t next, bool dead) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement u(db_, "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_ms = ?,"
                           " state = CASE WHEN ? THEN 'dead' ELSE 'pending' END WHERE id = ?");
  u.bind(1, error);
  u.bind(2, next);
  u.bind(3, dead ? 1 : 0);
  u.bind(4, id);
  u.exec();
}

std::vector<OutboxItem> Jobs::outbox(const std::string& state, int limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement q(db_, std::string(kOutboxColumns) + (state.empty() ? "" : " WHERE o.state = :state") +
                               " ORDER BY o.id DESC LIMIT :limit");
  if (!state.empty()) q.bind(":state", state);
  q.bind(":limit", limit);
  std::vector<OutboxItem> out;
  while (q.executeStep()) out.push_back(readOutbox(q));
  return out;
}

int Jobs::retryJob(int64_t jobId) {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement u(db_, "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_ms = ? "
                           "WHERE job_id = ? AND state IN ('dead', 'pending')");
  u.bind(1, nowMs());
  u.bind(2, jobId);
  return u.exec();
}

int Jobs::retryDead() {
  std::lock_guard<std::mutex> lock(mutex_);
  SQLite::Statement u(db_, "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_ms = ? WHERE state = 'dead'");
  u.bind(1, nowMs());
  return u.exec();
}

}  // namespace segnode::storage
