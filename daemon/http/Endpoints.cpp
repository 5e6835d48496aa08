#include "daemon/http/Endpoints.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/Metrics.h"
#include "common/Version.h"
#include "storage/Db.h"
#include "storage/Jobs.h"
#include "storage/Status.h"

namespace segnode::http {
namespace {

int64_t nowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Handlers run on the io thread only, so one connection, opened at the first request, serves them.
class Endpoints {
 public:
  explicit Endpoints(NodeView v) : view_(std::move(v)) {}

  // Defined first: the handlers below deduce its type. Storage's connection type is never named
  // here (SQL stays in storage).
  auto& connection() {  // storage's type, never named here: SQL stays in storage
    if (!db_) db_ = storage::openDatabase(view_.database, storage::Access::ReadWrite);
    return *db_;
  }

  Response readyz() {
    std::vector<Check> checks = view_.daemonChecks ? view_.daemonChecks() : std::vector<Check>{};
    Check db{"database", true, "writable"};
    try {
      db.ok = storage::probeWritable(connection(), db.detail);
    } catch (const std::exception& e) {
      db = {"database", false, e.what()};
    }
    checks.push_back(db);
    std::error_code ec;
    auto space = std::filesystem::space(view_.spoolDir, ec);
    Check disk{"disk", !ec && space.available >= view_.minFreeBytes, ""};
    disk.detail = ec ? ec.message()
                     : std::to_string(space.available >> 20) + " MiB free in " + view_.spoolDir.string() + ", watermark " +
                           std::to_string(view_.minFreeBytes >> 20) + " MiB";
    checks.push_back(disk);
    bool ready = true;
    std::string body;
    for (const auto& c : checks) {
      if (c.required && !c.ok) ready = false;
      body += std::string(c.ok ? "ok   " : c.required ? "FAIL " : "warn ") + c.name + ": " + c.detail + "\n";
    }
    return {ready ? 200 : 503, "text/plain; charset=utf-8", (ready ? "ready\n" : "not ready\n") + body};
  }

  Response metricsText() {
    auto st = storage::readStatus(connection());
    using metrics::Family;
    for (auto [family, counts] : {std::pair{Family::Series, &st.series}, {Family::Jobs, &st.jobs}, {Family::Deliveries, &st.outbox}}) {
      metrics::clear(family);
      for (const auto& [state, n] : *counts) metrics::set(family, {state}, double(n));
    }
    metrics::set(Family::OldestQueuedJobAge, {}, st.oldestQueuedMs ? double(nowMs() - st.oldestQueuedMs) / 1000 : 0.0);
    std::error_code ec;
    auto space = std::filesystem::space(view_.spoolDir, ec);
    if (!ec) metrics::set(Family::DiskFreeBytes, {view_.spoolDir.string()}, double(space.available));
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics::render()};
  }

  Response status() {
    nlohmann::json j = storage::toJson(storage::readStatus(connection()));
    j["version"] = version();
    j["workers"] = view_.workers;
    j["threads_per_worker"] = view_.threadsPerWorker;
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : view_.daemonChecks ? view_.daemonChecks() : std::vector<Check>{})
      checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
    j["checks"] = checks;
    return {200, "application/json", j.dump() + "\n"};
  }

  Response jobs(const std::string& query) {
    std::optional<storage::JobState> state;
    std::string s = queryValue(query, "state");
    if (!s.empty()) {
      try {
        state = storage::stateFromSql<storage::JobState>(s);
      } catch (const std::exception& e) {
        return {400, "text/plain", std::string(e.what()) + "\n"};
      }
    }
    int limit = 0;
    try {
      limit = std::stoi(queryValue(query, "limit", "50"));
    } catch (const std::exception&) {
    }
    if (limit < 1 || limit > 10000) return {400, "text/plain", "limit: a number from 1 to 10000\n"};
    storage::Jobs jobs(connection());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& job : jobs.list(state, limit)) list.push_back(storage::toJson(job));
    return {200, "application/json", list.dump() + "\n"};
  }

 private:
  NodeView view_;
  storage::Connection db_;
};

}  // namespace

std::map<std::string, Handler> nodeEndpoints(NodeView view) {
  auto e = std::make_shared<Endpoints>(std::move(view));
  return {
      {"/healthz", [](const std::string&) { return Response{200, "text/plain", "ok\n"}; }},
      {"/readyz", [e](const std::string&) { return e->readyz(); }},
      {"/metrics", [e](const std::string&) { return e->metricsText(); }},
      {"/api/status", [e](const std::string&) { return e->status(); }},
      {"/api/jobs", [e](const std::string& q) { return e->jobs(q); }},
  };
}

}  // namespace segnode::http
