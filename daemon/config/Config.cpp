#include "daemon/config/Config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "common/Error.h"
#include "common/Log.h"
#include "common/Uid.h"
#include "common/Yaml.h"

namespace segnode::config {

const std::vector<std::pair<std::string, std::string>>& knownSopClasses() {
  static const std::vector<std::pair<std::string, std::string>> all = {
      {"mr", "1.2.840.10008.5.1.4.1.1.4"},
      {"enhanced_mr", "1.2.840.10008.5.1.4.1.1.4.1"},
      {"ct", "1.2.840.10008.5.1.4.1.1.2"},
      {"enhanced_ct", "1.2.840.10008.5.1.4.1.1.2.1"},
      {"legacy_converted_enhanced_mr", "1.2.840.10008.5.1.4.1.1.4.4"},
      {"legacy_converted_enhanced_ct", "1.2.840.10008.5.1.4.1.1.2.2"},
  };
  return all;
}

namespace {

bool isAeTitle(const std::string& ae) {
  if (ae.empty() || ae.size() > 16) return false;
  for (char c : ae)
    if (c < 0x20 || c > 0x7e || c == '\\') return false;
  return ae.find_first_not_of(' ') != std::string::npos;
}

void readProcessing(yaml::Reader& k, NodeConfig& c) {
  std::string models = c.modelsDir.string(), output = c.outputDir.string();
  k.read("processing.models_dir", models, "a directory path");
  k.read("processing.output_dir", output, "a directory path");
  c.modelsDir = models;
  c.outputDir = output;
  std::string site;
  k.read("processing.site_models_dir", site, "a directory path");
  c.siteModelsDir = site;
  k.read("processing.workers", c.workers, "an integer (0: sized from the machine)");
  k.read("processing.threads_per_worker", c.threadsPerWorker, "an integer (0: cores / workers)");
  if (c.workers < 0 || c.workers > 64) k.problem("processing.workers", "must be 0..64", "use 0 to size from the machine");
  if (c.threadsPerWorker < 0 || c.threadsPerWorker > 256) k.problem("processing.threads_per_worker", "must be 0..256", "use 0");
  k.read("processing.max_job_attempts", c.maxJobAttempts, "an integer");
  if (c.maxJobAttempts < 1 || c.maxJobAttempts > 100) k.problem("processing.max_job_attempts", "must be 1..100", "use 2");
  k.read("processing.precision", c.precision, "auto, fp32, bf16 or int8");
  if (c.precision != "auto" && c.precision != "fp32" && c.precision != "bf16" && c.precision != "int8")
    k.problem("processing.precision", "'" + c.precision + "' is not a precision", "use auto (measured on this CPU), fp32, bf16 or int8");
  k.read("processing.tile_step", c.tileStep, "a fraction of the tile (0: each bundle's)");
  if (c.tileStep != 0 && !(c.tileStep >= 0.1 && c.tileStep <= 1.0))
    k.problem("processing.tile_step", "must be 0 or 0.1..1", "use 0: each bundle's default, measured against its Dice guard");
  k.read("processing.stop_timeout_s", c.stopTimeoutSeconds, "a number of seconds");
  if (!(c.stopTimeoutSeconds >= 0 && c.stopTimeoutSeconds <= 3600))
    k.problem("processing.stop_timeout_s", "must be 0..3600", "use 60, and TimeoutStopSec in the unit above it");
  k.read("processing.max_voxels", c.maxVoxels, "an integer");
  if (c.maxVoxels < 1) k.problem("processing.max_voxels", "must be >= 1", "use 160000000 (a 512 x 512 x 600 CT is 157 million)");
  k.read("retry.base_s", c.retry.baseSeconds, "seconds");
  k.read("retry.cap_s", c.retry.capSeconds, "seconds");
  k.read("retry.max_attempts", c.retry.maxAttempts, "an integer");
  if (!(c.retry.baseSeconds > 0) || c.retry.capSeconds < c.retry.baseSeconds)
    k.problem("retry", "needs 0 < base_s <= cap_s", "use base_s: 5, cap_s: 300");
  if (c.retry.maxAttempts < 1) k.problem("retry.max_attempts", "must be >= 1", "use 8");
}

// dicom.tls (listening: our certificate and key required) or destinations[i].tls (sending: the
// CAs that sign the PACS's certificate required; ours only if the PACS asks for one).
std::optional<TlsOptions> readTls(yaml::Reader& k, const std::string& key, bool listening) {
  if (!k.has(key)) return std::nullopt;
  k.unknownKeys(key, {"certificate", "private_key", "trusted_certificates", "min_version", "require_client_certificate"});
  TlsOptions t;
  k.read(key + ".certificate", t.certificate, "a PEM file path");
  k.read(key + ".private_key", t.privateKey, "a PEM file path");
  t.trusted = k.list<std::string>(key + ".trusted_certificates", "a PEM file or a directory of them");
  k.read(key + ".min_version", t.minVersion, "1.2 or 1.3");
  if (listening) k.read(key + ".require_client_certificate", t.requirePeerCertificate, "true or false");
  if (t.minVersion != "1.2" && t.minVersion != "1.3") k.problem(key + ".min_version", "'" + t.minVersion + "' is not 1.2 or 1.3", "use \"1.2\"");
  if (listening && (t.certificate.empty() || t.privateKey.empty()))
    k.problem(key, "needs certificate and private_key to listen with TLS", "give the node's PEM certificate and key");
  if (t.certificate.empty() != t.privateKey.empty())
    k.problem(key, "certificate and private_key go together", "give both, or neither");
  if ((!listening || t.requirePeerCertificate) && t.trusted.empty())
    k.problem(key + ".trusted_certificates", listening ? "is empty: no client certificate could be trusted" : "is empty: the PACS could not be verified",
              "list the CA certificate (PEM) that signs the peers' certificates");
  const std::pair<const char*, const std::string*> files[] = {{"certificate", &t.certificate}, {"private_key", &t.privateKey}};
  for (const auto& [name, path] : files)
    if (!path->empty() && !std::filesystem::is_regular_file(*path))
      k.problem(key + "." + name, "'" + *path + "' is not a readable file", "give the path of a PEM file");
  for (size_t i = 0; i < t.trusted.size(); ++i)
    if (!std::filesystem::exists(t.trusted[i]))
      k.problem(yaml::Reader::item(key + ".trusted_certificates", i), "'" + t.trusted[i] + "' does not exist", "give a PEM file or a directory");
  return t;
}

void readDestinations(yaml::Reader& k, NodeConfig& c) {
  const std::string example = "{name: pacs, ae_title: PACS, host: 10.0.0.5, port: 104}";
  for (size_t i = 0, n = k.size("destinations", "- " + example); i < n; ++i) {
    std::string key = yaml::Reader::item("destinations", i);
    k.unknownKeys(key, {"name", "ae_title", "host", "port", "tls"});
    if (!k.has(key + ".name") || !k.has(key + ".ae_title") || !k.has(key + ".host") || !k.has(key + ".port")) {
      k.problem(key, "needs name, ae_title, host and port", "write " + example);
      continue;
    }
    Destination dest;
    int port = 0;
    k.read(key + ".name", dest.name, "a name");
    k.read(key + ".ae_title", dest.aeTitle, "an AE title");
    k.read(key + ".host", dest.host, "an IP address or host name");
    if (k.read(key + ".port", port, "a TCP port number") && (port < 1 || port > 65535))
      k.problem(key + ".port", "must be 1..65535", "give the PACS's DICOM port");
    dest.port = uint16_t(port);
    dest.tls = readTls(k, key + ".tls", /*listening=*/false);
    if (!isAeTitle(dest.aeTitle)) k.problem(key + ".ae_title", "'" + dest.aeTitle + "' is not an AE title", "use 1-16 printable characters");
    for (const auto& other : c.destinations)
      if (other.name == dest.name) k.problem(key + ".name", "'" + dest.name + "' is used twice", "give each destination its own name");
    c.destinations.push_back(dest);
  }
}

void readMatch(yaml::Reader& k, const std::string& key, RouteMatch& m) {
  k.unknownKeys(key, {"modality", "body_part", "series_description", "image_type_contains", "sop_class", "min_slices", "calling_ae"});
  k.read(key + ".modality", m.modality, "a DICOM modality such as MR");
  k.read(key + ".body_part", m.bodyPart, "a DICOM body part such as BRAIN");
  k.read(key + ".series_description", m.seriesDescriptionRegex, "a regular expression");
  k.read(key + ".image_type_contains", m.imageTypeContains, "an ImageType value such as ORIGINAL");
  k.read(key + ".calling_ae", m.callingAe, "an AE title");
  k.read(key + ".sop_class", m.sopClassUid, "a SOP class name or UID");
  for (const auto& [name, uid] : knownSopClasses())
    if (m.sopClassUid == name) m.sopClassUid = uid;
  k.read(key + ".min_slices", m.minSlices, "an integer");
  try {
    std::regex test(m.seriesDescriptionRegex, std::regex::icase);
  } catch (const std::regex_error& e) {
    k.problem(key + ".series_description", std::string("not a valid regular expression: ") + e.what(), "fix the pattern");
  }
}

void readRoutes(yaml::Reader& k, NodeConfig& c) {
  static const std::regex modelRe("[a-z0-9][a-z0-9._-]*(@[0-9]+\\.[0-9]+\\.[0-9]+)?");
  for (size_t i = 0, n = k.size("routes", "see etc/segnode.yaml"); i < n; ++i) {
    std::string key = yaml::Reader::item("routes", i);
    k.unknownKeys(key, {"name", "match", "model", "destinations", "on_implausible"});
    if (!k.has(key + ".name") || !k.has(key + ".model") || !k.has(key + ".destinations")) {
      k.problem(key, "needs name, model, destinations (and optionally match)", "see etc/segnode.yaml");
      continue;
    }
    Route route;
    k.read(key + ".name", route.name, "a name");
    k.read(key + ".model", route.model, "NAME or NAME@X.Y.Z");
    if (!std::regex_match(route.model, modelRe))
      k.problem(key + ".model", "'" + route.model + "' is not NAME or NAME@X.Y.Z", "name an installed bundle (segnode models)");
    route.destinations = k.list<std::string>(key + ".destinations", "a destination name");
    if (route.destinations.empty()) k.problem(key + ".destinations", "must list at least one destination", "e.g. [pacs]");
    for (const auto& d : route.destinations) {
      bool known = false;
      for (const auto& dest : c.destinations) known |= dest.name == d;
      if (!known) k.problem(key + ".destinations", "'" + d + "' is not defined under destinations", "add it or fix the name");
    }
    std::string onImplausible = "reject";
    if (k.has(key + ".on_implausible")) k.read(key + ".on_implausible", onImplausible, "reject or send_flagged");
    if (onImplausible != "reject" && onImplausible != "send_flagged")
      k.problem(key + ".on_implausible", "'" + onImplausible + "' is not reject or send_flagged",
                "reject (record why, send nothing) or send_flagged (send the SEG marked IMPLAUSIBLE)");
    route.sendImplausible = onImplausible == "send_flagged";
    readMatch(k, key + ".match", route.match);
    c.routes.push_back(route);
  }
}

void readPeers(yaml::Reader& k, NodeConfig& c) {
  for (size_t i = 0, n = k.size("dicom.peers", "- {ae_title: PACS, host: 10.0.0.5}"); i < n; ++i) {
    std::string key = yaml::Reader::item("dicom.peers", i);
    k.unknownKeys(key, {"ae_title", "host"});
    if (!k.has(key + ".ae_title") || !k.has(key + ".host")) {
      k.problem(key, "needs ae_title and host", "write {ae_title: PACS, host: 10.0.0.5}");
      continue;
    }
    Peer p;
    k.read(key + ".ae_title", p.aeTitle, "an AE title");
    k.read(key + ".host", p.host, "an IP address or host name");
    if (!isAeTitle(p.aeTitle)) k.problem(key + ".ae_title", "'" + p.aeTitle + "' is not an AE title", "use 1-16 printable characters");
    if (p.host.empty()) k.problem(key + ".host", "is empty", "give the peer's IP address or host name");
    c.peers.push_back(p);
  }
  if (c.peers.empty() && !c.acceptUnknownPeers)
    k.problem("dicom.peers", "no peer may send: every association would be refused",
              "list the PACS under dicom.peers (or set accept_unknown_peers: true on a closed network)");
}

void readSopClasses(yaml::Reader& k, NodeConfig& c) {
  std::vector<std::string> sop{"mr", "enhanced_mr", "ct", "enhanced_ct"};
  if (k.has("dicom.sop_classes")) sop = k.list<std::string>("dicom.sop_classes", "a SOP class name or UID");
  static const std::regex uidRe("[0-9]+(\\.[0-9]+)+");
  for (const auto& s : sop) {
    std::string uid;
    for (const auto& [name, value] : knownSopClasses())
      if (s == name) uid = value;
    if (uid.empty() && std::regex_match(s, uidRe)) uid = s;
    if (uid.empty()) {
      std::string names;
      for (const auto& kv : knownSopClasses()) names += (names.empty() ? "" : ", ") + kv.first;
      k.problem("dicom.sop_classes", "'" + s + "' is neither a known name nor a UID", "use " + names + " or a SOP class UID");
    } else c.sopClasses.push_back(uid);
  }
}

}  // namespace

double RetryPolicy::delaySeconds(int attempts) const {
  double d = baseSeconds * std::pow(2.0, std::max(0, attempts - 1));
  return std::min(d, capSeconds);
}

void readHttp(yaml::Reader& k, NodeConfig& c) {
  k.read("http.address", c.httpAddress, "an IP address");
  unsigned char addr[16];
  if (inet_pton(AF_INET, c.httpAddress.c_str(), addr) != 1 && inet_pton(AF_INET6, c.httpAddress.c_str(), addr) != 1)
    k.problem("http.address", "'" + c.httpAddress + "' is not an IP address", "use 127.0.0.1 (monitoring on this host) or the address a scraper reaches");
  int port = c.httpPort;
  k.read("http.port", port, "a TCP port number");
  if (port < 0 || port > 65535) k.problem("http.port", "must be 0..65535, got " + std::to_string(port), "use 8104, or 0 to turn HTTP off");
  c.httpPort = uint16_t(port);
}

std::vector<std::string> keysNeedingRestart(const NodeConfig& a, const NodeConfig& b) {
  std::vector<std::string> keys;
  auto same = [&](bool equal, const char* key) {
    if (!equal) keys.push_back(key);
  };
  auto tlsKey = [](const std::optional<TlsOptions>& t) {
    if (!t) return std::string();
    std::string k = t->certificate + "|" + t->privateKey + "|" + t->minVersion + "|" + (t->requirePeerCertificate ? "1" : "0");
    for (const auto& f : t->trusted) k += "|" + f;
    return k;
  };
  same(a.aeTitle == b.aeTitle, "dicom.ae_title");
  same(a.port == b.port, "dicom.port");
  same(a.maxAssociations == b.maxAssociations, "dicom.max_associations");
  same(a.maxPdu == b.maxPdu, "dicom.max_pdu");
  same(a.acseTimeoutSeconds == b.acseTimeoutSeconds, "dicom.acse_timeout_s");
  same(a.dimseTimeoutSeconds == b.dimseTimeoutSeconds, "dicom.dimse_timeout_s");
  same(a.sopClasses == b.sopClasses, "dicom.sop_classes");
  same(tlsKey(a.tls) == tlsKey(b.tls), "dicom.tls");
  same(a.uidRoot == b.uidRoot, "dicom.uid_root");
  same(a.spoolDir == b.spoolDir, "storage.spool_dir");
  same(a.database == b.database, "storage.database");
  same(a.minFreeBytes == b.minFreeBytes, "storage.min_free_mb");
  same(a.maxDatasetBytes == b.maxDatasetBytes, "storage.max_dataset_mb");
  same(a.retentionHours == b.retentionHours, "storage.retention_hours");
  same(a.quietPeriodSeconds == b.quietPeriodSeconds, "series.quiet_period_s");
  same(a.modelsDir == b.modelsDir, "processing.models_dir");
  same(a.siteModelsDir == b.siteModelsDir, "processing.site_models_dir");
  same(a.outputDir == b.outputDir, "processing.output_dir");
  same(a.workers == b.workers, "processing.workers");
  same(a.threadsPerWorker == b.threadsPerWorker, "processing.threads_per_worker");
  same(a.maxJobAttempts == b.maxJobAttempts, "processing.max_job_attempts");
  same(a.maxVoxels == b.maxVoxels, "processing.max_voxels");
  same(a.stopTimeoutSeconds == b.stopTimeoutSeconds, "processing.stop_timeout_s");
  same(a.precision == b.precision, "processing.precision");
  same(a.tileStep == b.tileStep, "processing.tile_step");
  same(a.httpAddress == b.httpAddress, "http.address");
  same(a.httpPort == b.httpPort, "http.port");
  return keys;
}

std::filesystem::path precisionCacheFile(const NodeConfig& c) {
  return (c.database.parent_path().empty() ? std::filesystem::path(".") : c.database.parent_path()) / "precision-cache.json";
}

int workerCount(const NodeConfig& c) {
  if (c.workers > 0) return c.workers;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  double memGiB = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE)) / double(1ull << 30);
  return int(std::max<long>(1, std::min<long>(cores / 4, long(memGiB / 6))));
}

int threadsPerWorker(const NodeConfig& c) {
  if (c.threadsPerWorker > 0) return c.threadsPerWorker;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return int(std::max<long>(1, cores / workerCount(c)));
}

NodeConfig loadConfig(const std::filesystem::path& file) {
  yaml::Reader k(file, ErrorCode::BadConfig);
  NodeConfig c;
  c.file = file;
  k.unknownKeys("", {"dicom", "storage", "series", "logging", "processing", "destinations", "routes", "retry", "http"});
  k.unknownKeys("processing", {"models_dir", "output_dir", "workers", "threads_per_worker", "max_job_attempts", "max_voxels",
                               "stop_timeout_s", "precision", "tile_step", "site_models_dir"});
  k.unknownKeys("http", {"address", "port"});
  k.unknownKeys("retry", {"base_s", "cap_s", "max_attempts"});
  k.unknownKeys("dicom", {"ae_title", "port", "max_associations", "max_pdu", "acse_timeout_s", "dimse_timeout_s", "peers",
                          "accept_unknown_peers", "sop_classes", "tls", "uid_root"});
  k.unknownKeys("storage", {"spool_dir", "database", "min_free_mb", "max_dataset_mb", "retention_hours"});
  k.unknownKeys("series", {"quiet_period_s"});
  k.unknownKeys("logging", {"level"});

  k.read("dicom.ae_title", c.aeTitle, "an AE title of 1-16 characters");
  if (!isAeTitle(c.aeTitle)) k.problem("dicom.ae_title", "'" + c.aeTitle + "' is not an AE title", "use 1-16 printable characters, no backslash");
  int port = c.port;
  k.read("dicom.port", port, "a TCP port number");
  if (port < 1 || port > 65535) k.problem("dicom.port", "must be 1..65535, got " + std::to_string(port), "pick a free port, 11112 is DICOM's");
  c.port = uint16_t(port);
  k.read("dicom.max_associations", c.maxAssociations, "an integer");
  if (c.maxAssociations < 1 || c.maxAssociations > 256) k.problem("dicom.max_associations", "must be 1..256", "8 suits most sites");
  k.read("dicom.max_pdu", c.maxPdu, "an integer (bytes)");
  if (c.maxPdu < 4096 || c.maxPdu > 131072) k.problem("dicom.max_pdu", "must be 4096..131072", "use 131072");
  k.read("dicom.acse_timeout_s", c.acseTimeoutSeconds, "seconds");
  k.read("dicom.dimse_timeout_s", c.dimseTimeoutSeconds, "seconds");
  if (c.acseTimeoutSeconds < 1) k.problem("dicom.acse_timeout_s", "must be >= 1", "use 30");
  if (c.dimseTimeoutSeconds < 1) k.problem("dicom.dimse_timeout_s", "must be >= 1", "use 60");
  k.read("dicom.accept_unknown_peers", c.acceptUnknownPeers, "true or false");
  readPeers(k, c);
  readSopClasses(k, c);
  c.tls = readTls(k, "dicom.tls", /*listening=*/true);
  k.read("dicom.uid_root", c.uidRoot, "a UID root such as 1.2.826.0.1.3680043.10.543");
  static const std::regex uidRootRe("[1-9][0-9]*(\\.(0|[1-9][0-9]*))*");
  if (!c.uidRoot.empty() && (!std::regex_match(c.uidRoot, uidRootRe) || c.uidRoot.size() > kMaxUidRootLength))
    k.problem("dicom.uid_root", "'" + c.uidRoot + "' is not a UID root of at most " + std::to_string(kMaxUidRootLength) + " characters",
              "give your organisation's registered root, or leave it out for 2.25 UUID-based UIDs");

  std::string spool = c.spoolDir.string(), db = c.database.string();
  k.read("storage.spool_dir", spool, "a directory path");
  k.read("storage.database", db, "a file path");
  c.spoolDir = spool;
  c.database = db;
  double minFreeMb = double(c.minFreeBytes >> 20);
  k.read("storage.min_free_mb", minFreeMb, "a number of MiB");
  if (minFreeMb < 0) k.problem("storage.min_free_mb", "must be >= 0", "use 1024");
  c.minFreeBytes = uint64_t(minFreeMb * 1048576.0);
  int64_t maxDatasetMb = int64_t(c.maxDatasetBytes >> 20);
  k.read("storage.max_dataset_mb", maxDatasetMb, "an integer (MiB)");
  if (maxDatasetMb < 1 || maxDatasetMb > (int64_t(1) << 20))
    k.problem("storage.max_dataset_mb", "must be 1..1048576", "use 2048 (a 600-slice enhanced CT is about 300)");
  c.maxDatasetBytes = uint64_t(std::max<int64_t>(1, maxDatasetMb)) << 20;
  k.read("storage.retention_hours", c.retentionHours, "a number of hours");
  if (c.retentionHours < 0) k.problem("storage.retention_hours", "must be >= 0", "use 72 (0 deletes finished series at once)");
  k.read("series.quiet_period_s", c.quietPeriodSeconds, "a number of seconds");
  if (!(c.quietPeriodSeconds > 0 && c.quietPeriodSeconds <= 3600))
    k.problem("series.quiet_period_s", "must be in (0, 3600]", "use 10");
  readHttp(k, c);
  k.read("logging.level", c.logLevel, "debug, info, warn or error");
  log::Level lvl;
  if (!log::parseLevel(c.logLevel, lvl)) k.problem("logging.level", "'" + c.logLevel + "' is not a level", "use debug, info, warn or error");

  readProcessing(k, c);
  readDestinations(k, c);
  readRoutes(k, c);
  k.finish();
  return c;
}

}  // namespace segnode::config
