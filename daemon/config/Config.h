#pragma once
// segnoded's configuration (etc/segnode.yaml), loaded into a validated struct. Every problem is
// reported with the file, the key and the fix, all at once (segnoded --check-config).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace segnode::config {

struct Peer {
  std::string aeTitle;  // calling AE title the peer uses
  std::string host;     // IP address or host name it connects from
};

struct NodeConfig {
  std::filesystem::path file;
  // dicom:
  std::string aeTitle = "SEGNODE";
  uint16_t port = 11112;
  int maxAssociations = 8;
  uint32_t maxPdu = 131072;
  int acseTimeoutSeconds = 30;
  int dimseTimeoutSeconds = 60;
  std::vector<Peer> peers;
  bool acceptUnknownPeers = false;
  std::vector<std::string> sopClasses;  // UIDs
  // storage:
  std::filesystem::path spoolDir = "var/spool";
  std::filesystem::path database = "var/segnode.db";
  uint64_t minFreeBytes = uint64_t(1) << 30;
  double retentionHours = 72;
  // series:
  double quietPeriodSeconds = 10;
  // logging:
  std::string logLevel = "info";
};

// Throws segnode::Error(BadConfig) whose message lists every problem, one per line.
NodeConfig loadConfig(const std::filesystem::path& file);

// Storage SOP classes by the names the config accepts (mr, enhanced_mr, ct, enhanced_ct, ...).
const std::vector<std::pair<std::string, std::string>>& knownSopClasses();

}  // namespace segnode::config
