#pragma once
// What `segnode status` shows, read in one go: rows per state of series, jobs and outbox, and the
// last errors (job reasons, failed deliveries, refusals).
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "storage/Db.h"
#include "storage/Jobs.h"

namespace segnode::storage {

struct NodeStatus {
  std::map<std::string, int64_t> series, jobs, outbox;  // state -> rows
  int64_t oldestQueuedMs = 0;                            // created_ms of the oldest queued job; 0: none
  std::vector<std::string> lastErrors;                   // newest first, at most 10
};

NodeStatus readStatus(SQLite::Database& db);

// The one JSON shape of a status and of a job, for `segnode status|jobs --json` and /api/*.
nlohmann::json toJson(const NodeStatus& status);
nlohmann::json toJson(const Job& job);

// Whether the database takes writes now: takes the write lock (BEGIN IMMEDIATE) and rolls back.
// False with the reason (read-only file system, disk I/O error, locked past the busy timeout).
bool probeWritable(SQLite::Database& db, std::string& why);

// `segnode audit`: the audit trail (migration 005) from `sinceMs` on, oldest first.
struct AuditEntry {
  int64_t atMs = 0;
  std::string event, peer, subject, outcome, detail;
};
std::vector<AuditEntry> readAudit(SQLite::Database& db, int64_t sinceMs, int limit);

}  // namespace segnode::storage
