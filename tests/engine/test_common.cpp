#include <catch2/catch.hpp>

#include "common/Error.h"
#include "common/Sha256.h"
#include "common/Uid.h"

#include <regex>
#include <set>


TEST_CASE("sha256 matches the FIPS 180-4 examples", "[common]") {
  CHECK(segnode::sha256Hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(segnode::sha256Hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(segnode::sha256Hex(two.data(), two.size()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  CHECK(segnode::sha256Hex(million.data(), million.size()) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("new DICOM UIDs are 2.25 UUIDs: valid UID syntax, at most 64 characters, all different", "[common]") {
  std::set<std::string> seen;
  const std::regex syntax("^2\\.25\\.[1-9][0-9]*$");
  for (int i = 0; i < 2000; ++i) {
    std::string uid = segnode::newDicomUid();
    CHECK(std::regex_match(uid, syntax));
    CHECK(uid.size() <= 64);
    seen.insert(uid);
  }
  CHECK(seen.size() == 2000);
}
