#include "TestSupport.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

#include <random>

namespace segnode::test {

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() / ("segnode-test-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path sharedData(const std::string& relative) {
  std::filesystem::path p = std::filesystem::path(SEGNODE_SHARED_DATA) / relative;
  return std::filesystem::exists(p) ? p : std::filesystem::path();
}

bool missing(bool available, const std::string& what) {
  if (available) return false;
  if (std::getenv("SEGNODE_TESTS_REQUIRE_ALL")) FAIL(what << " is absent, and SEGNODE_TESTS_REQUIRE_ALL asks for every test to run");
  std::printf("SKIPPED: %s is absent\n", what.c_str());
  return true;
}

}  // namespace segnode::test
