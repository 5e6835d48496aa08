#pragma once
// Installed bundles under <root>/<name>/<version>/ (DESIGN §4), in one root or several (the
// package's models and a site's own: the newest version of a name wins across them; the same
// version in two roots resolves to the first root's). Looked up by "name" (newest version) or
// "name@version". No LibTorch here.
#include <filesystem>
#include <string>
#include <vector>

#include "engine/BundleSpec.h"

namespace segnode::engine {

struct InstalledBundle {
  std::filesystem::path directory;
  bool ok = false;
  BundleSpec spec;    // valid when ok
  std::string error;  // why bundle.yaml was refused, when !ok
};

class ModelStore {
 public:
  explicit ModelStore(std::filesystem::path root);
  explicit ModelStore(std::vector<std::filesystem::path> roots);  // empty paths are skipped
  const std::filesystem::path& root() const { return roots_.front(); }  // where `models init` installs
  const std::vector<std::filesystem::path>& roots() const { return roots_; }
  std::vector<InstalledBundle> list() const;  // sorted by name, then version
  // Throws Error(NotFound) listing what is installed, or the bundle's own error.
  BundleSpec resolve(const std::string& reference) const;

 private:
  static void listRoot(const std::filesystem::path& root, std::vector<InstalledBundle>& out);
  std::string rootsText() const;
  std::vector<std::filesystem::path> roots_;
};

// Where models live when no --models-dir is given: $SEGNODE_MODELS_DIR, else ./etc/models, else
// <exe>/../../etc/models (a build tree), else /usr/share/segnode/models (installed package).
std::filesystem::path defaultModelsDir(const char* argv0);

}  // namespace segnode::engine
