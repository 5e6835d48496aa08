#pragma once
// Receive side of the node (DESIGN §3): who may send, and "store durably, then acknowledge".
// The DICOM listener calls it, as its StoreHandler, from its association threads.
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/GroupCommit.h"

#include "daemon/config/Config.h"
#include "daemon/dicom/StoreHandler.h"
#include "daemon/routing/SeriesAssembler.h"
#include "storage/Index.h"
#include "storage/Spool.h"

namespace segnode::ingest {

class IngestService : public dicom::StoreHandler {
 public:
  // Puts renamed files and committed rows on disk before any C-STORE is acknowledged: the node's
  // is storage::syncFilesystems; a test injects one that records what each flush covered.
  using Flusher = std::function<void(const std::vector<std::filesystem::path>&)>;
  IngestService(const config::NodeConfig& config, storage::Spool& spool, storage::Index& index,
                routing::SeriesAssembler& assembler, Flusher flush = storage::syncFilesystems);

  // Allowlist: the called AE must be ours, the calling AE listed with the host it connects from.
  PeerCheck checkPeer(const dicom::Association& a, std::string& reason) const override;
  // The size bound of one data set (storage.max_dataset_mb) and the disk watermark (storage.min_free_mb).
  bool hasRoomFor(uint64_t receivedBytes, std::string& reason) const override;
  std::filesystem::path newTempPath() override { return spool_.newTempPath(); }
  // `tempFile` is in the spool's .tmp. Moves it into the spool, fsync'd, commits the row and only
  // then returns success.
  dicom::StoreStatus store(const dicom::Association& a, dicom::ReceivedInstance instance,
                           const std::filesystem::path& tempFile) override;
  void refuse(const dicom::Association& a, const std::string& sopInstanceUid, Refusal kind, const std::string& reason) override;
  void accepted(const dicom::Association& a) override;
  // SIGHUP: who may send from now on (associations already accepted go on).
  void setPeers(std::vector<config::Peer> peers, bool acceptUnknownPeers);

 private:
  const config::NodeConfig& config_;  // its dicom.peers are read at start only: peers_ holds them
  mutable std::mutex peersMutex_;
  std::vector<config::Peer> peers_;
  bool acceptUnknownPeers_ = false;
  storage::Spool& spool_;
  storage::Index& index_;
  routing::SeriesAssembler& assembler_;
  Flusher flush_;
  // Rows from concurrent associations share one transaction and one syncfs (group commit).
  GroupCommit<storage::InstanceRecord, storage::Stored> rows_;
};

}  // namespace segnode::ingest
