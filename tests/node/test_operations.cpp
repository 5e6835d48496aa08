// What hospital IT relies on (issue 13): the HTTP endpoints against the real daemon (promtool
// checks the metrics), SIGHUP reload (a broken file is refused and the old config kept), and
// SIGTERM (a running job past processing.stop_timeout_s goes back to the queue, nothing is lost).
#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "daemon/app/IoLoop.h"
#include "node/NodeHarness.h"

using namespace segnode::test;
namespace fs = std::filesystem;

namespace {

const std::string kPhilips = "philips_ingenia_elitionx_t1_mprage_sag";

// The value of a sample line "name{labels} value" in a Prometheus text page; -1 when absent.
double sample(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

// A route to the bundled brain student, and a destination where no one listens (deliveries wait).
std::string brainRoute(double stopTimeout) {
  return "series:\n  quiet_period_s: 1\nprocessing:\n  models_dir: " + (fs::path(SEGNODE_SOURCE_DIR) / "etc/models").string() +
         "\n  threads_per_worker: 2\n  stop_timeout_s: " + std::to_string(stopTimeout) +
         "\ndestinations:\n  - {name: pacs, ae_title: NOBODY, host: 127.0.0.1, port: " + std::to_string(freePort()) +
         "}\nretry: {base_s: 60, cap_s: 60, max_attempts: 3}\n"
         "routes:\n  - {name: brain, match: {modality: MR, min_slices: 20}, model: brain-mr-student-w4, destinations: [pacs]}\n";
}

}  // namespace

TEST_CASE("HTTP: healthz, readyz with each check, metrics valid for promtool with the counters of a series, api JSON", "[node][http]") {
  if (missing(!dicomData(kPhilips).empty(), "../shared/data/dicom/" + kPhilips)) return;
  NodeProcess node("", brainRoute(60));
  node.start();
  auto health = node.http("/healthz");
  CHECK(health.exitCode == 200);
  CHECK(health.output == "ok\n");
  REQUIRE(waitFor([&] { return node.http("/readyz").exitCode == 200; }, 10));
  auto ready = node.http("/readyz").output;
  for (const char* check : {"ok   dicom: listening on port", "ok   models: 1 of 1 route models load", "ok   workers:",
                            "ok   database: writable", "ok   disk:"})
    CHECK(ready.find(check) != std::string::npos);
  CHECK(node.http("/nothing").exitCode == 404);
  CHECK(node.http("/metrics", "POST").exitCode == 405);

  const auto files = dicomFilesIn(dicomData(kPhilips) / "dicom");
  REQUIRE(node.storeAsIs(files).exitCode == 0);
  CHECK(node.echoscu("INTRUDER").exitCode != 0);
  REQUIRE(waitFor([&] { return node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 1; }, 120));
  const std::string page = node.http("/metrics").output;
  if (!missing(runCommand({"which", "promtool"}).exitCode == 0, "promtool (Debian's prometheus package)")) {
    std::ofstream(node.dir() / "metrics.txt") << page;
    auto lint = runCommand({"sh", "-c", "promtool check metrics < " + (node.dir() / "metrics.txt").string()});
    INFO(lint.output);
    CHECK(lint.exitCode == 0);
  }
  CHECK(sample(page, "segnode_instances_received_total") == double(files.size()));
  uint64_t bytes = 0;
  for (const auto& f : fs::recursive_directory_iterator(node.spool()))
    if (f.is_regular_file() && f.path().extension() == ".dcm") bytes += f.file_size();
  CHECK(sample(page, "segnode_received_bytes_total") == double(bytes));
  CHECK(sample(page, "segnode_associations_accepted_total") >= 1);
  CHECK(sample(page, "segnode_associations_refused_total{reason=\"calling_ae\"}") == 1);
  CHECK(sample(page, "segnode_jobs_finished_total{model=\"brain-mr-student-w4\",outcome=\"done\"}") == 1);
  CHECK(sample(page, "segnode_job_duration_seconds_count{model=\"brain-mr-student-w4\"}") == 1);
  CHECK(sample(page, "segnode_jobs{state=\"done\"}") == 1);
  CHECK(sample(page, "segnode_config_loaded") == 1);
  CHECK(page.find("segnode_build_info{version=") != std::string::npos);

  auto status = nlohmann::json::parse(node.http("/api/status").output);
  CHECK(status["jobs"]["done"] == 1);
  CHECK(status["checks"].size() == 4);
  auto jobs = nlohmann::json::parse(node.http("/api/jobs?state=done&limit=5").output);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["model"] == "brain-mr-student-w4");
  CHECK(node.http("/api/jobs?state=nonsense").exitCode == 400);
  CHECK(node.stop() == 0);
}

TEST_CASE("SIGHUP: new peers apply at once - a broken file is refused, the running config kept and shown in readyz", "[node][reload]") {
  NodeProcess node;
  node.start();
  CHECK(node.echoscu("NEWPEER").exitCode != 0);

  node.appendConfig("routes: [\n");  // broken YAML
  node.signal(SIGHUP);
  REQUIRE(waitFor([&] { return node.http("/readyz").output.find("the new configuration is refused") != std::string::npos; }, 10));
  CHECK(node.http("/readyz").exitCode == 200);  // still serving with the old configuration
  CHECK(node.echoscu("STORESCU").exitCode == 0);
  CHECK(sample(node.http("/metrics").output, "segnode_config_loaded") == 0);

  node.editConfig("routes: [\n", "");
  node.editConfig("    - {ae_title: STORESCU, host: 127.0.0.1}\n",
                  "    - {ae_title: STORESCU, host: 127.0.0.1}\n    - {ae_title: NEWPEER, host: 127.0.0.1}\n");
  node.editConfig("min_free_mb: 10", "min_free_mb: 11");  // needs a restart: applied later, and said so
  node.signal(SIGHUP);
  REQUIRE(waitFor([&] { return node.echoscu("NEWPEER").exitCode == 0; }, 10));
  auto ready = node.http("/readyz").output;
  CHECK(ready.find("applied at the next restart: storage.min_free_mb") != std::string::npos);
  const std::string page = node.http("/metrics").output;
  CHECK(sample(page, "segnode_config_reloads_total{result=\"applied\"}") == 1);
  CHECK(sample(page, "segnode_config_reloads_total{result=\"rejected\"}") == 1);
  CHECK(node.stop() == 0);
}

TEST_CASE("SIGTERM: a running job past stop_timeout_s goes back to the queue with its attempt, and runs after the restart", "[node][stop]") {
  if (missing(!dicomData(kPhilips).empty(), "../shared/data/dicom/" + kPhilips)) return;
  NodeProcess node("", brainRoute(0));
  node.start();
  REQUIRE(node.storeAsIs(dicomFilesIn(dicomData(kPhilips) / "dicom")).exitCode == 0);
  REQUIRE(waitFor([&] { return node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'running'") == 1; }, 30));
  CHECK(node.stop() == 0);  // within the harness's 10 s, though the job needs longer
  CHECK(node.log().find("stopped by the shutdown") != std::string::npos);
  // logfmt, and every line of the job names it and its series
  CHECK(std::regex_search(node.log(), std::regex("ts=\\S+Z level=info part=infer job=1 series=[0-9.]+ model=brain-mr-student-w4 msg=\"")));
  CHECK(node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND attempts = 0") == 1);

  node.start();
  REQUIRE(waitFor([&] { return node.queryInt("SELECT COUNT(*) FROM jobs WHERE state = 'done'") == 1; }, 120));
  CHECK(node.queryInt("SELECT attempts FROM jobs") == 1);
  CHECK(node.stop() == 0);
}

TEST_CASE("a handler of the io thread that throws ends neither the thread nor the handlers queued after it", "[node][operations]") {
  boost::asio::io_context io;
  std::vector<std::string> failures;
  int ran = 0;
  boost::asio::post(io, [] { throw std::runtime_error("database disk image is malformed"); });
  boost::asio::post(io, [&] { ++ran; });
  boost::asio::steady_timer timer(io, std::chrono::milliseconds(20));
  timer.async_wait([&](const boost::system::error_code&) {
    ++ran;
    throw 42;  // not a std::exception
  });
  boost::asio::post(io, [&] { ++ran; });
  segnode::app::runIoLoop(io, [&](const char* what) { failures.push_back(what); });  // returns: no work left
  CHECK(ran == 3);
  REQUIRE(failures.size() == 2);
  CHECK(failures[0] == "database disk image is malformed");
  CHECK(failures[1] == "an exception of unknown type");
}
