#pragma once
// Receive side of the node (DESIGN §3): who may send, and "store durably, then acknowledge".
// Called by the DICOM layer from its association threads.
#include <filesystem>
#include <functional>
#include <string>

#include "common/GroupCommit.h"

#include "daemon/config/Config.h"
#include "daemon/ingest/ReceivedInstance.h"
#include "daemon/ingest/SeriesTracker.h"
#include "storage/Index.h"
#include "storage/Spool.h"

namespace segnode::ingest {

class IngestService {
 public:
  IngestService(const config::NodeConfig& config, storage::Spool& spool, storage::Index& index, SeriesTracker& tracker);

  // Allowlist: the called AE must be ours, the calling AE listed with the host it connects from.
  enum class PeerCheck { Allowed, WrongCalledAe, UnknownCallingAe, WrongHost };
  PeerCheck checkPeer(const Association& a, std::string& reason) const;

  // Disk watermark, checked before the data is received so nothing is written when space is low.
  bool hasRoomFor(uint64_t bytes, std::string& reason) const;

  // `tempFile` holds the received instance (in the spool's .tmp); `instance` its header. Moves
  // it into the spool, fsync'd, commits the row and only then returns success.
  StoreStatus store(const Association& a, ReceivedInstance instance, const std::filesystem::path& tempFile);

  void refuse(const Association& a, const std::string& sopInstanceUid, const std::string& reason);
  const storage::Spool& spool() const { return spool_; }

 private:
  const config::NodeConfig& config_;
  storage::Spool& spool_;
  storage::Index& index_;
  SeriesTracker& tracker_;
  // Rows from concurrent associations share one transaction and one syncfs (group commit).
  GroupCommit<storage::InstanceRecord, storage::StoreOutcome> rows_;
};

}  // namespace segnode::ingest
