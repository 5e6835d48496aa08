#include "daemon/config/Config.h"

#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <cmath>
#include <regex>
#include <set>

#include "common/Error.h"
#include "common/Log.h"

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

class Checker {
 public:
  Checker(const std::filesystem::path& file, const YAML::Node& root) : file_(file.string()), root_(root) {}

  void problem(const std::string& key, const std::string& what, const std::string& fix) {
    problems_.push_back(file_ + ": key '" + key + "': " + what + " (fix: " + fix + ")");
  }
  const std::vector<std::string>& problems() const { return problems_; }

  // The node at a dotted path, or an invalid node when any part is missing or null. Const access:
  // yaml-cpp's non-const operator[] would insert the missing keys.
  YAML::Node node(const std::string& dotted) const {
    const YAML::Node root = root_;
    std::vector<YAML::Node> chain{root};
    size_t start = 0;
    while (start < dotted.size()) {
      size_t end = dotted.find('.', start);
      if (end == std::string::npos) end = dotted.size();
      const YAML::Node& parent = chain.back();
      if (!parent.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
      const YAML::Node child = static_cast<const YAML::Node&>(parent)[dotted.substr(start, end - start)];
      if (!child.IsDefined() || child.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
      chain.push_back(child);
      start = end + 1;
    }
    return chain.back();
  }

  template <typename T>
  void read(const std::string& key, T& out, const std::string& kind) {
    YAML::Node n = node(key);
    if (!n.IsDefined()) return;  // default stays
    try {
      out = n.as<T>();
    } catch (const YAML::Exception&) {
      problem(key, "must be " + kind + ", got '" + (n.IsScalar() ? n.Scalar() : std::string("a list or map")) + "'",
              "write " + kind);
    }
  }

  // Keys that are not part of the schema are mistakes (a typo silently ignored is worse).
  void unknownKeys(const YAML::Node& n, const std::string& prefix, const std::set<std::string>& allowed) {
    if (!n.IsDefined() || !n.IsMap()) return;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.as<std::string>();
      if (!allowed.count(k)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        problem(prefix + k, "unknown key", "use one of: " + list);
      }
    }
  }

 private:
  std::string file_;
  YAML::Node root_;
  std::vector<std::string> problems_;
};

bool isAeTitle(const std::string& ae) {
  if (ae.empty() || ae.size() > 16) return false;
  for (char c : ae)
    if (c < 0x20 || c > 0x7e || c == '\\') return false;
  return ae.find_first_not_of(' ') != std::string::npos;
}

void readProcessing(Checker& k, NodeConfig& c) {
  std::string models = c.modelsDir.string(), output = c.outputDir.string();
  k.read("processing.models_dir", models, "a directory path");
  k.read("processing.output_dir", output, "a directory path");
  c.modelsDir = models;
  c.outputDir = output;
  k.read("processing.workers", c.workers, "an integer (0: sized from the machine)");
  k.read("processing.threads_per_worker", c.threadsPerWorker, "an integer (0: cores / workers)");
  if (c.workers < 0 || c.workers > 64) k.problem("processing.workers", "must be 0..64", "use 0 to size from the machine");
  if (c.threadsPerWorker < 0 || c.threadsPerWorker > 256) k.problem("processing.threads_per_worker", "must be 0..256", "use 0");
  k.read("retry.base_s", c.retry.baseSeconds, "seconds");
  k.read("retry.cap_s", c.retry.capSeconds, "seconds");
  k.read("retry.max_attempts", c.retry.maxAttempts, "an integer");
  if (!(c.retry.baseSeconds > 0) || c.retry.capSeconds < c.retry.baseSeconds)
    k.problem("retry", "needs 0 < base_s <= cap_s", "use base_s: 5, cap_s: 300");
  if (c.retry.maxAttempts < 1) k.problem("retry.max_attempts", "must be >= 1", "use 8");

  YAML::Node dests = k.node("destinations");
  if (dests.IsDefined() && !dests.IsSequence()) k.problem("destinations", "must be a list", "write - {name: pacs, ae_title: PACS, host: 10.0.0.5, port: 104}");
  for (size_t i = 0; dests.IsDefined() && dests.IsSequence() && i < dests.size(); ++i) {
    std::string key = "destinations[" + std::to_string(i) + "]";
    const YAML::Node d = dests[i];
    if (!d.IsMap() || !d["name"] || !d["ae_title"] || !d["host"] || !d["port"]) {
      k.problem(key, "needs name, ae_title, host and port", "write {name: pacs, ae_title: PACS, host: 10.0.0.5, port: 104}");
      continue;
    }
    Destination dest{d["name"].as<std::string>(), d["ae_title"].as<std::string>(), d["host"].as<std::string>(), 104};
    int port = 0;
    try {
      port = d["port"].as<int>();
    } catch (const YAML::Exception&) {
    }
    if (port < 1 || port > 65535) k.problem(key + ".port", "must be 1..65535", "give the PACS's DICOM port");
    dest.port = uint16_t(port);
    if (!isAeTitle(dest.aeTitle)) k.problem(key + ".ae_title", "'" + dest.aeTitle + "' is not an AE title", "use 1-16 printable characters");
    for (const auto& other : c.destinations)
      if (other.name == dest.name) k.problem(key + ".name", "'" + dest.name + "' is used twice", "give each destination its own name");
    c.destinations.push_back(dest);
  }

  YAML::Node routes = k.node("routes");
  if (routes.IsDefined() && !routes.IsSequence()) k.problem("routes", "must be a list", "see etc/segnode.yaml");
  static const std::regex modelRe("[a-z0-9][a-z0-9._-]*(@[0-9]+\\.[0-9]+\\.[0-9]+)?");
  for (size_t i = 0; routes.IsDefined() && routes.IsSequence() && i < routes.size(); ++i) {
    std::string key = "routes[" + std::to_string(i) + "]";
    const YAML::Node r = routes[i];
    if (!r.IsMap() || !r["name"] || !r["model"] || !r["destinations"]) {
      k.problem(key, "needs name, model, destinations (and optionally match)", "see etc/segnode.yaml");
      continue;
    }
    Route route;
    route.name = r["name"].as<std::string>();
    route.model = r["model"].as<std::string>();
    if (!std::regex_match(route.model, modelRe))
      k.problem(key + ".model", "'" + route.model + "' is not NAME or NAME@X.Y.Z", "name an installed bundle (segnode models)");
    if (r["destinations"].IsSequence())
      for (const auto& d : r["destinations"]) route.destinations.push_back(d.as<std::string>());
    if (route.destinations.empty()) k.problem(key + ".destinations", "must list at least one destination", "e.g. [pacs]");
    for (const auto& d : route.destinations) {
      bool known = false;
      for (const auto& dest : c.destinations) known |= dest.name == d;
      if (!known) k.problem(key + ".destinations", "'" + d + "' is not defined under destinations", "add it or fix the name");
    }
    const YAML::Node m = r["match"];
    if (m && m.IsMap()) {
      k.unknownKeys(m, key + ".match.",
                    {"modality", "body_part", "series_description", "image_type_contains", "sop_class", "min_slices", "calling_ae"});
      auto text = [&](const char* name, std::string& out) {
        if (m[name]) out = m[name].as<std::string>();
      };
      text("modality", route.match.modality);
      text("body_part", route.match.bodyPart);
      text("series_description", route.match.seriesDescriptionRegex);
      text("image_type_contains", route.match.imageTypeContains);
      text("calling_ae", route.match.callingAe);
      std::string sop;
      text("sop_class", sop);
      for (const auto& [name, uid] : knownSopClasses())
        if (sop == name) sop = uid;
      route.match.sopClassUid = sop;
      if (m["min_slices"]) route.match.minSlices = m["min_slices"].as<int>();
      try {
        std::regex test(route.match.seriesDescriptionRegex, std::regex::icase);
      } catch (const std::regex_error& e) {
        k.problem(key + ".match.series_description", std::string("not a valid regular expression: ") + e.what(), "fix the pattern");
      }
    }
    c.routes.push_back(route);
  }
}

}  // namespace

double RetryPolicy::delaySeconds(int attempts) const {
  double d = baseSeconds * std::pow(2.0, std::max(0, attempts - 1));
  return std::min(d, capSeconds);
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
  if (!std::filesystem::exists(file)) throw Error(ErrorCode::BadConfig, file.string() + ": no such configuration file");
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    throw Error(ErrorCode::BadConfig, file.string() + ": line " + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  NodeConfig c;
  c.file = file;
  Checker k(file, root);
  if (!root.IsMap()) {
    k.problem("(top level)", "must be a map", "start from etc/segnode.yaml");
    throw Error(ErrorCode::BadConfig, k.problems().front());
  }
  k.unknownKeys(root, "", {"dicom", "storage", "series", "logging", "processing", "destinations", "routes", "retry"});
  k.unknownKeys(k.node("processing"), "processing.", {"models_dir", "output_dir", "workers", "threads_per_worker"});
  k.unknownKeys(k.node("retry"), "retry.", {"base_s", "cap_s", "max_attempts"});
  k.unknownKeys(k.node("dicom"), "dicom.",
                {"ae_title", "port", "max_associations", "max_pdu", "acse_timeout_s", "dimse_timeout_s", "peers",
                 "accept_unknown_peers", "sop_classes"});
  k.unknownKeys(k.node("storage"), "storage.", {"spool_dir", "database", "min_free_mb", "retention_hours"});
  k.unknownKeys(k.node("series"), "series.", {"quiet_period_s"});
  k.unknownKeys(k.node("logging"), "logging.", {"level"});

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

  YAML::Node peers = k.node("dicom.peers");
  if (peers.IsDefined() && !peers.IsSequence()) k.problem("dicom.peers", "must be a list", "write - {ae_title: PACS, host: 10.0.0.5}");
  for (size_t i = 0; peers.IsDefined() && peers.IsSequence() && i < peers.size(); ++i) {
    std::string key = "dicom.peers[" + std::to_string(i) + "]";
    Peer p;
    if (!peers[i].IsMap() || !peers[i]["ae_title"] || !peers[i]["host"]) {
      k.problem(key, "needs ae_title and host", "write {ae_title: PACS, host: 10.0.0.5}");
      continue;
    }
    p.aeTitle = peers[i]["ae_title"].as<std::string>();
    p.host = peers[i]["host"].as<std::string>();
    if (!isAeTitle(p.aeTitle)) k.problem(key + ".ae_title", "'" + p.aeTitle + "' is not an AE title", "use 1-16 printable characters");
    if (p.host.empty()) k.problem(key + ".host", "is empty", "give the peer's IP address or host name");
    c.peers.push_back(p);
  }
  if (c.peers.empty() && !c.acceptUnknownPeers)
    k.problem("dicom.peers", "no peer may send: every association would be refused",
              "list the PACS under dicom.peers (or set accept_unknown_peers: true on a closed network)");

  std::vector<std::string> sop{"mr", "enhanced_mr", "ct", "enhanced_ct"};
  YAML::Node sopNode = k.node("dicom.sop_classes");
  if (sopNode.IsDefined()) {
    sop.clear();
    if (!sopNode.IsSequence()) k.problem("dicom.sop_classes", "must be a list", "write [mr, enhanced_mr, ct, enhanced_ct]");
    else
      for (const auto& s : sopNode) sop.push_back(s.as<std::string>());
  }
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

  std::string spool = c.spoolDir.string(), db = c.database.string();
  k.read("storage.spool_dir", spool, "a directory path");
  k.read("storage.database", db, "a file path");
  c.spoolDir = spool;
  c.database = db;
  double minFreeMb = double(c.minFreeBytes >> 20);
  k.read("storage.min_free_mb", minFreeMb, "a number of MiB");
  if (minFreeMb < 0) k.problem("storage.min_free_mb", "must be >= 0", "use 1024");
  c.minFreeBytes = uint64_t(minFreeMb * 1048576.0);
  k.read("storage.retention_hours", c.retentionHours, "a number of hours");
  if (c.retentionHours < 0) k.problem("storage.retention_hours", "must be >= 0", "use 72 (0 deletes finished series at once)");
  k.read("series.quiet_period_s", c.quietPeriodSeconds, "a number of seconds");
  if (!(c.quietPeriodSeconds > 0 && c.quietPeriodSeconds <= 3600))
    k.problem("series.quiet_period_s", "must be in (0, 3600]", "use 10");
  k.read("logging.level", c.logLevel, "debug, info, warn or error");
  log::Level lvl;
  if (!log::parseLevel(c.logLevel, lvl)) k.problem("logging.level", "'" + c.logLevel + "' is not a level", "use debug, info, warn or error");

  readProcessing(k, c);

  if (!k.problems().empty()) {
    std::string all;
    for (const auto& p : k.problems()) all += (all.empty() ? "" : "\n") + p;
    throw Error(ErrorCode::BadConfig, all);
  }
  return c;
}

}  // namespace segnode::config
