#include "engine/ModelStore.h"

#include <algorithm>
#include <cstdlib>

#include "common/Error.h"

namespace segnode::engine {

ModelStore::ModelStore(std::filesystem::path root) : root_(std::move(root)) {}

std::vector<InstalledBundle> ModelStore::list() const {
  std::vector<InstalledBundle> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(root_, ec)) return out;
  for (const auto& nameDir : std::filesystem::directory_iterator(root_, ec)) {
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
  std::sort(out.begin(), out.end(), [](const InstalledBundle& a, const InstalledBundle& b) {
    if (a.ok && b.ok && a.spec.name == b.spec.name) return a.spec.version < b.spec.version;
    return a.directory < b.directory;
  });
  return out;
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
    if (!best || best->spec.version < b.spec.version) best = &b;
  }
  if (!best)
    throw Error(ErrorCode::NotFound, "model '" + reference + "' is not installed in " + root_.string() +
                                         " (installed: " + (installed.empty() ? "none" : installed) + ")");
  return best->spec;
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
