#pragma once
// Helpers shared by the engine tests: scratch directories, shared data paths, tiny bundles.
#include <filesystem>
#include <string>

namespace segnode::test {

// A fresh directory under the system temp dir, removed when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// ../shared/data/<relative>, or an empty path when the data is not there.
std::filesystem::path sharedData(const std::string& relative);

// A test whose data or tool is missing is reported as skipped, never as passed: true (return from
// the test) after printing "SKIPPED: <what> is absent", which ctest's SKIP_REGULAR_EXPRESSION
// reports as a skip. With SEGNODE_TESTS_REQUIRE_ALL=1 (set by CI) a missing input fails the test.
bool missing(bool available, const std::string& what);

}  // namespace segnode::test
