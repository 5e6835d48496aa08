#include <catch2/catch.hpp>

#include "common/Error.h"
#include "common/Sha256.h"
#include "common/Uid.h"
#include "common/Yaml.h"
#include "TestSupport.h"

#include <fstream>

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

TEST_CASE("new DICOM UIDs under an organisation's root fill 64 characters with random digits", "[common]") {
  std::set<std::string> seen;
  const std::string root(40, '1');  // the longest root the configuration accepts
  const std::regex syntax("^" + root + "\\.[1-9][0-9]*$");
  for (const std::string& r : {root, std::string("1.2.826.0.1.3680043.10.543")}) {
    for (int i = 0; i < 1000; ++i) {
      std::string uid = segnode::newDicomUid(r);
      CHECK(uid.size() == 64);
      CHECK(uid.rfind(r + ".", 0) == 0);
      CHECK(uid[r.size() + 1] != '0');
      seen.insert(uid);
    }
  }
  CHECK(seen.size() == 2000);
  CHECK(std::regex_match(segnode::newDicomUid(root), syntax));
}

TEST_CASE("the YAML reader addresses keys by path and names file, key and fix for every problem", "[common][yaml]") {
  segnode::test::TempDir tmp;
  auto file = tmp / "x.yaml";
  std::ofstream(file) << "a:\n  port: many\n  list: [1, 2, three]\n  typo: 1\nitems:\n  - {name: one}\n  - {name: two, n: 4}\n";
  segnode::yaml::Reader r(file, segnode::ErrorCode::BadConfig);
  CHECK(r.get<std::string>("items[1].name", "a name") == "two");
  CHECK(r.getOr<int>("items[1].n", "an integer", 0) == 4);
  CHECK(r.getOr<int>("items[0].n", "an integer", 7) == 7);  // absent: the default
  CHECK_FALSE(r.has("items[2]"));
  CHECK(r.size("items", "a list") == 2);
  CHECK(r.getOr<int>("a.port", "a TCP port number", 104) == 104);
  r.list<int>("a.list", "an integer");
  r.unknownKeys("a", {"port", "list"});
  CHECK(r.problems().size() == 3);  // port, list[2], typo: all collected before failing
  CHECK_THROWS_WITH(r.finish(), Catch::Contains(file.string() + ": key 'a.port': must be a TCP port number, got 'many' (fix:") &&
                                    Catch::Contains("key 'a.list[2]'") && Catch::Contains("key 'a.typo': unknown key"));
  CHECK_THROWS_WITH(r.get<int>("a.missing", "an integer"), Catch::Contains("key 'a.missing': missing (required)"));
  std::ofstream(tmp / "bad.yaml") << "a: [1, 2\n";
  CHECK_THROWS_WITH(segnode::yaml::Reader(tmp / "bad.yaml", segnode::ErrorCode::BadBundle), Catch::Contains("line "));
}

TEST_CASE("free-form YAML trees become typed JSON values and come back unchanged", "[common][yaml]") {
  segnode::test::TempDir tmp;
  std::ofstream(tmp / "t.yaml") << "t:\n  n: 5257\n  x: 0.56532291294584447\n  ok: true\n  v: 0.4.0\n  q: \"11\"\n"
                                   "  l: [a, 2]\n  nothing: ~\n";
  segnode::yaml::Reader r(tmp / "t.yaml", segnode::ErrorCode::BadBundle);
  auto j = segnode::yaml::toJson(r.at("t"));
  CHECK(j["n"] == 5257);
  CHECK(j["x"] == 0.56532291294584447);
  CHECK(j["ok"] == true);
  CHECK(j["v"] == "0.4.0");
  CHECK(j["q"] == "11");  // quoted: a string
  CHECK(j["l"][0] == "a");
  CHECK(j["nothing"].is_null());
  auto copy = j;  // a value, not a reference: changing the copy leaves the original
  copy["n"] = 1;
  CHECK(j["n"] == 5257);
  YAML::Emitter e;
  segnode::yaml::emit(e, j);
  CHECK(segnode::yaml::toJson(YAML::Load(e.c_str())) == j);
}
