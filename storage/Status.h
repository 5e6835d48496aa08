#pragma once
// What `segnode status` shows, read in one go: rows per state of series, jobs and outbox, and the
// last errors (job reasons, failed deliveries, refusals).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "storage/Db.h"

namespace segnode::storage {

struct NodeStatus {
  std::map<std::string, int64_t> series, jobs, outbox;  // state -> rows
  std::vector<std::string> lastErrors;                   // newest first, at most 10
};

NodeStatus readStatus(SQLite::Database& db);

// `segnode audit`: the audit trail (migration 005) from `sinceMs` on, oldest first.
struct AuditEntry {
  int64_t atMs = 0;
  std::string event, peer, subject, outcome, detail;
};
std::vector<AuditEntry> readAudit(SQLite::Database& db, int64_t sinceMs, int limit);

}  // namespace segnode::storage
