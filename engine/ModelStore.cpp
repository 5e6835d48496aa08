#include "engine/ModelStore.h"

#include <algorithm>
#include <cstdlib>
#include <tuple>

#include "common/Error.h"

namespace segnode::engine {

ModelStore::ModelStore(std::filesystem::path root) : roots_{std::move(root)} {}

ModelStore::ModelStore(std::vector<std::filesystem::path> roots) {
  for (auto& r : roots)
    if (!r.empty()) roots_.push_back(std::move(r));
  if (roots_.empty()) throw Error(ErrorCode::InvalidArgument, "a model store needs a directory");
}

std::vector<InstalledBundle> ModelStore::list() const {
  std::vector<InstalledBundle> out;
  for (const auto& root : roots_) listRoot(root, out);
  // Stable: the same name and version in two roots keeps the roots' order.
  auto key = [](const InstalledBundle& b) {  // a broken bundle sorts by its folder's name, as version 0.0.0
    return std::make_tuple(b.ok ? b.spec.name : b.directory.parent_path().filename().string(), b.ok ? b.spec.version : SemVer{});
  };
  std::stable_sort(out.begin(), out.end(), [&](const InstalledBundle& a, const InstalledBundle& b) { return key(a) < key(b); });
  return out;
}

void ModelStore::listRoot(const std::filesystem::path& root, std::vector<InstalledBundle>& out) {
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) return;
  for (const auto& nameDir : std::filesystem::directory_iterator(root, ec)) {
    if (!nameDir.is_directory()) continue;
    for (const auto& verDir : std::filesystem::directory_iterator(nameDir.path(), ec)) {
      if (!verDir.is_directory()) continue;
      InstalledBundle b;
      b.directory = verDir.path();
      try {
        b.spec = loadBundleSpec(verDir.path());
        if (b.spec.name != nameDir.path().filename().string() ||
            b.spec.version.toString() != verDir.path().filename().string())
          throw Error(ErrorCode::BadBundle, (verDir.path() / "bundle.yaml").string() + ": says " + b.spec.reference() +
                                                " but sits in " + nameDir.path().filename().string() + "/" +
                                                verDir.path().filename().string());
        b.ok = true;
      } catch (const Error& e) {
        b.error = e.what();
      }
      out.push_back(std::move(b));
    }
  }
}

BundleSpec ModelStore::resolve(const std::string& reference) const {
  std::string name = reference, version;
  if (auto at = reference.find('@'); at != std::string::npos) {
    name = reference.substr(0, at);
    version = reference.substr(at + 1);
    SemVer v;
    if (!SemVer::parse(version, v))
      throw Error(ErrorCode::InvalidArgument, "model reference '" + reference + "': version must be MAJOR.MINOR.PATCH");
  }
  std::vector<InstalledBundle> all = list();
  const InstalledBundle* best = nullptr;
  std::string installed;
  for (const auto& b : all) {
    bool sameName = b.directory.parent_path().filename().string() == name;
    if (b.ok) installed += (installed.empty() ? "" : ", ") + b.spec.reference();
    if (!sameName) continue;
    if (!version.empty() && b.directory.filename().string() != version) continue;
    if (!b.ok) throw Error(ErrorCode::BadBundle, b.error);
    if (!best || best->spec.version < b.spec.version) best = &b;  // strict: a tie keeps the first root's
  }
  if (!best)
    throw Error(ErrorCode::NotFound, "model '" + reference + "' is not installed in " + rootsText() +
                                         " (installed: " + (installed.empty() ? "none" : installed) + ")");
  return best->spec;
}

std::string ModelStore::rootsText() const {
  std::string s;
  for (const auto& r : roots_) s += (s.empty() ? "" : " or ") + r.string();
  return s;
}

std::filesystem::path defaultModelsDir(const char* argv0) {
  if (const char* env = std::getenv("SEGNODE_MODELS_DIR"); env && *env) return env;
  if (std::filesystem::is_directory("etc/models")) return std::filesystem::absolute("etc/models");
  std::error_code ec;
  auto exe = std::filesystem::canonical("/proc/self/exe", ec);
  if (ec && argv0) exe = std::filesystem::absolute(argv0);
  auto candidate = exe.parent_path() / ".." / ".." / "etc" / "models";
  if (std::filesystem::is_directory(candidate, ec)) return std::filesystem::canonical(candidate);
  return "/usr/share/segnode/models";
}

}  // namespace segnode::engine
