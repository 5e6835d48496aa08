// segnoded end to end with DCMTK's own tools on loopback ports (issue: DICOM node, part 1).
#include <catch2/catch.hpp>

#include <dcmtk/dcmdata/dctk.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <random>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>

#include "NodeHarness.h"
#include "common/Sha256.h"
#include "daemon/dicom/PixelDecoder.h"

using namespace segnode::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> strings(const std::vector<fs::path>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) out.push_back(p.string());
  return out;
}

bool haveData() { return !segnode::test::missing(!dicomData("philips_ingenia_elitionx_t1_mprage_sag").empty(), "../shared/data/dicom"); }


}  // namespace

TEST_CASE("C-ECHO answers known peers - unknown or misaddressed callers are refused with the reason",
          "[node][dicom]") {
  NodeProcess node;
  node.start();
  CHECK(node.echoscu("ECHOSCU").exitCode == 0);

  auto unknown = node.echoscu("NOBODY");
  CHECK(unknown.exitCode != 0);
  CHECK_THAT(unknown.output, Catch::Contains("Calling AE Title Not Recognized"));
  auto wrongCalled = node.echoscu("ECHOSCU", "OTHERNODE");
  CHECK(wrongCalled.exitCode != 0);
  CHECK_THAT(wrongCalled.output, Catch::Contains("Called AE Title Not Recognized"));
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals WHERE reason LIKE '%NOBODY%not in dicom.peers%'") == 1);
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals WHERE reason LIKE '%OTHERNODE%'") == 1);
  // The audit trail has all three associations, in order, with their outcomes.
  CHECK(node.queryStrings("SELECT peer || ' ' || outcome FROM audit WHERE event = 'association' ORDER BY id") ==
        std::vector<std::string>{"ECHOSCU@127.0.0.1 accepted", "NOBODY@127.0.0.1 refused", "ECHOSCU@127.0.0.1 refused"});
  auto json = runCommand({(segnodedPath().parent_path() / "segnode").string(), "audit", "--json", "--config",
                          node.configFile().string()});
  CHECK(json.exitCode == 0);
  CHECK_THAT(json.output, Catch::Contains("\"outcome\":\"refused\"") && Catch::Contains("not in dicom.peers"));
}

// Each association runs on its own thread. DCMTK's pool never joined its threads: every one kept
// its stack, a mapping and its guard page, until the node ran out of them.
TEST_CASE("short associations leave nothing behind: after 200 C-ECHOs the node has the memory maps it had",
          "[node][dicom]") {
  NodeProcess node;
  node.start();
  REQUIRE(node.echoscu().exitCode == 0);  // one-time allocations of the first association
  const long before = node.memoryMaps();
  for (int i = 0; i < 200; ++i) REQUIRE(node.echoscu().exitCode == 0);
  const long after = node.memoryMaps();
  CHECK(after - before < 40);  // 400 more if each association kept its stack; malloc may add an arena or two
  CHECK(node.stop() == 0);
  std::printf("200 C-ECHO associations: segnoded memory maps %ld before, %ld after\n", before, after);
}

TEST_CASE("a peer known by AE title but calling from another host is refused", "[node][dicom]") {
  NodeProcess node("  peers:\n    - {ae_title: STORESCU, host: 10.9.9.9}\n");
  node.start();
  auto r = node.echoscu("STORESCU");
  CHECK(r.exitCode != 0);
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals WHERE reason LIKE '%not allowed from host 127.0.0.1%'") == 1);
}

TEST_CASE("a peer given by host name is accepted from the addresses the name resolves to", "[node][dicom]") {
  NodeProcess node("  peers:\n    - {ae_title: ECHOSCU, host: localhost}\n");
  node.start();
  CHECK(node.echoscu("ECHOSCU").exitCode == 0);
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals") == 0);
}

TEST_CASE("every shared DICOM series is stored: instance counts and UIDs equal the files'", "[node][dicom][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  size_t total = 0;
  for (const auto& dir : fs::directory_iterator(dicomData(""))) {
    if (!dir.is_directory()) continue;
    auto files = dicomFilesIn(dir.path());
    INFO(dir.path().string());
    auto r = node.storeAsIs(files);
    INFO(r.output);
    REQUIRE(r.exitCode == 0);
    total += files.size();
    for (const auto& f : files) {
      std::string uid = sopInstanceUidOf(f);
      CHECK(node.queryInt("SELECT COUNT(*) FROM instances WHERE sop_instance_uid = '" + uid + "'") == 1);
    }
  }
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == long(total));
  CHECK(node.queryInt("SELECT SUM(instance_count) FROM series") == long(total));
  // Every row's file is in the spool, named by its UIDs, and the checksum matches.
  for (const auto& path : node.queryStrings("SELECT file_path FROM instances")) CHECK(fs::exists(path));
  for (const auto& row : node.queryStrings("SELECT file_path || '|' || sha256 FROM instances LIMIT 20")) {
    auto bar = row.find('|');
    CHECK(segnode::sha256File(row.substr(0, bar)) == row.substr(bar + 1));
  }
  // The Philips MPRAGE: 170 instances in one series with its geometry summary.
  CHECK(node.queryInt("SELECT MAX(instance_count) FROM series") == 170);
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances WHERE image_orientation IS NULL AND rows IS NOT NULL "
                      "AND sop_class_uid = '1.2.840.10008.5.1.4.1.1.4'") == 0);
  node.stop();
  CHECK(fs::is_empty(node.spool() / ".tmp"));
}

TEST_CASE("all nine transfer syntaxes are accepted and stored unchanged - DCMTK-decodable ones give the same pixels",
          "[node][dicom][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  auto files = dicomFilesIn(dicomData("siemens_trio_transfer_syntaxes"));
  REQUIRE(files.size() == 9);
  auto r = node.storeAsIs(files);
  INFO(r.output);
  REQUIRE(r.exitCode == 0);
  node.stop();
  auto syntaxes = node.queryStrings("SELECT DISTINCT transfer_syntax FROM instances");
  CHECK(syntaxes.size() == 7);  // files 5/6 and 7/8 share a syntax
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances WHERE transfer_syntax = '1.2.840.10008.1.2.4.90'") == 1);
  // The stored files are what was sent: same data set, same encoding.
  for (const auto& f : files) {
    std::string uid = sopInstanceUidOf(f);
    auto stored = node.queryStrings("SELECT file_path FROM instances WHERE sop_instance_uid = '" + uid + "'");
    REQUIRE(stored.size() == 1);
    CHECK(transferSyntaxOf(stored[0]) == transferSyntaxOf(f));
    CHECK(pixelBytesOf(stored[0]) == pixelBytesOf(f));
  }
  // Decoded from the spool, all nine give the pixels of the uncompressed file 1, JPEG 2000 too.
  auto reference = segnode::dicom::decodePixels(files[0]);
  REQUIRE(reference.data.size() == size_t(384) * 384 * 2);
  for (const auto& path : node.queryStrings("SELECT file_path FROM instances")) {
    INFO(path);
    auto px = segnode::dicom::decodePixels(path);
    CHECK(px.rows == 384);
    CHECK(px.data == reference.data);
  }
}

TEST_CASE("a non-image SOP class and an instance without Series UID are refused and nothing is stored",
          "[node][dicom][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  auto seg = segnode::test::sharedData("seg_examples/dcmqi/segmentations/liver.dcm");
  REQUIRE(!seg.empty());
  auto r = node.storescu({"-R"}, {seg.string()});
  CHECK(r.exitCode != 0);
  // Nothing the SCU proposed is acceptable, so the association itself is rejected.
  CHECK_THAT(r.output, Catch::Contains("Association Rejected"));

  TempDir tmp;
  auto src = dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag")).front();
  auto noSeries = tmp / "noseries.dcm";
  fs::copy_file(src, noSeries);
  REQUIRE(runCommand({"dcmodify", "-nb", "-ma", "(0020,000e)=", noSeries.string()}).exitCode == 0);
  r = node.storescu({"-v", "-R"}, {noSeries.string()});
  CHECK_THAT(r.output, Catch::Contains("Received Store Response (Error: CannotUnderstand)"));
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == 0);
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals WHERE reason LIKE 'SeriesInstanceUID (0020,000E) is missing%'") == 1);
  CHECK(segnode::test::dicomFilesIn(node.spool()).empty());
}

TEST_CASE("UIDs with a leading zero in a component, as old modalities send them, are stored", "[node][dicom][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  TempDir tmp;
  auto file = tmp / "old.dcm";
  fs::copy_file(dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag")).front(), file);
  REQUIRE(runCommand({"dcmodify", "-nb", "-m", "(0020,000e)=1.2.826.0.1.03.7", "-m", "(0008,0018)=1.2.826.0.1.03.7.001",
                      file.string()}).exitCode == 0);
  CHECK(node.storescu({}, {file.string()}).exitCode == 0);
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances WHERE sop_instance_uid = '1.2.826.0.1.03.7.001'") == 1);
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals") == 0);
}

// The spool files of one SOP instance.
std::vector<fs::path> copiesOf(const NodeProcess& node, const std::string& sop) {
  std::vector<fs::path> out;
  for (const auto& f : dicomFilesIn(node.spool()))
    if (sopInstanceUidOf(f) == sop) out.push_back(f);
  return out;
}

TEST_CASE("an instance resent in another series moves there for good - one file, no flip at restarts",
          "[node][dicom][recovery][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  TempDir tmp;
  auto first = dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag")).front();
  const std::string sop = sopInstanceUidOf(first), oldSeries = "1.2.826.0.1.3680043.10.543.1",
                    newSeries = "1.2.826.0.1.3680043.10.543.2";
  auto inOld = tmp / "old.dcm", inNew = tmp / "new.dcm";
  fs::copy_file(first, inOld);
  REQUIRE(runCommand({"dcmodify", "-nb", "-m", "(0020,000e)=" + oldSeries, inOld.string()}).exitCode == 0);
  fs::copy_file(inOld, inNew);
  REQUIRE(runCommand({"dcmodify", "-nb", "-m", "(0020,000e)=" + newSeries, inNew.string()}).exitCode == 0);
  REQUIRE(node.storescu({}, {inOld.string()}).exitCode == 0);
  REQUIRE(node.storescu({}, {inNew.string()}).exitCode == 0);
  for (int restart = 0; restart < 3; ++restart) {
    node.stop();
    INFO("restart " << restart);
    CHECK(node.queryStrings("SELECT series_uid FROM instances WHERE sop_instance_uid = '" + sop + "'") ==
          std::vector<std::string>{newSeries});
    CHECK(node.queryInt("SELECT instance_count FROM series WHERE series_uid = '" + oldSeries + "'") == 0);
    CHECK(node.queryInt("SELECT instance_count FROM series WHERE series_uid = '" + newSeries + "'") == 1);
    auto copies = copiesOf(node, sop);
    REQUIRE(copies.size() == 1);
    DcmFileFormat ff;
    REQUIRE(ff.loadFile(copies[0].c_str()).good());
    OFString series;
    ff.getDataset()->findAndGetOFString(DCM_SeriesInstanceUID, series);
    CHECK(series.c_str() == newSeries);
    node.start();
  }
  node.stop();
}

TEST_CASE("a changed resend whose row cannot commit leaves the acknowledged copy whole - recovery removes the other",
          "[node][dicom][recovery][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  TempDir tmp;
  auto original = dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag")).front();
  auto changed = tmp / "changed.dcm";
  fs::copy_file(original, changed);
  REQUIRE(runCommand({"dcmodify", "-nb", "-i", "(0010,4000)=corrected by the modality", changed.string()}).exitCode == 0);
  const std::string sop = sopInstanceUidOf(original);
  REQUIRE(node.storescu({}, {original.string()}).exitCode == 0);
  {
    // Another writer holds the database until the C-STORE is answered, past the node's busy
    // timeout (10 s): the row of the changed copy cannot commit, and the C-STORE is refused.
    std::promise<void> locked, answered;
    std::thread writer([&] {
      SQLite::Database db(node.database().string(), SQLite::OPEN_READWRITE);
      db.exec("BEGIN EXCLUSIVE");
      locked.set_value();
      answered.get_future().wait();
      db.exec("ROLLBACK");
    });
    locked.get_future().wait();
    auto sent = node.storescu({"-v"}, {changed.string()});
    answered.set_value();
    writer.join();
    CHECK_THAT(sent.output, Catch::Contains("Received Store Response (Refused: OutOfResources)"));
  }
  node.stop();
  auto row = node.queryStrings("SELECT file_path || '|' || sha256 FROM instances WHERE sop_instance_uid = '" + sop + "'");
  REQUIRE(row.size() == 1);
  const auto bar = row[0].find('|');
  const std::string path = row[0].substr(0, bar), sha = row[0].substr(bar + 1);
  CHECK(segnode::sha256File(path) == sha);
  DcmFileFormat ff;  // and it is the first copy, not the changed one
  REQUIRE(ff.loadFile(path.c_str()).good());
  CHECK_FALSE(ff.getDataset()->tagExists(DCM_PatientComments));
  CHECK(copiesOf(node, sop).size() == 2);  // the refused copy was renamed into place
  node.start();  // recovery: the copy the index does not name goes
  node.stop();
  auto copies = copiesOf(node, sop);
  REQUIRE(copies.size() == 1);
  CHECK(copies[0].string() == path);
  CHECK_THAT(node.log(), Catch::Contains("1 superseded copies removed"));
}

TEST_CASE("8 storescu processes in parallel: nothing lost, nothing duplicated", "[node][dicom][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  auto files = strings(dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag")));
  REQUIRE(files.size() == 170);
  std::vector<std::thread> senders;
  std::vector<int> codes(8, -1);
  for (int p = 0; p < 8; ++p) {
    // Each process sends every 8th file plus the first 10 (sent by all: resends must not duplicate).
    std::vector<std::string> mine(files.begin(), files.begin() + 10);
    for (size_t i = size_t(p) + 10; i < files.size(); i += 8) mine.push_back(files[i]);
    senders.emplace_back([&, p, mine] { codes[size_t(p)] = node.storescu({"-R"}, mine).exitCode; });
  }
  for (auto& t : senders) t.join();
  for (int c : codes) CHECK(c == 0);
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == 170);
  CHECK(node.queryInt("SELECT instance_count FROM series") == 170);
  CHECK(node.queryInt("SELECT SUM(receive_count) FROM instances") == 160 + 8 * 10);
}

TEST_CASE("load: 16 associations each send the Philips series 3 times - every C-STORE succeeds, peak RSS reported",
          "[node][dicom][data][load]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  const auto files = strings(dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag")));
  REQUIRE(files.size() == 170);
  std::vector<std::string> thrice;
  for (int r = 0; r < 3; ++r) thrice.insert(thrice.end(), files.begin(), files.end());
  const int associations = 16;
  std::vector<int> codes(associations, -1);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> senders;
  for (int a = 0; a < associations; ++a)
    senders.emplace_back([&, a] { codes[size_t(a)] = node.storescu({"-xe"}, thrice).exitCode; });
  for (auto& t : senders) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long rssMb = node.peakRssKb() / 1024;
  for (int c : codes) CHECK(c == 0);
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == 170);
  CHECK(node.queryInt("SELECT SUM(receive_count) FROM instances") == associations * 3 * 170);
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals") == 0);
  std::printf("load: %d associations x 3 x 170 = %d C-STOREs in %.1f s (%.0f/s), segnoded peak RSS %ld MB\n", associations,
              associations * 3 * 170, seconds, associations * 3 * 170 / seconds, rssMb);
}

TEST_CASE("crash safety: kill -9 during a send, restart - every acknowledged instance is stored intact",
          "[node][dicom][data][crash]") {
  if (!haveData()) return;
  auto files = strings(dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag")));
  NodeProcess node;
  std::mt19937 rng(20261125);
  const int rounds = 10;
  int acknowledgedTotal = 0;
  for (int round = 0; round < rounds; ++round) {
    node.start();
    // storescu -v logs each file it sends and each response, in order.
    TempDir tmp;
    auto logFile = tmp / "storescu.log";
    std::vector<std::string> argv{"storescu", "-v", "-R", "-aet", "STORESCU", "-aec", "SEGNODE", "127.0.0.1",
                                  std::to_string(node.port())};
    argv.insert(argv.end(), files.begin(), files.end());
    pid_t sender = spawnCommand(argv, logFile);
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 400));
    node.kill9();
    waitpid(sender, nullptr, 0);

    auto acknowledged = acknowledgedFiles(logFile);
    acknowledgedTotal += int(acknowledged.size());
    node.start();  // recovery runs here
    node.stop();
    INFO("round " << round << ": " << acknowledged.size() << " acknowledged");
    for (const auto& f : acknowledged) {
      std::string uid = sopInstanceUidOf(f);
      auto stored = node.queryStrings("SELECT file_path FROM instances WHERE sop_instance_uid = '" + uid + "'");
      REQUIRE(stored.size() == 1);
      REQUIRE(fs::exists(stored[0]));
      CHECK(pixelBytesOf(stored[0]) == pixelBytesOf(f));
    }
    CHECK(fs::is_empty(node.spool() / ".tmp"));
    // Every row has its file and every file its row.
    for (const auto& p : node.queryStrings("SELECT file_path FROM instances")) CHECK(fs::exists(p));
    CHECK(long(dicomFilesIn(node.spool()).size()) == node.queryInt("SELECT COUNT(*) FROM instances"));
  }
  CHECK(acknowledgedTotal > 0);  // the kills did not all land before the first response
}

TEST_CASE("a series becomes ready once after the quiet period - a late instance makes it ready again",
          "[node][series][data]") {
  if (!haveData()) return;
  NodeProcess node("", "series:\n  quiet_period_s: 1.5\n");
  node.start();
  auto files = strings(dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag")));
  REQUIRE(files.size() == 5);
  std::vector<std::string> first(files.begin(), files.begin() + 4);
  REQUIRE(node.storescu({"-R"}, first).exitCode == 0);
  CHECK(node.queryStrings("SELECT state FROM series") == std::vector<std::string>{"receiving"});
  // Ready once: generation counts it. With no routes configured the router then closes the
  // series at once with its reason.
  REQUIRE(waitFor([&] { return node.queryInt("SELECT generation FROM series") == 1; }, 6));
  REQUIRE(waitFor([&] { return node.queryStrings("SELECT state FROM series")[0] == "done"; }, 3));
  CHECK_THAT(node.queryStrings("SELECT note FROM series")[0], Catch::Contains("no route"));
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  CHECK(node.queryInt("SELECT generation FROM series") == 1);  // exactly once

  REQUIRE(node.storescu({"-R"}, {files[4]}).exitCode == 0);
  CHECK(node.queryStrings("SELECT state FROM series") == std::vector<std::string>{"receiving"});
  REQUIRE(waitFor([&] { return node.queryInt("SELECT generation FROM series") == 2; }, 6));
  CHECK(node.queryInt("SELECT instance_count FROM series") == 5);
  REQUIRE(waitFor([&] { return node.queryStrings("SELECT state FROM series")[0] == "done"; }, 3));
  REQUIRE(node.storescu({"-R"}, {files[0]}).exitCode == 0);  // identical resend: no change
  CHECK(node.queryStrings("SELECT state FROM series")[0] == "done");
  CHECK(node.queryInt("SELECT generation FROM series") == 2);
  node.stop();
}

TEST_CASE("below the disk watermark C-STORE answers out of resources and writes nothing", "[node][dicom][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.editConfig("min_free_mb: 10", "min_free_mb: 999999999");  // a watermark larger than any disk
  node.start();
  auto files = strings(dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag")));
  auto r = node.storescu({"-v", "-R"}, files);
  CHECK_THAT(r.output, Catch::Contains("Received Store Response (Refused: OutOfResources)"));
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == 0);
  CHECK(dicomFilesIn(node.spool()).empty());
  CHECK(fs::is_empty(node.spool() / ".tmp"));
  // storescu stops at the first refusal; the refusal is on record with its reason.
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals WHERE reason LIKE '%below the storage.min_free_mb watermark%'") == 1);
}

TEST_CASE("the disk falls below the watermark in the middle of a series - refused with A700, accepted once space frees, nothing corrupted",
          "[node][dicom][data]") {
  if (!haveData()) return;
  NodeProcess node;
  // The watermark 600 MiB below today's free space; a 1.2 GiB file on the same disk crosses it.
  const auto freeMb = long(fs::space(node.dir()).available >> 20);
  if (segnode::test::missing(freeMb > 2000, "2 GB of free disk for the watermark test")) return;
  node.editConfig("min_free_mb: 10", "min_free_mb: " + std::to_string(freeMb - 600));
  node.start();
  const auto files = strings(dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag")));
  const std::vector<std::string> first(files.begin(), files.begin() + 60), rest(files.begin() + 60, files.end());
  REQUIRE(node.storescu({"-xe"}, first).exitCode == 0);
  const auto filler = node.dir() / "filler";
  {
    int fd = ::open(filler.c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::posix_fallocate(fd, 0, off_t(1200) << 20) == 0);
    ::close(fd);
  }
  auto refused = node.storescu({"-xe", "-v"}, rest);
  CHECK_THAT(refused.output, Catch::Contains("Received Store Response (Refused: OutOfResources)"));
  fs::remove(filler);
  REQUIRE(node.storescu({"-xe"}, rest).exitCode == 0);
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == 170);
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals WHERE reason LIKE '%below the storage.min_free_mb watermark%'") >= 1);
  for (const auto& f : files) {
    auto stored = node.queryStrings("SELECT file_path FROM instances WHERE sop_instance_uid = '" + sopInstanceUidOf(f) + "'");
    REQUIRE(stored.size() == 1);
    CHECK(pixelBytesOf(stored[0]) == pixelBytesOf(f));
  }
  CHECK(fs::is_empty(node.spool() / ".tmp"));
}

TEST_CASE("a data set larger than storage.max_dataset_mb is stopped as it arrives - nothing kept, the node serves on",
          "[node][dicom][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.editConfig("min_free_mb: 10", "min_free_mb: 10\n  max_dataset_mb: 1");
  node.start();
  TempDir tmp;
  auto files = dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag"));
  auto big = tmp / "big.dcm";
  fs::copy_file(files.front(), big);
  {
    std::ofstream blob(tmp / "blob", std::ios::binary);
    blob << std::string(3 << 20, 'x');  // 3 MiB of Encapsulated Document: the data set is > 1 MiB
  }
  REQUIRE(runCommand({"dcmodify", "-nb", "-if", "(0042,0011)=" + (tmp / "blob").string(), big.string()}).exitCode == 0);
  auto sent = node.storescu({"-v"}, {big.string()});
  CHECK(sent.exitCode != 0);
  CHECK_THAT(sent.output, !Catch::Contains("Received Store Response (Success)"));
  // The node is healthy: the next association is served and stored.
  CHECK(node.storescu({}, {files[1].string()}).exitCode == 0);
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == 1);
  CHECK(node.queryInt("SELECT COUNT(*) FROM refusals WHERE reason LIKE 'data set larger than storage.max_dataset_mb (1 MiB)%association aborted'") == 1);
  CHECK(dicomFilesIn(node.spool()).size() == 1);
  CHECK(fs::is_empty(node.spool() / ".tmp"));
}

TEST_CASE("segnoded --check-config reports every problem with file, key and fix - inside lists too", "[node][config]") {
  TempDir tmp;
  auto cfg = tmp / "bad.yaml";
  std::ofstream(cfg) << "dicom:\n  ae_title: THIS_TITLE_IS_FAR_TOO_LONG\n  port: 70000\n  peers: []\n  sop_classes: [mr, xray]\n"
                        "  uid_root: 1.2.03\n  tls: {certificate: /nonexistent.crt}\n"
                        "storage:\n  min_free_mb: -1\n  retension_hours: 3\n  max_dataset_mb: 0\nseries:\n  quiet_period_s: 0\n"
                        "processing:\n  max_voxels: 0\n"
                        "destinations:\n  - {name: pacs, ae_title: PACS, host: 127.0.0.1, port: [104], tls: {min_version: 1.1}}\n"
                        "routes:\n  - {name: r, model: m, destinations: [pacs], macth: {modality: MR}}\n"
                        "  - {name: s, model: m, destinations: [pacs], on_implausible: ignore}\n";
  auto r = runCommand({segnodedPath().string(), "--config", cfg.string(), "--check-config"});
  CHECK(r.exitCode == 78);
  for (const char* key : {"dicom.ae_title", "dicom.port", "dicom.peers", "dicom.sop_classes", "storage.min_free_mb",
                          "storage.retension_hours", "series.quiet_period_s", "destinations[0].port", "routes[0].macth",
                          "dicom.uid_root", "dicom.tls", "dicom.tls.certificate", "storage.max_dataset_mb", "processing.max_voxels",
                          "destinations[0].tls.min_version", "destinations[0].tls.trusted_certificates",
                          "routes[1].on_implausible"}) {
    CHECK_THAT(r.output, Catch::Contains(cfg.string() + ": key '" + key + "'"));
  }
  CHECK_THAT(r.output, Catch::Contains("fix:"));
  auto good = runCommand({segnodedPath().string(), "--config", std::string(SEGNODE_SOURCE_DIR) + "/etc/segnode.yaml", "--check-config"});
  CHECK(good.exitCode == 0);
  CHECK(runCommand({segnodedPath().string(), "--config", (tmp / "missing.yaml").string()}).exitCode == 78);
}

TEST_CASE("retention deletes the spool files of finished series and keeps their rows", "[node][retention][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.editConfig("min_free_mb: 10", "min_free_mb: 10\n  retention_hours: 0.0005");  // 1.8 s
  node.start();
  auto files = dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag"));
  REQUIRE(node.storeAsIs(files).exitCode == 0);
  node.stop();
  // The pipeline (next issue) marks series done; here the database is edited as it would.
  {
    SQLite::Database db(node.database().string(), SQLite::OPEN_READWRITE);
    db.exec("UPDATE series SET state = 'done', done_ms = CAST(strftime('%s','now') AS INTEGER) * 1000");
  }
  node.start();
  REQUIRE(waitFor([&] { return node.queryStrings("SELECT state FROM series")[0] == "purged"; }, 10));
  node.stop();
  CHECK(dicomFilesIn(node.spool()).empty());
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == 5);  // the audit trail stays
}

TEST_CASE("segnode backup copies the database while segnoded runs - consistent, and never over an existing file",
          "[node][storage][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  REQUIRE(node.storeAsIs(dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag"))).exitCode == 0);
  TempDir tmp;
  const auto copy = tmp / "backup.db";
  const std::string segnode = (segnodedPath().parent_path() / "segnode").string();
  auto r = runCommand({segnode, "backup", copy.string(), "--config", node.configFile().string()});
  INFO(r.output);
  CHECK(r.exitCode == 0);
  CHECK(node.running());
  {
    SQLite::Database db(copy.string(), SQLite::OPEN_READONLY);
    CHECK(db.execAndGet("PRAGMA integrity_check").getString() == "ok");
    CHECK(db.execAndGet("SELECT COUNT(*) FROM instances").getInt() == 5);
  }
  auto again = runCommand({segnode, "backup", copy.string(), "--config", node.configFile().string()});
  CHECK(again.exitCode == 64);
  CHECK_THAT(again.output, Catch::Contains("exists"));
  node.stop();
}

TEST_CASE("recovery: temp files removed, orphan files indexed, rows without files dropped", "[node][recovery][data]") {
  if (!haveData()) return;
  NodeProcess node;
  node.start();
  auto files = dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag"));
  REQUIRE(node.storeAsIs(files).exitCode == 0);
  node.kill9();
  auto paths = node.queryStrings("SELECT file_path FROM instances ORDER BY file_path");
  REQUIRE(paths.size() == 5);
  fs::remove(paths[0]);  // a row whose file is gone
  {
    SQLite::Database db(node.database().string(), SQLite::OPEN_READWRITE);  // a file whose row is gone
    db.exec("DELETE FROM instances WHERE file_path = '" + paths[1] + "'");
  }
  std::ofstream(node.spool() / ".tmp" / "half.part") << "half a file";
  node.start();
  node.stop();
  CHECK(fs::is_empty(node.spool() / ".tmp"));
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == 4);
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances WHERE file_path = '" + paths[1] + "'") == 1);
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances WHERE file_path = '" + paths[0] + "'") == 0);
  CHECK_THAT(node.log(), Catch::Contains("1 temp files removed, 1 rows without file dropped, 1 files re-indexed"));
}
