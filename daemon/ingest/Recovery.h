#pragma once
// Start-up recovery (DESIGN §3): half-written temp files are removed, the database and the spool
// are checked against each other. (Interrupted jobs are re-queued by storage::Jobs.)
#include <filesystem>
#include <functional>

#include "common/InstanceHeader.h"
#include "storage/Index.h"
#include "storage/Spool.h"

namespace segnode::ingest {

struct RecoveryReport {
  int tempFilesRemoved = 0;
  int rowsWithoutFile = 0;   // rows dropped: their file is gone
  int filesReindexed = 0;    // complete files (renamed into place) whose row was not yet committed
  int filesSuperseded = 0;   // removed: another copy of the same SOP instance is the indexed one
  int filesUnreadable = 0;   // moved aside to <spool>/.quarantine
};

using HeaderReader = std::function<InstanceHeader(const std::filesystem::path&)>;

RecoveryReport recover(storage::Spool& spool, storage::Index& index, const HeaderReader& readHeader);

}  // namespace segnode::ingest
