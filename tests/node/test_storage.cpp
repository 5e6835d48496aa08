// The database's owners and readers: the daemon creates and migrates; the CLI's connections never
// migrate and refuse a schema they do not know (a newer CLI beside a running older daemon).
#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <thread>
#include <set>

#include "NodeHarness.h"
#include "TestSupport.h"
#include "daemon/dicom/InstanceReader.h"
#include "daemon/ingest/IngestService.h"
#include "daemon/ingest/Retention.h"
#include "daemon/routing/SeriesAssembler.h"
#include "common/Error.h"
#include "storage/Db.h"
#include "storage/Index.h"
#include "storage/Jobs.h"
#include "storage/Lifecycle.h"
#include "storage/Status.h"

namespace fs = std::filesystem;

using namespace segnode;

namespace {
// An MR instance row of `series` (no file: these tests exercise the index and the queue only).
storage::InstanceRecord instanceOf(const std::string& series, const std::string& sop, int64_t receivedMs = 1) {
  storage::InstanceRecord r;
  r.studyUid = "1.2.3", r.seriesUid = series, r.sopInstanceUid = sop, r.sopClassUid = "1.2.840.10008.5.1.4.1.1.4";
  r.transferSyntax = "1.2.840.10008.1.2.1", r.filePath = "/nowhere", r.sha256 = "00", r.receivedMs = receivedMs;
  return r;
}
}  // namespace

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

TEST_CASE("each state machine has one spelling: enums, SQL words and the schema's CHECK lists agree", "[node][storage]") {
  // The CHECK (state IN (...)) lists of the migrations, in order: series, jobs, outbox.
  std::vector<std::set<std::string>> checks;
  const std::regex check(R"(CHECK \(state IN \(([^)]*)\)\))"), word("'([a-z]+)'");
  for (const auto& m : storage::migrations()) {
    std::string sql = m.sql;
    for (std::sregex_iterator it(sql.begin(), sql.end(), check), end; it != end; ++it) {
      std::set<std::string> words;
      std::string list = (*it)[1];
      for (std::sregex_iterator w(list.begin(), list.end(), word); w != end; ++w) words.insert((*w)[1]);
      checks.push_back(words);
    }
  }
  REQUIRE(checks.size() == 3);
  auto names = [](auto states) {
    std::set<std::string> out;
    for (auto s : states) {
      out.insert(storage::sqlName(s));
      CHECK(storage::stateFromSql<decltype(s)>(storage::sqlName(s)) == s);  // round trip
    }
    return out;
  };
  CHECK(names(storage::allStates<storage::SeriesState>()) == checks[0]);
  CHECK(names(storage::allStates<storage::JobState>()) == checks[1]);
  CHECK(names(storage::allStates<storage::OutboxState>()) == checks[2]);
  CHECK_THROWS_WITH(storage::stateFromSql<storage::JobState>("finished"),
                    Catch::Contains("unknown state 'finished'") && Catch::Contains("queued, running, done"));
  // Transitions: a finished job leaves only the running state; a dead delivery is revived.
  for (const auto& t : storage::transition::kJobFinished) CHECK(t.fromList() == "'running'");
  CHECK(storage::transition::kOutboxRevived.allows(storage::OutboxState::Dead));
  CHECK_FALSE(storage::transition::kSeriesLosesInstance.allows(storage::SeriesState::Purged));
}

TEST_CASE("a job keeps the destinations of its route at creation - deliveries to removed destinations are dead-lettered",
          "[node][storage]") {
  test::TempDir dir;
  auto db = storage::openDatabase(dir.path() / "segnode.db");
  storage::Index index(*db);
  storage::Jobs jobs(*db);
  auto readySeries = [&](const std::string& series) {
    index.recordInstance(instanceOf(series, series + ".1"));
    REQUIRE(index.markReady(series));
  };
  readySeries("1.2.3.4");
  auto job = jobs.create("1.2.3.4", 1, "brain", "m", {"pacs", "archive"}, "2.25.1", "2.25.2");
  CHECK(job.destinations == std::vector<std::string>{"pacs", "archive"});
  auto running = jobs.claimNext();
  REQUIRE(running);
  CHECK(running->destinations == job.destinations);  // read back from the row, not from a config
  CHECK(jobs.finish(job.id, storage::JobState::Done, "", "/out.dcm", "{}") == storage::JobState::Done);
  auto outbox = jobs.outbox(std::nullopt, 10);
  REQUIRE(outbox.size() == 2);
  // The configuration lost "archive": its delivery is dead with the reason, "pacs" stays pending.
  CHECK(jobs.deadLetterUnknown({"pacs"}) == 1);
  auto dead = jobs.outbox(storage::OutboxState::Dead, 10);
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].destination == "archive");
  CHECK(dead[0].lastError == "destination archive is not in the configuration");
  CHECK(jobs.outbox(storage::OutboxState::Pending, 10).size() == 1);

  // A job made before migration 003 (destinations NULL) is filled from its route at start.
  readySeries("1.2.3.5");
  auto old = jobs.create("1.2.3.5", 1, "brain", "m", {}, "2.25.3", "2.25.4");
  { SQLite::Database raw((dir.path() / "segnode.db").string(), SQLite::OPEN_READWRITE);
    raw.exec("UPDATE jobs SET destinations = NULL WHERE id = " + std::to_string(old.id)); }
  CHECK(jobs.fillLegacyDestinations([](const std::string& route) -> std::optional<std::vector<std::string>> {
    return route == "brain" ? std::optional<std::vector<std::string>>({"pacs"}) : std::nullopt;
  }) == 1);
  CHECK(jobs.list(storage::JobState::Queued, 10).at(0).destinations == std::vector<std::string>{"pacs"});
}

TEST_CASE("a job the process ended during max_job_attempts times is failed with the reason, not re-queued again",
          "[node][storage]") {
  test::TempDir dir;
  auto db = storage::openDatabase(dir.path() / "segnode.db");
  storage::Index index(*db);
  storage::Jobs jobs(*db);
  index.recordInstance(instanceOf("1.2.3.9", "1.2.3.9.1"));
  REQUIRE(index.markReady("1.2.3.9"));
  auto job = jobs.create("1.2.3.9", 1, "brain", "m", {"pacs"}, "2.25.5", "2.25.6");
  // Attempt 1 "crashes" (the job is still running at the next start): back to the queue.
  REQUIRE(jobs.claimNext()->attempts == 1);
  auto first = jobs.requeueRunning(2);
  CHECK(first.requeued == 1);
  CHECK(first.givenUp == 0);
  // Attempt 2 crashes too: the job fails with the reason, and its series is done, not retried.
  REQUIRE(jobs.claimNext()->attempts == 2);
  auto second = jobs.requeueRunning(2);
  CHECK(second.requeued == 0);
  CHECK(second.givenUp == 1);
  auto failed = jobs.list(storage::JobState::Failed, 10);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].id == job.id);
  CHECK_THAT(failed[0].reason, Catch::Contains("2 times (processing.max_job_attempts)"));
  CHECK_FALSE(jobs.claimNext());
}

TEST_CASE("recording retries a failing write, then gives up with the last error instead of throwing", "[node][storage]") {
  int calls = 0;
  std::string error;
  CHECK(storage::recordWithRetry([&] { if (++calls < 3) throw std::runtime_error("database is locked"); }, error));
  CHECK(calls == 3);
  calls = 0;
  CHECK_FALSE(storage::recordWithRetry([&] { ++calls; throw std::runtime_error("disk I/O error " + std::to_string(calls)); }, error));
  CHECK(calls == 6);  // the first try and five retries (0.1 ... 1.6 s)
  CHECK(error == "disk I/O error 6");
}

TEST_CASE("the quiet period runs on the monotonic clock: a wall-clock step neither hastens nor delays readiness",
          "[node][storage][routing]") {
  test::TempDir dir;
  auto db = storage::openDatabase(dir.path() / "segnode.db");
  storage::Index index(*db);
  boost::asio::io_context io;
  int ready = 0;
  routing::SeriesAssembler assembler(io, index, 0.3, [&](const storage::SeriesInfo&) { ++ready; });
  // Received "an hour from now": the wall clock was stepped back by an hour after the receipt.
  index.recordInstance(instanceOf("1.2.3.8", "1.2.3.8.1", storage::nowMs() + 3600000));
  assembler.noteActivity("1.2.3.8");
  io.run_for(std::chrono::milliseconds(150));
  CHECK(ready == 0);  // not before the quiet period
  io.run_for(std::chrono::milliseconds(600));
  CHECK(ready == 1);  // and not an hour late
  // Received "an hour ago" (stepped forward): a new instance still restarts the full quiet period.
  index.recordInstance(instanceOf("1.2.3.8", "1.2.3.8.2", storage::nowMs() - 3600000));
  assembler.noteActivity("1.2.3.8");
  io.restart();
  io.run_for(std::chrono::milliseconds(150));
  CHECK(ready == 1);
  io.run_for(std::chrono::milliseconds(600));
  CHECK(ready == 2);
}

TEST_CASE("series left receiving by the last run: a failed read at start-up is retried, and they still become ready",
          "[node][storage][routing]") {
  test::TempDir dir;
  auto db = storage::openDatabase(dir.path() / "segnode.db");
  storage::Index index(*db);
  index.recordInstance(instanceOf("1.2.3.9", "1.2.3.9.1", storage::nowMs()));  // received just before a restart
  SQLite::Database other((dir.path() / "segnode.db").string(), SQLite::OPEN_READWRITE);
  other.exec("ALTER TABLE series RENAME TO series_away");  // the read fails (as an I/O error would)
  boost::asio::io_context io;
  int ready = 0;
  routing::SeriesAssembler assembler(io, index, 0.2, [&](const storage::SeriesInfo&) { ++ready; });
  assembler.resumeReceiving();
  CHECK_NOTHROW(io.run_for(std::chrono::milliseconds(300)));  // before: "no such table" escaped the io loop
  CHECK(ready == 0);
  other.exec("ALTER TABLE series_away RENAME TO series");
  io.restart();
  io.run_for(std::chrono::milliseconds(1500));  // the retry after 1 s, then the rest of the quiet period
  CHECK(ready == 1);
}

TEST_CASE("retention deletes a SEG once every delivery was sent - a pending or dead one keeps it", "[node][storage][retention]") {
  test::TempDir dir;
  auto db = storage::openDatabase(dir.path() / "segnode.db");
  storage::Index index(*db);
  storage::Jobs jobs(*db);
  storage::Spool spool(dir.path() / "spool");
  boost::asio::io_context io;
  ingest::Retention retention(io, index, jobs, spool, 1e-6);  // 3.6 ms
  auto doneJob = [&](const std::string& series, const std::vector<std::string>& destinations) {
    index.recordInstance(instanceOf(series, series + ".1"));
    REQUIRE(index.markReady(series));
    auto job = jobs.create(series, 1, "brain", "m", destinations, series + ".7", series + ".8");
    REQUIRE(jobs.claimNext());
    auto seg = dir.path() / (series + ".dcm");
    std::ofstream(seg) << "SEG";
    REQUIRE(jobs.finish(job.id, storage::JobState::Done, "", seg.string(), "{}") == storage::JobState::Done);
    return seg;
  };
  auto sent = doneJob("1.2.3.20", {"pacs", "archive"});
  auto dead = doneJob("1.2.3.21", {"pacs"});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  retention.purgeNow();
  CHECK(fs::exists(sent));  // deliveries still pending
  auto outbox = jobs.outbox(std::nullopt, 10);
  for (const auto& o : outbox) {
    if (o.segPath == sent.string()) jobs.markSent(o.id);
    else jobs.markFailed(o.id, "refused", 0, /*dead=*/true);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  retention.purgeNow();
  CHECK_FALSE(fs::exists(sent));
  CHECK(fs::exists(dead));  // kept for `segnode retry`
  for (const auto& j : jobs.list(storage::JobState::Done, 10)) CHECK(j.segPath == (j.seriesUid == "1.2.3.20" ? "" : dead.string()));
}

TEST_CASE("no C-STORE is acknowledged before a flush that covers its file and its row - a skipped flush fails here",
          "[node][storage][data]") {
  const auto files = test::dicomFilesIn(test::dicomData("siemens_prisma_gre_fieldmap_sag"));
  if (test::missing(!files.empty(), "../shared/data/dicom")) return;
  test::TempDir dir;
  config::NodeConfig cfg;
  cfg.spoolDir = dir / "spool", cfg.database = dir / "segnode.db", cfg.minFreeBytes = 0;
  auto db = storage::openDatabase(cfg.database);
  storage::Spool spool(cfg.spoolDir);
  storage::Index index(*db);
  boost::asio::io_context io;
  routing::SeriesAssembler assembler(io, index, 10, [](const storage::SeriesInfo&) {});
  // What each flush covered: the spool files present and the rows committed when it ran.
  struct Covered {
    std::set<std::string> files;
    long long rows;
  };
  std::vector<Covered> flushes;
  ingest::IngestService service(cfg, spool, index, assembler, [&](const std::vector<fs::path>& paths) {
    storage::syncFilesystems(paths);
    Covered c;
    for (const auto& f : spool.files()) c.files.insert(f.string());
    SQLite::Database reader(cfg.database.string(), SQLite::OPEN_READONLY);
    c.rows = reader.execAndGet("SELECT COUNT(*) FROM instances").getInt64();
    flushes.push_back(c);
  });
  for (size_t k = 0; k < files.size(); ++k) {
    auto tmp = service.newTempPath();
    fs::copy_file(files[k], tmp);
    dicom::ReceivedInstance in;
    in.header = dicom::readInstanceHeader(tmp);
    in.commandSopInstanceUid = in.header.sopInstanceUid, in.commandSopClassUid = in.header.sopClassUid;
    const size_t before = flushes.size();
    const std::string sop = in.header.sopInstanceUid;
    REQUIRE(service.store({"STORESCU", "SEGNODE", "127.0.0.1"}, std::move(in), tmp).code == dicom::kSuccess);
    REQUIRE(flushes.size() > before);  // a flush ran between the data's arrival and the answer
    SQLite::Database reader(cfg.database.string(), SQLite::OPEN_READONLY);
    SQLite::Statement q(reader, "SELECT file_path FROM instances WHERE sop_instance_uid = ?");
    q.bind(1, sop);
    REQUIRE(q.executeStep());
    CHECK(flushes.back().files.count(q.getColumn(0).getString()) == 1);  // it covered the renamed file
    CHECK(flushes.back().rows == (long long)(k + 1));                     // and the committed row
  }
}
