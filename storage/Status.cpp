#include "storage/Status.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <nlohmann/json.hpp>

#include "storage/Lifecycle.h"

namespace segnode::storage {
namespace {

std::map<std::string, int64_t> countByState(SQLite::Database& db, const std::string& table) {
  std::map<std::string, int64_t> counts;
  SQLite::Statement q(db, "SELECT state, COUNT(*) FROM " + table + " GROUP BY state");
  while (q.executeStep()) counts[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
  return counts;
}

}  // namespace

NodeStatus readStatus(SQLite::Database& db) {
  NodeStatus s;
  s.series = countByState(db, "series");
  s.jobs = countByState(db, "jobs");
  s.outbox = countByState(db, "outbox");
  SQLite::Statement oldest(db, "SELECT COALESCE(MIN(created_ms), 0) FROM jobs WHERE state = '" +
                                   std::string(sqlName(JobState::Queued)) + "'");
  if (oldest.executeStep()) s.oldestQueuedMs = oldest.getColumn(0).getInt64();
  SQLite::Statement q(db, "SELECT 'job ' || id || ': ' || state || ': ' || reason FROM jobs WHERE reason IS NOT NULL"
                          " UNION ALL SELECT 'outbox ' || id || ' (job ' || job_id || ' -> ' || destination || '): '"
                          " || last_error FROM outbox WHERE last_error IS NOT NULL AND state != '" +
                              std::string(sqlName(OutboxState::Sent)) + "'"
                          " UNION ALL SELECT 'refused: ' || reason FROM (SELECT reason FROM refusals ORDER BY id DESC LIMIT 3)"
                          " LIMIT 10");
  while (q.executeStep()) s.lastErrors.push_back(q.getColumn(0).getString());
  return s;
}

nlohmann::json toJson(const NodeStatus& s) {
  return {{"series", s.series}, {"jobs", s.jobs}, {"outbox", s.outbox}, {"oldest_queued_ms", s.oldestQueuedMs},
          {"last_errors", s.lastErrors}};
}

nlohmann::json toJson(const Job& j) {
  return {{"id", j.id},
          {"series_uid", j.seriesUid},
          {"generation", j.generation},
          {"route", j.route},
          {"model", j.model},
          {"state", sqlName(j.state)},
          {"reason", j.reason},
          {"seg_series_uid", j.segSeriesUid},
          {"seg_series_number", j.segSeriesNumber},
          {"destinations", j.destinations},
          {"on_implausible", j.sendImplausible ? "send_flagged" : "reject"},
          {"confidence", j.confidence ? nlohmann::json(*j.confidence) : nlohmann::json(nullptr)},
          {"plausibility", j.plausibility}};
}

bool probeWritable(SQLite::Database& db, std::string& why) {
  try {
    db.exec("BEGIN IMMEDIATE");
    db.exec("ROLLBACK");
    return true;
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
}

std::vector<AuditEntry> readAudit(SQLite::Database& db, int64_t sinceMs, int limit) {
  SQLite::Statement q(db, "SELECT at_ms, event, peer, COALESCE(subject, ''), outcome, COALESCE(detail, '') FROM audit"
                          " WHERE at_ms >= ? ORDER BY id LIMIT ?");
  q.bind(1, sinceMs);
  q.bind(2, limit);
  std::vector<AuditEntry> out;
  while (q.executeStep())
    out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getString(), q.getColumn(3).getString(),
                   q.getColumn(4).getString(), q.getColumn(5).getString()});
  return out;
}

}  // namespace segnode::storage
