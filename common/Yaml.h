#pragma once
// The one typed reader of the YAML files segnode reads (node config, model bundles, training
// plans and state). Keys are addressed by path ("routes[2].match.modality"), and every problem is
// reported as "<file>: key '<path>': <what> (fix: <fix>)" under one error code. Reading collects
// problems so that a config check names all of them at once; `fail` stops where reading cannot go
// on, `finish` throws whatever was collected.
// Free-form trees (a bundle's provenance and metrics) are kept as JSON values, never as
// YAML::Node: a YAML::Node is a reference, and assigning one writes through to the node it names.
#include <yaml-cpp/yaml.h>

#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/Error.h"

namespace segnode::yaml {

class Reader {
 public:
  // Loads `file`; a missing file or a syntax error throws Error(code) naming the line.
  Reader(const std::filesystem::path& file, ErrorCode code);

  // The node at `path` ("" is the whole file), or an undefined node when any part is missing or null.
  YAML::Node at(const std::string& path) const;
  bool has(const std::string& path) const { return at(path).IsDefined(); }
  // Entries of the list at `path`: 0 when absent; a problem when it is not a list.
  size_t size(const std::string& path, const std::string& example);

  // Optional value: `out` keeps its default when the key is absent; a wrong type is a problem.
  template <typename T>
  bool read(const std::string& path, T& out, const std::string& kind) {
    YAML::Node n = at(path);
    if (!n.IsDefined()) return false;
    try {
      out = n.template as<T>();
      return true;
    } catch (const YAML::Exception&) {
      problem(path, "must be " + kind + ", got " + shown(n), "write " + kind);
      return false;
    }
  }
  template <typename T>
  T getOr(const std::string& path, const std::string& kind, T def) {
    read(path, def, kind);
    return def;
  }
  // A key that must be there: absent is fatal (nothing after it can be read sensibly). Returns
  // the path, so that a list read can require its key in passing.
  const std::string& require(const std::string& path, const std::string& fix = "") {
    if (!has(path)) fail(path, "missing (required)", fix);
    return path;
  }
  template <typename T>
  T get(const std::string& path, const std::string& kind) {
    require(path, "write " + kind);
    T out{};
    read(path, out, kind);
    return out;
  }
  template <typename T>
  std::vector<T> list(const std::string& path, const std::string& kind) {
    std::vector<T> out;
    for (size_t i = 0, n = size(path, "[" + kind + "]"); i < n; ++i) out.push_back(get<T>(item(path, i), kind));
    return out;
  }
  template <typename T>
  std::array<T, 3> triple(const std::string& path, const std::string& kind) {
    auto v = list<T>(require(path, "write [x, y, z]"), kind);
    if (v.size() != 3) fail(path, "must have 3 entries (x, y, z), has " + std::to_string(v.size()), "write [x, y, z]");
    return {v[0], v[1], v[2]};
  }

  template <typename T>
  std::vector<std::array<T, 3>> triples(const std::string& path, const std::string& kind) {
    std::vector<std::array<T, 3>> out;
    for (size_t i = 0, n = size(require(path, "write [[x, y, z], ...]"), "[[x, y, z], ...]"); i < n; ++i)
      out.push_back(triple<T>(item(path, i), kind));
    return out;
  }

  // Keys that are not part of the schema are mistakes: a typo silently ignored is worse.
  void unknownKeys(const std::string& path, const std::set<std::string>& allowed);

  void problem(const std::string& path, const std::string& what, const std::string& fix = "");
  [[noreturn]] void fail(const std::string& path, const std::string& what, const std::string& fix = "");
  void finish() const;  // throws Error(code) listing every problem, if any
  const std::vector<std::string>& problems() const { return problems_; }
  const std::string& file() const { return file_; }

  static std::string item(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

 private:
  static std::string shown(const YAML::Node& n);
  std::string file_;
  ErrorCode code_;
  YAML::Node root_;
  std::vector<std::string> problems_;
};

// Free-form trees: YAML scalars get JSON types by YAML 1.2's core schema (a quoted scalar stays a
// string), and back, so that a bundle read and written again keeps its values.
nlohmann::ordered_json toJson(const YAML::Node& node);
void emit(YAML::Emitter& out, const nlohmann::ordered_json& value);

}  // namespace segnode::yaml
