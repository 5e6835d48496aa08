#pragma once
// segnoded's configuration (etc/segnode.yaml), loaded into a validated struct. Every problem is
// reported with the file, the key and the fix, all at once (segnoded --check-config).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/TlsOptions.h"

namespace segnode::config {

struct Peer {
  std::string aeTitle;  // calling AE title the peer uses
  std::string host;     // IP address or host name it connects from
};

struct Destination {
  std::string name;  // referred to by routes
  std::string aeTitle, host;
  uint16_t port = 104;
  std::optional<TlsOptions> tls;  // set: send over TLS, verifying the destination's certificate
};

// A route matches a ready series when every given criterion holds (absent ones match anything).
struct RouteMatch {
  std::string modality, bodyPart;      // exact, case-insensitive
  std::string seriesDescriptionRegex;  // ECMAScript, case-insensitive, searched anywhere
  std::string imageTypeContains;       // a value of ImageType, e.g. ORIGINAL
  std::string sopClassUid;
  int minSlices = 0;
  std::string callingAe;
};

struct Route {
  std::string name;
  RouteMatch match;
  std::string model;                      // name or name@version
  std::vector<std::string> destinations;  // Destination names
  // on_implausible: what to do with a result outside its model's plausibility ranges
  // (engine/Plausibility.h): reject (the default: record why, send nothing) or send_flagged.
  bool sendImplausible = false;
};

struct RetryPolicy {  // exponential backoff per destination, then dead letter
  double baseSeconds = 5, capSeconds = 300;
  int maxAttempts = 8;
  double delaySeconds(int attempts) const;  // before attempt number attempts + 1
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
  std::optional<TlsOptions> tls;        // dicom.tls: set, the port speaks TLS only
  std::string uidRoot;                  // dicom.uid_root: the organisation's root for new UIDs ("" = 2.25.UUID)
  // storage:
  std::filesystem::path spoolDir = "var/spool";
  std::filesystem::path database = "var/segnode.db";
  uint64_t minFreeBytes = uint64_t(1) << 30;
  uint64_t maxDatasetBytes = uint64_t(2048) << 20;  // one received data set
  double retentionHours = 72;
  // series:
  double quietPeriodSeconds = 10;
  // processing:
  std::filesystem::path modelsDir = "etc/models";
  std::filesystem::path siteModelsDir;  // a second models directory (the site's own bundles); "" = none
  std::filesystem::path outputDir = "var/out";  // DICOM-SEG files waiting to be sent
  int workers = 0;                              // 0: sized from the machine (workerCount())
  int threadsPerWorker = 0;                     // 0: cores / workers
  int maxJobAttempts = 2;                       // a job the process died in this often fails (poison series)
  double stopTimeoutSeconds = 60;               // at SIGTERM, a running job past this is stopped and re-queued
  std::string precision = "auto";               // auto (measured per CPU and bundle), fp32, bf16 or int8 (pinned)
  double tileStep = 0;                          // sliding-window step; 0: each bundle's (measured) default
  int64_t maxVoxels = 160'000'000;              // a larger series is refused at routing (512 x 512 x 600 fits)
  std::vector<Route> routes;
  std::vector<Destination> destinations;
  RetryPolicy retry;
  // http: /healthz /readyz /metrics /api/* (docs/admin.md)
  std::string httpAddress = "127.0.0.1";
  uint16_t httpPort = 8104;  // 0: no HTTP endpoint
  // logging:
  std::string logLevel = "info";
};

// Throws segnode::Error(BadConfig) whose message lists every problem, one per line.
NodeConfig loadConfig(const std::filesystem::path& file);

// SIGHUP applies dicom.peers, dicom.accept_unknown_peers, routes, destinations, retry and
// logging.level; every other key takes effect at the next start. The keys that differ, by name.
std::vector<std::string> keysNeedingRestart(const NodeConfig& running, const NodeConfig& next);

// Where the workers cache the precision measured per CPU and bundle: beside the database.
std::filesystem::path precisionCacheFile(const NodeConfig& c);

// The documented sizing rule: one worker per 4 cores (at least one), and no more than one per
// 6 GiB of memory; each worker gets cores / workers intra-op threads.
int workerCount(const NodeConfig& c);
int threadsPerWorker(const NodeConfig& c);

// Storage SOP classes by the names the config accepts (mr, enhanced_mr, ct, enhanced_ct, ...).
const std::vector<std::pair<std::string, std::string>>& knownSopClasses();

}  // namespace segnode::config
