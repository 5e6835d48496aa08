// The database's owners and readers: the daemon creates and migrates; the CLI's connections never
// migrate and refuse a schema they do not know (a newer CLI beside a running older daemon).
#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>

#include "TestSupport.h"
#include "common/Error.h"
#include "storage/Db.h"
#include "storage/Status.h"

using namespace segnode;

TEST_CASE("only the owner migrates - read-only and read-write connections refuse an unknown schema", "[node][storage]") {
  test::TempDir dir;
  const auto file = dir.path() / "segnode.db";
  CHECK_THROWS_WITH(storage::openDatabase(file, storage::Access::ReadOnly), Catch::Contains("no database yet"));
  const int newest = int(storage::migrations().size());
  {
    auto db = storage::openDatabase(file);  // the owner creates and migrates
    CHECK(storage::schemaVersion(*db) == newest);
  }
  auto setVersion = [&](int v) {
    SQLite::Database raw(file.string(), SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA user_version = " + std::to_string(v));
  };
  for (auto access : {storage::Access::ReadOnly, storage::Access::ReadWrite}) {
    setVersion(newest - 1);
    CHECK_THROWS_WITH(storage::openDatabase(file, access), Catch::Contains("older than this program's"));
    setVersion(newest + 1);
    CHECK_THROWS_WITH(storage::openDatabase(file, access), Catch::Contains("newer than this program knows"));
    setVersion(newest);
    auto db = storage::openDatabase(file, access);
    CHECK(storage::readStatus(*db).jobs.empty());
  }
  // Read-only really is: a write fails.
  auto ro = storage::openDatabase(file, storage::Access::ReadOnly);
  CHECK_THROWS(ro->exec("DELETE FROM jobs"));
  // The owner still refuses a newer schema and never downgrades it.
  setVersion(newest + 1);
  CHECK_THROWS_WITH(storage::openDatabase(file), Catch::Contains("newer than this program knows"));
}
