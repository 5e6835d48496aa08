// End to end with a real PACS (issue: DICOM node part 2): Orthanc sends a series to segnoded, the
// node segments it with a random-weight bundle made here and sends a DICOM-SEG back.
#include <sys/wait.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "NodeHarness.h"
#include "OrthancProcess.h"
#include "SegDecode.h"
#include <nlohmann/json.hpp>
#include "daemon/dicom/SeriesLoader.h"
#include "engine/Model.h"
#include "engine/Nifti.h"

using namespace segnode;
using namespace segnode::test;
namespace fs = std::filesystem;

namespace {

// A small network on the real brain label table: fast enough for CI, never shipped.
void makeBundle(const fs::path& models) {
  engine::BundleSpec spec = engine::loadBundleTemplate(fs::path(SEGNODE_SOURCE_DIR) / "etc/templates/brain-mr-synthseg.yaml");
  spec.name = "e2e-brain";
  spec.version = {0, 0, 1};
  spec.architecture = engine::ArchitectureSpec::nnunetDefault(3, int(spec.labels.size()));
  spec.architecture.features = {4, 8, 16};
  spec.architecture.convBias = false;
  spec.inference.patchSize = {96, 96, 96};
  spec.provenance = {{"untrained", true}};
  engine::writeRandomBundle(spec, models / "e2e-brain" / "0.0.1", 3);
}

struct Site {
  NodeProcess node{"  peers:\n    - {ae_title: ORTHANC, host: 127.0.0.1}\n    - {ae_title: STORESCU, host: 127.0.0.1}\n"};
  OrthancProcess pacs;
  // orthancJson: more of Orthanc's configuration; destinationTls: the pacs destination's tls value.
  explicit Site(const std::string& orthancJson = "", const std::string& destinationTls = "")
      : pacs(node.port(), orthancJson) {
    makeBundle(node.dir() / "models");
    node.appendConfig("series:\n  quiet_period_s: 1\nprocessing:\n  models_dir: " + (node.dir() / "models").string() +
                      "\n  output_dir: " + (node.dir() / "out").string() +
                      "\n  threads_per_worker: 2\n"
                      "destinations:\n  - {name: pacs, ae_title: ORTHANC, host: 127.0.0.1, port: " +
                      std::to_string(pacs.dicomPort()) + (destinationTls.empty() ? "" : ", tls: " + destinationTls) +
                      "}\nretry: {base_s: 0.5, cap_s: 1, max_attempts: 3}\n"
                      "routes:\n  - {name: brain-t1, match: {modality: MR, min_slices: 20}, model: e2e-brain, destinations: [pacs]}\n");
  }
};
// Sends the Philips MPRAGE as it is, waits for its SEG at the PACS and checks it with dciodvfy (0
// errors); returns dcmdump's print of the SEG's SeriesDescription, ContentDescription and `segmentTag`.
std::string sendMprageForItsSeg(Site& site, const std::string& segmentTag) {
  REQUIRE(site.node.storeAsIs(dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag") / "dicom")).exitCode == 0);
  if (!waitFor([&] { return !site.pacs.instancesOfModality("SEG").empty(); }, 240)) FAIL(site.node.log());
  TempDir tmp;
  site.pacs.download(site.pacs.instancesOfModality("SEG")[0], tmp / "seg.dcm");
  std::string report;
  if (dciodvfyErrors(tmp / "seg.dcm", report) != 0) FAIL_CHECK(report);
  return runCommand({"dcmdump", "+P", "SeriesDescription", "+P", "ContentDescription", "+P", segmentTag, (tmp / "seg.dcm").string()})
      .output;
}

// Declares plausibility ranges in the test bundle (issue 16): a labelled volume no brain has, so
// that every result of the random network is implausible.
void declareImpossibleBrain(const fs::path& models) {
  const fs::path dir = models / "e2e-brain" / "0.0.1";
  engine::BundleSpec spec = engine::loadBundleSpec(dir);
  spec.plausibility.declared = true;
  spec.plausibility.labelledVolumeMl = {1e6, 2e6};
  spec.plausibility.source = "test: a range no result reaches";
  engine::saveBundleSpec(spec, dir / "bundle.yaml");
}

// Declares a volume range for one structure of the test bundle that no result meets (at least 1 L of
// it), and nothing else: every result fails on that structure alone. Returns its name.
std::string declareImpossibleStructure(const fs::path& models) {
  const fs::path dir = models / "e2e-brain" / "0.0.1";
  engine::BundleSpec spec = engine::loadBundleSpec(dir);
  spec.plausibility.declared = true;
  spec.plausibility.structureVolumeMl = {{spec.labels.at(2).name, {1000, 2000}}};
  spec.plausibility.source = "test: one structure's range no result reaches";
  engine::saveBundleSpec(spec, dir / "bundle.yaml");
  return spec.labels.at(2).name;
}

// Orthanc (Debian's package) and the series a test sends: a skip when either is not here.
bool absent(const std::string& series) {
  return segnode::test::missing(OrthancProcess::available(), "Orthanc (/usr/sbin/Orthanc)") ||
         segnode::test::missing(!dicomData(series).empty(), "../shared/data/dicom/" + series);
}

// Copies of `files` in `dir`, edited by dcmodify with `edits` (e.g. a new SeriesInstanceUID and
// -gin for new SOP Instance UIDs): a series the node has not seen. Returns the copies' paths.
std::vector<std::string> editedCopies(const std::vector<fs::path>& files, const fs::path& dir,
                                      const std::vector<std::string>& edits) {
  fs::create_directories(dir);
  std::vector<std::string> argv{"dcmodify", "-nb"}, copies;
  argv.insert(argv.end(), edits.begin(), edits.end());
  for (const auto& f : files) {
    copies.push_back((dir / f.filename()).string());
    fs::copy_file(f, copies.back());
  }
  argv.insert(argv.end(), copies.begin(), copies.end());
  REQUIRE(runCommand(argv).exitCode == 0);
  return copies;
}

// A number from the environment (the full runs of docs/reliability.md), else the ctest default.
double envNumber(const char* name, double ctestDefault) {
  const char* v = std::getenv(name);
  return v ? std::atof(v) : ctestDefault;
}
}  // namespace

TEST_CASE("Orthanc sends the Philips MPRAGE - a valid DICOM-SEG referencing it comes back", "[pipeline][orthanc][data]") {
  if (absent("philips_ingenia_elitionx_t1_mprage_sag")) return;
  Site site;
  const std::string root = "1.2.826.0.1.3680043.10.543";  // the SEG's new UIDs are made under the site's root
  site.node.editConfig("  max_associations: 16\n", "  max_associations: 16\n  uid_root: " + root + "\n");
  site.pacs.start();
  site.node.start();
  auto files = dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag") / "dicom");
  std::vector<std::string> args{"storescu", "-aet", "STORESCU", "-aec", "ORTHANC", "127.0.0.1", std::to_string(site.pacs.dicomPort())};
  for (const auto& f : files) args.push_back(f.string());
  REQUIRE(runCommand(args).exitCode == 0);
  const auto ids = nlohmann::json::parse(site.pacs.get("/series"));
  REQUIRE(ids.size() == 1);
  // Orthanc's own job: C-STORE the series to the node.
  REQUIRE(!site.pacs.post("/modalities/segnode/store", ids[0].get<std::string>()).empty());

  REQUIRE(waitFor([&] { return !site.pacs.instancesOfModality("SEG").empty(); }, 240));
  auto segs = site.pacs.instancesOfModality("SEG");
  REQUIRE(segs.size() == 1);
  TempDir tmp;
  site.pacs.download(segs[0], tmp / "seg.dcm");
  std::string report;
  INFO(report);
  CHECK(dciodvfyErrors(tmp / "seg.dcm", report) == 0);
  auto dump = runCommand({"dcmdump", "+P", "0008,1115", "+P", "SeriesInstanceUID", "+P", "SegmentLabel", "+P",
                          "SegmentAlgorithmName", (tmp / "seg.dcm").string()}).output;
  for (const char* tag : {"SOPInstanceUID", "DimensionOrganizationUID"}) {
    auto uid = runCommand({"dcmdump", "-s", "+P", tag, (tmp / "seg.dcm").string()}).output;
    INFO(tag << ": " << uid);
    CHECK_THAT(uid, Catch::Contains("[" + root + "."));
  }
  CHECK(site.node.queryStrings("SELECT seg_series_uid FROM jobs")[0].rfind(root + ".", 0) == 0);
  std::string sourceSeries = site.node.queryStrings("SELECT series_uid FROM series")[0];
  CHECK_THAT(dump, Catch::Contains(sourceSeries));  // ReferencedSeriesSequence
  CHECK_THAT(dump, Catch::Contains("e2e-brain 0.0.1"));
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 1);
  // The PACS has the SEG a moment before the node has the C-STORE response and records it.
  CHECK(waitFor([&] { return site.node.queryInt("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == 1; }, 10));
  auto status = runCommand({fs::path(SEGNODED_PATH).parent_path() / "segnode", "status", "--config", site.node.configFile().string()});
  CHECK(status.exitCode == 0);
  CHECK_THAT(status.output, Catch::Contains("sent=1"));
  // The audit trail: Orthanc's association, accepted, and the SEG's delivery, sent.
  auto audit = runCommand({fs::path(SEGNODED_PATH).parent_path() / "segnode", "audit", "--since", "1h", "--config",
                           site.node.configFile().string()});
  CHECK(audit.exitCode == 0);
  CHECK_THAT(audit.output, Catch::Contains("association accepted ORTHANC@127.0.0.1"));
  CHECK_THAT(audit.output, Catch::Contains("delivery    sent     pacs job 1, SEG " + site.node.queryStrings("SELECT seg_sop_uid FROM jobs")[0]));
  site.node.stop();
}

namespace {
// Dice of label value `predicted` in `labels` against `reference` in `ref` (same grid, [k][j][i]).
double dice(const std::vector<uint16_t>& labels, int predicted, const torch::Tensor& ref, int reference) {
  const auto r = ref.to(torch::kShort).contiguous();
  const int16_t* v = r.data_ptr<int16_t>();
  int64_t both = 0, a = 0, b = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool p = labels[i] == predicted, q = v[i] == reference;
    both += p && q, a += p, b += q;
  }
  return a + b ? 2.0 * double(both) / double(a + b) : 1.0;
}
}  // namespace

TEST_CASE("a real abdominal CT through the node and the installed CT model - its organs come back to Orthanc as a valid SEG",
          "[pipeline][orthanc][data][ct]") {
  const fs::path ct = sharedData("abdomen_ct/totalseg_example_ct/example_ct.nii.gz");
  const fs::path reference = sharedData("abdomen_ct/totalseg_example_ct/example_seg_fast_force_split.nii.gz");
  const fs::path models = fs::path(SEGNODE_SOURCE_DIR) / "etc/models";
  if (missing(OrthancProcess::available(), "Orthanc (/usr/sbin/Orthanc)") ||
      missing(fs::exists(ct) && fs::exists(reference), "../shared/data/abdomen_ct/totalseg_example_ct") ||
      missing(runCommand({"/usr/bin/python3", "-c", "import pydicom, nibabel"}).exitCode == 0, "python3-pydicom"))
    return;
  // The example CT as the series a scanner would send (no abdominal CT DICOM is in the shared
  // data): in a 480 mm field of view, mostly air around the body, where the example as distributed
  // is cut to the body. Without the CT bundles' body crop the teacher labelled that air as liver
  // and the route rejected the series (docs/benchmarks.md, "The CT body crop").
  TempDir tmp;
  REQUIRE(runCommand({"/usr/bin/python3", std::string(SEGNODE_SOURCE_DIR) + "/bench/ct-fov.py", sharedData("").string(),
                      (tmp / "fov").string(), "--fovs", "480"}).exitCode == 0);
  REQUIRE(runCommand({"/usr/bin/python3", std::string(SEGNODE_SOURCE_DIR) + "/bench/nifti-to-ct-dicom.py",
                      (tmp / "fov" / "example_ct_fov480.nii.gz").string(), (tmp / "ct").string(), "CT ABDOMEN example"})
              .exitCode == 0);
  const auto files = dicomFilesIn(tmp / "ct");
  NodeProcess node{"  peers:\n    - {ae_title: STORESCU, host: 127.0.0.1}\n"};
  OrthancProcess pacs(node.port());
  // The default config's CT route (etc/segnode.yaml) and the installed bundles.
  node.appendConfig("series:\n  quiet_period_s: 1\nprocessing:\n  models_dir: " + models.string() +
                    "\n  output_dir: " + (node.dir() / "out").string() + "\n  threads_per_worker: 2\n"
                    "destinations:\n  - {name: pacs, ae_title: ORTHANC, host: 127.0.0.1, port: " +
                    std::to_string(pacs.dicomPort()) + "}\n"
                    "routes:\n  - {name: abdomen-ct, match: {modality: CT, body_part: ABDOMEN, min_slices: 20}, "
                    "model: abdomen-ct-teacher, destinations: [pacs]}\n");
  pacs.start();
  node.start(120);  // the teacher loads and its precisions are timed before the node listens
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.string());
  REQUIRE(node.storescu({}, names).exitCode == 0);
  REQUIRE(waitFor([&] { return !pacs.instancesOfModality("SEG").empty(); }, 300));
  INFO(node.log());
  CHECK(node.queryStrings("SELECT plausibility FROM jobs")[0].rfind("plausible", 0) == 0);
  auto segs = pacs.instancesOfModality("SEG");
  REQUIRE(segs.size() == 1);
  pacs.download(segs[0], tmp / "seg.dcm");
  std::string report;
  const int errors = dciodvfyErrors(tmp / "seg.dcm", report);
  INFO(report);
  CHECK(errors == 0);
  // Decoded on the series' grid, the organs are where TotalSegmentator's reference has them, as
  // `segnode-distill evaluate` measured on the NIfTI (docs/models.md: 0.90-0.96).
  const auto grid = dicom::loadSeries(files).geometry;
  const engine::Volume ref = engine::readNifti(tmp / "fov" / "example_seg_fov480.nii.gz");
  REQUIRE(ref.geometry.size == grid.size);
  for (int a = 0; a < 3; ++a) REQUIRE(std::abs(ref.geometry.origin[a] - grid.origin[a]) < 1e-3);
  std::string newest;
  for (const auto& d : fs::directory_iterator(models / "abdomen-ct-teacher")) newest = std::max(newest, d.path().string());
  const auto table = engine::loadBundleSpec(newest).labels;
  const auto labels = decodeSeg(tmp / "seg.dcm", grid, table);
  // FLARE22 values (liver 1, right kidney 2, spleen 3, left kidney 13) against TotalSegmentator's
  // (5, 2, 1, 3): training/eval/abdomen-ct-cases.yaml.
  for (auto [name, predicted, truth] : std::vector<std::tuple<const char*, int, int>>{
           {"liver", 1, 5}, {"right kidney", 2, 2}, {"spleen", 3, 1}, {"left kidney", 13, 3}}) {
    INFO(name);
    CHECK(dice(labels, predicted, ref.data, truth) > 0.85);
  }
  node.stop();
}

TEST_CASE("the SEG goes to an Orthanc that speaks DICOM TLS - verified both ways", "[pipeline][orthanc][tls][data]") {
  if (absent("philips_ingenia_elitionx_t1_mprage_sag")) return;
  if (segnode::test::missing(runCommand({"openssl", "version"}).exitCode == 0, "openssl(1)")) return;
  TestPki pki;
  Site site(", \"DicomTlsEnabled\": true, \"DicomTlsCertificate\": \"" + pki.crt("orthanc") +
                "\", \"DicomTlsPrivateKey\": \"" + pki.key("orthanc") + "\", \"DicomTlsTrustedCertificates\": \"" +
                pki.crt("ca") + "\", \"DicomTlsRemoteCertificateRequired\": true",
            "{trusted_certificates: [" + pki.crt("ca") + "], certificate: " + pki.crt("client") +
                ", private_key: " + pki.key("client") + "}");
  site.pacs.start();
  site.node.start();
  REQUIRE(site.node.storeAsIs(dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag") / "dicom")).exitCode == 0);
  REQUIRE(waitFor([&] { return !site.pacs.instancesOfModality("SEG").empty(); }, 240));
  CHECK(site.pacs.instancesOfModality("SEG").size() == 1);
  CHECK(waitFor([&] { return site.node.queryInt("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == 1; }, 10));
  site.node.stop();
}

// The full run is tests/fault-rounds.sh (SEGNODE_FAULT_ROUNDS=20); ctest runs 3 rounds.
TEST_CASE("fault rounds: kill -9 at random points across ingest, inference and sending - nothing acknowledged is lost, every job ends, one SEG per job",
          "[pipeline][orthanc][fault][data]") {
  if (absent("philips_ingenia_elitionx_t1_mprage_sag")) return;
  const int rounds = std::max(1, int(envNumber("SEGNODE_FAULT_ROUNDS", 3)));
  Site site;
  site.pacs.start();
  const auto source = dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag") / "dicom");
  std::mt19937 rng(20261201);
  TempDir work;
  std::vector<std::string> acknowledged;
  std::vector<double> killedAt;
  for (int round = 0; round < rounds; ++round) {
    // Each round sends the series anew, under its own Series and SOP Instance UIDs.
    const auto dir = work / ("round" + std::to_string(round));
    const auto files =
        editedCopies(source, dir, {"-gin", "-m", "(0020,000e)=1.2.826.0.1.3680043.10.543.7." + std::to_string(round)});
    site.node.start();
    std::vector<std::string> send{"storescu", "-v", "-xe", "-aet", "STORESCU", "-aec", "SEGNODE", "127.0.0.1",
                                  std::to_string(site.node.port())};
    send.insert(send.end(), files.begin(), files.end());
    pid_t sender = spawnCommand(send, dir / "storescu.log");
    // A round takes about 20 s from the first C-STORE to the SEG in Orthanc: the kill lands in
    // ingest, the quiet period, inference, the SEG or its sending.
    killedAt.push_back(std::uniform_real_distribution<double>(0.2, 22)(rng));
    std::this_thread::sleep_for(std::chrono::duration<double>(killedAt.back()));
    site.node.kill9();
    waitpid(sender, nullptr, 0);
    for (const auto& f : acknowledgedFiles(dir / "storescu.log")) acknowledged.push_back(f);
  }
  site.node.start();  // recovery, then everything left runs to its end
  auto settled = [&] {
    return site.node.queryInt("SELECT COUNT(*) FROM series WHERE state IN ('receiving', 'ready', 'processing')") == 0 &&
           site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')") == 0 &&
           site.node.queryInt("SELECT COUNT(*) FROM outbox WHERE state = 'pending'") == 0;
  };
  REQUIRE(waitFor(settled, 60.0 * rounds));
  site.node.stop();

  for (const auto& f : acknowledged) {
    auto stored = site.node.queryStrings("SELECT file_path FROM instances WHERE sop_instance_uid = '" + sopInstanceUidOf(f) + "'");
    REQUIRE(stored.size() == 1);
    CHECK(pixelBytesOf(stored[0]) == pixelBytesOf(f));
  }
  const long long done = site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'done'");
  const long long failed = site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'failed'");
  // A job ends done, or failed because the process died during each of its attempts.
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'failed' AND reason NOT LIKE '%attempts%'") == 0);
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'") == 0);
  // Exactly one SEG per done job: a delivery repeated after a kill carries the same SOP Instance
  // UID, so Orthanc keeps one.
  CHECK((long long)site.pacs.instancesOfModality("SEG").size() == done);
  std::string when;
  for (double t : killedAt) when += std::to_string(t).substr(0, 4) + " ";
  std::string refusals;
  for (const auto& r : site.node.queryStrings("SELECT COUNT(*) || ' x ' || reason FROM refusals GROUP BY reason"))
    refusals += "; refused " + r;
  std::printf("fault rounds: %d kills at %ss; %zu instances acknowledged, 0 lost; %lld jobs done, %lld failed after "
              "their attempts; %zu SEGs in Orthanc%s\n",
              rounds, when.c_str(), acknowledged.size(), done, failed, site.pacs.instancesOfModality("SEG").size(),
              refusals.empty() ? "; no refusals" : refusals.c_str());
}

// SEGNODE_DESTINATION_DOWN_S (default 8) sets how long the second destination stays down: the
// full run (docs/reliability.md) keeps it down for minutes.
TEST_CASE("a destination that is down does not delay another - it gets the SEG when it comes back",
          "[pipeline][orthanc][data]") {
  if (absent("siemens_xa30_prisma_epi_sag_classic")) return;
  const double down = envNumber("SEGNODE_DESTINATION_DOWN_S", 8);
  Site site;
  OrthancProcess archive(site.node.port());
  site.node.editConfig("destinations: [pacs]}", "destinations: [pacs, archive]}");
  site.node.editConfig("}\nretry: {base_s: 0.5, cap_s: 1, max_attempts: 3}",
                       "}\n  - {name: archive, ae_title: ORTHANC, host: 127.0.0.1, port: " + std::to_string(archive.dicomPort()) +
                           "}\nretry: {base_s: 1, cap_s: 10, max_attempts: 1000}");
  site.pacs.start();
  site.node.start();  // the archive is not running
  std::vector<std::string> names;
  for (const auto& f : dicomFilesIn(dicomData("siemens_xa30_prisma_epi_sag_classic") / "dicom")) names.push_back(f.string());
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(site.node.storescu({}, names).exitCode == 0);
  REQUIRE(waitFor([&] { return site.pacs.instancesOfModality("SEG").size() == 1; }, 120));
  const double pacsSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM outbox WHERE destination = 'archive' AND state = 'pending'") == 1);
  std::this_thread::sleep_for(std::chrono::duration<double>(down));
  const long long failedAttempts = site.node.queryInt("SELECT attempts FROM outbox WHERE destination = 'archive'");
  CHECK(failedAttempts >= 1);
  archive.start();
  REQUIRE(waitFor([&] { return archive.instancesOfModality("SEG").size() == 1; }, 60));
  site.node.stop();
  CHECK(site.pacs.instancesOfModality("SEG").size() == 1);
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == 2);
  std::printf("destination down %.0f s: the other had its SEG %.1f s after the send; the down one failed %lld attempts, "
              "then got it\n", down, pacsSeconds, failedAttempts);
}

// SEGNODE_QUEUE_SERIES (default 10) series queued at once; the full run (docs/reliability.md) is 50.
TEST_CASE("a queue of series is worked off while SEGs go out as they are made and C-STOREs stay answered",
          "[pipeline][orthanc][data][load]") {
  if (absent("siemens_xa30_prisma_epi_sag_classic")) return;
  const int n = std::max(2, int(envNumber("SEGNODE_QUEUE_SERIES", 10)));
  Site site;
  site.pacs.start();
  site.node.start();
  const auto source = dicomFilesIn(dicomData("siemens_xa30_prisma_epi_sag_classic") / "dicom");
  TempDir work;
  std::vector<std::string> all;
  for (int k = 0; k < n; ++k) {  // n copies of the series, each with its own Series and SOP Instance UIDs
    const auto copies =
        editedCopies(source, work / std::to_string(k), {"-gin", "-m", "(0020,000e)=1.2.826.0.1.3680043.10.543.9." + std::to_string(k)});
    all.insert(all.end(), copies.begin(), copies.end());
  }
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto since = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  REQUIRE(site.node.storescu({"-xe"}, all).exitCode == 0);
  // While the queue is worked off: C-ECHO and a C-STORE are answered promptly, and SEGs arrive.
  double firstSeg = -1, slowestAnswer = 0;
  const auto probe = source.front();
  std::string died;
  REQUIRE(waitFor([&] {
    if (died = site.node.exitReport(); !died.empty()) return true;  // not 30 s x n of refused connections
    const auto a = Clock::now();
    CHECK(site.node.echoscu().exitCode == 0);
    CHECK(site.node.storescu({"-xe"}, {probe.string()}).exitCode == 0);
    slowestAnswer = std::max(slowestAnswer, std::chrono::duration<double>(Clock::now() - a).count());
    const size_t segs = site.pacs.instancesOfModality("SEG").size();
    if (segs > 0 && firstSeg < 0) firstSeg = since();
    return segs == size_t(n);
  }, 30.0 * n));
  INFO(died);
  REQUIRE(died.empty());
  const double lastSeg = since();
  site.node.stop();
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'done'") == n);  // the probe's 1 image: no route
  CHECK(firstSeg < lastSeg / 2);  // SEGs go out as jobs finish, not after the queue
  CHECK(slowestAnswer < 5);
  std::printf("queue of %d series: first SEG in Orthanc at %.1f s, all %d at %.1f s (%.1f series/min); slowest C-ECHO + "
              "C-STORE while busy %.2f s\n", n, firstSeg, n, lastSeg, 60.0 * n / lastSeg, slowestAnswer);
}

TEST_CASE("a PACS that is down gets the SEG once it is back: exactly one arrives - dead letters can be retried",
          "[pipeline][orthanc][data]") {
  if (absent("siemens_xa30_prisma_epi_sag_classic")) return;
  Site site;
  site.node.start();  // the PACS is not running
  auto files = dicomFilesIn(dicomData("siemens_xa30_prisma_epi_sag_classic") / "dicom");
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.string());
  REQUIRE(site.node.storescu({}, names).exitCode == 0);
  // Three attempts fail, the delivery is dead-lettered with its reason.
  REQUIRE(waitFor([&] { return site.node.queryInt("SELECT COUNT(*) FROM outbox WHERE state = 'dead'") == 1; }, 240));
  CHECK_THAT(site.node.queryStrings("SELECT last_error FROM outbox")[0], Catch::Contains("association"));
  site.pacs.start();
  auto segnode = (fs::path(SEGNODED_PATH).parent_path() / "segnode").string();
  auto retry = runCommand({segnode, "retry", "--dead", "--config", site.node.configFile().string()});
  CHECK(retry.exitCode == 0);
  REQUIRE(waitFor([&] { return site.pacs.instancesOfModality("SEG").size() == 1; }, 60));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  CHECK(site.pacs.instancesOfModality("SEG").size() == 1);
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == 1);
  site.node.stop();
}

TEST_CASE("unrouted and unconvertible series are recorded with their reasons and nothing is sent",
          "[pipeline][data]") {
  if (absent("philips_achieva_epi_fmri")) return;
  Site site;
  site.node.start();
  auto send = [&](const std::string& folder) {
    std::vector<std::string> names;
    for (const auto& f : dicomFilesIn(dicomData(folder))) names.push_back(f.string());
    REQUIRE(site.node.storeAsIs(std::vector<fs::path>(names.begin(), names.end())).exitCode == 0);
  };
  send("siemens_prisma_gre_fieldmap_sag");  // 5 slices: no route (min_slices 20)
  send("philips_achieva_epi_fmri");         // 27 images of a 4D series: routed, then refused
  REQUIRE(waitFor([&] { return site.node.queryInt("SELECT COUNT(*) FROM series WHERE state = 'done'") == 2; }, 60));
  CHECK_THAT(site.node.queryStrings("SELECT note FROM series WHERE instance_count = 5")[0],
             Catch::Contains("no route: brain-t1: 5 slices, fewer than 20"));
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM jobs") == 1);
  CHECK(site.node.queryStrings("SELECT state FROM jobs")[0] == "rejected");
  CHECK_THAT(site.node.queryStrings("SELECT reason FROM jobs")[0], Catch::Contains("4D"));
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM outbox") == 0);
  site.node.stop();
}

TEST_CASE("a series larger than processing.max_voxels is refused at routing - no job, the reason on the series",
          "[pipeline][data]") {
  if (absent("philips_ingenia_elitionx_t1_mprage_sag")) return;
  Site site;
  site.node.editConfig("  threads_per_worker: 2\n", "  threads_per_worker: 2\n  max_voxels: 1000000\n");
  site.node.start();
  auto files = dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag"));
  REQUIRE(site.node.storeAsIs(files).exitCode == 0);
  REQUIRE(waitFor([&] { return site.node.queryInt("SELECT COUNT(*) FROM series WHERE state = 'done'") == 1; }, 60));
  const long long voxels = site.node.queryInt("SELECT SUM(rows * columns) FROM instances");
  CHECK(voxels > 1000000);
  CHECK(site.node.queryStrings("SELECT note FROM series")[0] ==
        "refused: " + std::to_string(voxels) + " voxels (route brain-t1) exceed processing.max_voxels (1000000)");
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM jobs") == 0);
  site.node.stop();
}

TEST_CASE("malformed series sent to a running node are refused with their reasons - the node stays up and segments the next",
          "[pipeline][malformed][data]") {
  if (absent("siemens_xa30_prisma_epi_sag_classic")) return;
  Site site;
  site.node.editConfig("min_slices: 20", "min_slices: 1");
  site.node.start();
  const auto good = dicomFilesIn(dicomData("siemens_xa30_prisma_epi_sag_classic") / "dicom");
  TempDir tmp;
  // Each malformed data set is a series of its own (what storescu can still send).
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"no-pixel-data", {"-e", "(7fe0,0010)"}},
      {"bits-allocated-0", {"-m", "(0028,0100)=0"}},
      {"60000x60000", {"-m", "(0028,0010)=60000", "-m", "(0028,0011)=60000"}},
      {"1000-frames", {"-i", "(0028,0008)=1000"}},
      {"one-image", {}},
  };
  int k = 0;
  for (const auto& [name, edits] : cases) {
    std::vector<std::string> all{"-gin", "-m", "(0020,000e)=1.2.826.0.1.3680043.10.543.11." + std::to_string(++k)};
    all.insert(all.end(), edits.begin(), edits.end());
    const auto file = editedCopies({good.front()}, tmp / name, all);
    INFO(name);
    CHECK(site.node.storescu({"-xe"}, file).exitCode == 0);
  }
  REQUIRE(site.node.storeAsIs(good).exitCode == 0);
  REQUIRE(waitFor([&] { return site.node.queryInt("SELECT COUNT(*) FROM series WHERE state = 'done'") == 6; }, 120));
  CHECK(site.node.echoscu().exitCode == 0);  // the daemon is up
  auto reasonOf = [&](int series) {
    auto r = site.node.queryStrings("SELECT COALESCE(j.reason, s.note, '') FROM series s LEFT JOIN jobs j ON j.series_uid = s.series_uid"
                                    " WHERE s.series_uid = '1.2.826.0.1.3680043.10.543.11." + std::to_string(series) + "'");
    return r.empty() ? std::string() : r[0];
  };
  CHECK_THAT(reasonOf(1), Catch::Contains("no Pixel Data"));
  CHECK_THAT(reasonOf(2), Catch::Contains("BitsAllocated 0"));
  CHECK_THAT(reasonOf(3), Catch::Contains("exceed processing.max_voxels"));
  CHECK_THAT(reasonOf(4), Catch::Contains("Pixel Data is shorter than the image"));
  CHECK_THAT(reasonOf(5), Catch::Contains("a single image"));
  // The good series, sent after them, is segmented.
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 1);
  site.node.stop();
}

TEST_CASE("no patient name or ID reaches the log - UIDs and AE titles only", "[pipeline][data]") {
  if (absent("siemens_xa30_prisma_epi_sag_classic")) return;
  Site site;
  site.node.start();
  TempDir tmp;
  const auto copies = editedCopies(dicomFilesIn(dicomData("siemens_xa30_prisma_epi_sag_classic") / "dicom"), tmp.path(),
                                   {"-m", "(0010,0010)=Doe^Secretname", "-m", "(0010,0020)=PID-74205-X"});
  REQUIRE(site.node.storescu({"-xe"}, copies).exitCode == 0);
  REQUIRE(waitFor([&] { return site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 1; }, 120));
  site.node.stop();
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM studies WHERE patient_name = 'Doe^Secretname'") == 1);  // it was received
  const std::string log = site.node.log();
  CHECK_THAT(log, Catch::Contains("job 1 done"));
  CHECK_THAT(log, !Catch::Contains("Secretname"));
  CHECK_THAT(log, !Catch::Contains("PID-74205"));
}

TEST_CASE("a late instance after the SEG was sent: a new SEG supersedes the old one", "[pipeline][orthanc][data]") {
  if (absent("siemens_xa30_prisma_epi_sag_classic")) return;
  Site site;
  site.pacs.start();
  site.node.start();
  auto files = dicomFilesIn(dicomData("siemens_xa30_prisma_epi_sag_classic") / "dicom");
  // Hold back the slice at one end of the stack (a missing middle slice would be a gap).
  auto image = dicom::loadSeries(files);
  std::string lastUid = image.sourceSopInstanceUids.back();
  std::vector<std::string> first, late;
  for (const auto& f : files) (sopInstanceUidOf(f) == lastUid ? late : first).push_back(f.string());
  REQUIRE(late.size() == 1);
  REQUIRE(site.node.storescu({}, first).exitCode == 0);
  REQUIRE(waitFor([&] { return site.pacs.instancesOfModality("SEG").size() == 1; }, 120));
  REQUIRE(site.node.storescu({}, late).exitCode == 0);
  REQUIRE(waitFor([&] { return site.pacs.instancesOfModality("SEG").size() == 2; }, 120));
  site.node.stop();
  CHECK(site.node.queryStrings("SELECT state FROM jobs ORDER BY id") == std::vector<std::string>{"superseded", "done"});
  auto numbers = site.node.queryStrings("SELECT seg_series_number FROM jobs ORDER BY id");
  CHECK(std::stoi(numbers[1]) == std::stoi(numbers[0]) + 1);
  auto uids = site.node.queryStrings("SELECT seg_series_uid FROM jobs ORDER BY id");
  CHECK(uids[0] != uids[1]);
  CHECK(site.node.queryInt("SELECT generation FROM series") == 2);
}

TEST_CASE("an implausible result is rejected with what was measured - no SEG, nothing sent, the admin CLI shows why",
          "[pipeline][plausibility][data]") {
  if (absent("philips_ingenia_elitionx_t1_mprage_sag")) return;
  Site site;
  declareImpossibleBrain(site.node.dir() / "models");
  site.node.start();
  REQUIRE(site.node.storeAsIs(dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag") / "dicom")).exitCode == 0);
  REQUIRE(waitFor([&] { return site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'rejected'") == 1; }, 240));
  const std::string reason = site.node.queryStrings("SELECT reason FROM jobs")[0];
  CHECK_THAT(reason, Catch::StartsWith("implausible result of e2e-brain@0.0.1: labelled volume "));
  CHECK_THAT(reason, Catch::Contains("expected 1000000-2000000 mL"));
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE confidence > 0 AND confidence <= 1") == 1);
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM outbox") == 0);
  CHECK(site.node.queryStrings("SELECT COALESCE(seg_path, '') FROM jobs")[0].empty());
  auto jobs = runCommand({fs::path(SEGNODED_PATH).parent_path() / "segnode", "jobs", "--config", site.node.configFile().string()});
  CHECK(jobs.exitCode == 0);
  CHECK_THAT(jobs.output, Catch::Contains("rejected"));
  CHECK_THAT(jobs.output, Catch::Contains("expected 1000000-2000000 mL"));
  site.node.stop();
}

TEST_CASE("on_implausible: send_flagged - the SEG goes out marked IMPLAUSIBLE where a viewer shows it, and stays valid",
          "[pipeline][plausibility][orthanc][data]") {
  if (absent("philips_ingenia_elitionx_t1_mprage_sag")) return;
  Site site;
  declareImpossibleBrain(site.node.dir() / "models");
  site.node.editConfig("destinations: [pacs]}", "destinations: [pacs], on_implausible: send_flagged}");
  site.pacs.start();
  site.node.start();
  const std::string dump = sendMprageForItsSeg(site, "SegmentDescription");
  CHECK_THAT(dump, Catch::Contains("[IMPLAUSIBLE e2e-brain 0.0.1 segmentation]"));
  CHECK_THAT(dump, Catch::Contains(" (mean probability of its voxels)]"));  // per segment, from the window's outputs
  CHECK_THAT(dump, Catch::Contains("[IMPLAUSIBLE: implausible: labelled volume "));
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'done' AND plausibility LIKE 'implausible: %'") == 1);
  site.node.stop();
}

TEST_CASE("one structure outside its own range: the SEG goes out without it, marked STRUCTURES OMITTED, and stays valid",
          "[pipeline][plausibility][orthanc][data]") {
  if (absent("philips_ingenia_elitionx_t1_mprage_sag")) return;
  Site site;
  const std::string name = declareImpossibleStructure(site.node.dir() / "models");
  site.pacs.start();
  site.node.start();
  const std::string dump = sendMprageForItsSeg(site, "SegmentLabel");
  CHECK_THAT(dump, Catch::Contains("[STRUCTURES OMITTED e2e-brain 0.0.1 segmentation]"));
  CHECK_THAT(dump, Catch::Contains("[STRUCTURES OMITTED: " + name.substr(0, 20)));
  CHECK_THAT(dump, !Catch::Contains("[" + name + "]"));  // no segment of it
  CHECK_THAT(dump, Catch::Contains("SegmentLabel"));      // the others are there
  CHECK(site.node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'done' AND plausibility LIKE 'plausible without: %'") == 1);
  CHECK_THAT(site.node.http("/metrics").output,
             Catch::Contains("segnode_structures_omitted_total{model=\"e2e-brain\",structure=\"" + name + "\"} 1\n"));
  site.node.stop();
}
