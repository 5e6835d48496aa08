#include "common/Yaml.h"

#include <regex>

namespace segnode::yaml {

Reader::Reader(const std::filesystem::path& file, ErrorCode code) : file_(file.string()), code_(code) {
  if (!std::filesystem::exists(file)) throw Error(code, file_ + ": no such file");
  try {
    root_ = YAML::LoadFile(file_);
  } catch (const YAML::Exception& e) {
    throw Error(code, file_ + ": line " + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  if (!root_.IsMap()) fail("(top level)", "must be a map");
}

// Const access throughout: yaml-cpp's non-const operator[] would insert the missing keys. Nodes
// are copy-constructed, never assigned: assigning a node writes through to the one it refers to.
YAML::Node Reader::at(const std::string& path) const {
  static const std::regex part(R"(([^.\[\]]+)|\[(\d+)\])");
  std::vector<YAML::Node> chain{root_};  // keeps each parent alive
  for (auto it = std::sregex_iterator(path.begin(), path.end(), part); it != std::sregex_iterator(); ++it) {
    const YAML::Node& parent = chain.back();
    bool isKey = (*it)[1].matched;
    if (isKey ? !parent.IsMap() : !parent.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
    size_t index = isKey ? 0 : std::stoul((*it)[2].str());
    if (!isKey && index >= parent.size()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node child = isKey ? parent[(*it)[1].str()] : parent[index];
    if (!child.IsDefined() || child.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
    chain.push_back(child);
  }
  return chain.back();
}

size_t Reader::size(const std::string& path, const std::string& example) {
  YAML::Node n = at(path);
  if (!n.IsDefined()) return 0;
  if (!n.IsSequence()) {
    problem(path, "must be a list", "write " + example);
    return 0;
  }
  return n.size();
}

void Reader::unknownKeys(const std::string& path, const std::set<std::string>& allowed) {
  YAML::Node n = path.empty() ? root_ : at(path);
  if (!n.IsMap()) return;
  for (const auto& kv : n) {
    auto key = kv.first.as<std::string>();
    if (allowed.count(key)) continue;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    problem(path.empty() ? key : path + "." + key, "unknown key", "use one of: " + list);
  }
}

void Reader::problem(const std::string& path, const std::string& what, const std::string& fix) {
  problems_.push_back(file_ + ": key '" + path + "': " + what + (fix.empty() ? "" : " (fix: " + fix + ")"));
}

void Reader::fail(const std::string& path, const std::string& what, const std::string& fix) {
  problem(path, what, fix);
  finish();
  std::abort();  // unreachable: finish() throws when there is a problem
}

void Reader::finish() const {
  if (problems_.empty()) return;
  std::string all;
  for (const auto& p : problems_) all += (all.empty() ? "" : "\n") + p;
  throw Error(code_, all);
}

std::string Reader::shown(const YAML::Node& n) { return n.IsScalar() ? "'" + n.Scalar() + "'" : "a list or map"; }

namespace {

// The JSON type a plain (unquoted) YAML scalar has under YAML 1.2's core schema.
nlohmann::ordered_json plainScalar(const std::string& s) {
  static const std::regex integer(R"([-+]?[0-9]+)"), real(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (s == "true" || s == "false") return s == "true";
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  if (std::regex_match(s, integer)) return std::stoll(s);
  if (std::regex_match(s, real)) return std::stod(s);
  return s;
}

}  // namespace

nlohmann::ordered_json toJson(const YAML::Node& node) {
  nlohmann::ordered_json out;
  switch (node.Type()) {
    case YAML::NodeType::Map:
      out = nlohmann::ordered_json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = toJson(kv.second);
      return out;
    case YAML::NodeType::Sequence:
      out = nlohmann::ordered_json::array();
      for (const auto& v : node) out.push_back(toJson(v));
      return out;
    case YAML::NodeType::Scalar:
      return node.Tag() == "!" ? nlohmann::ordered_json(node.Scalar()) : plainScalar(node.Scalar());  // "!": quoted
    default:
      return nullptr;
  }
}

void emit(YAML::Emitter& out, const nlohmann::ordered_json& value) {
  if (value.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, v] : value.items()) {
      out << YAML::Key << k << YAML::Value;
      emit(out, v);
    }
    out << YAML::EndMap;
  } else if (value.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& v : value) emit(out, v);
    out << YAML::EndSeq;
  } else if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (!plainScalar(s).is_string()) out << YAML::DoubleQuoted;  // "11" stays a string when read back
    out << s;
  } else if (value.is_boolean()) {
    out << value.get<bool>();
  } else if (value.is_number()) {
    out << value.dump();  // the shortest text that reads back to the same number: 0.647, not 0.64700000000000002
  } else {
    out << YAML::Null;
  }
}

}  // namespace segnode::yaml
