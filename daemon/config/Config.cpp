#include "daemon/config/Config.h"

#include <yaml-cpp/yaml.h>

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

}  // namespace

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
  k.unknownKeys(root, "", {"dicom", "storage", "series", "logging"});
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

  if (!k.problems().empty()) {
    std::string all;
    for (const auto& p : k.problems()) all += (all.empty() ? "" : "\n") + p;
    throw Error(ErrorCode::BadConfig, all);
  }
  return c;
}

}  // namespace segnode::config
