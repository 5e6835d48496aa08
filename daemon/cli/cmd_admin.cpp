// segnode status | jobs | retry | backup | audit: what the node is doing, from its database (read by a
// separate connection; the daemon need not be running). status, jobs and backup open it
// read-only; retry writes rows but never migrates. --json prints one JSON object per line.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "daemon/cli/Commands.h"
#include "daemon/config/Config.h"
#include "storage/Db.h"
#include "storage/Jobs.h"
#include "storage/Status.h"

namespace segnode::cli {
namespace {

struct AdminArgs {
  std::string config = defaultConfigFile();
  std::string state;
  int limit = 50, auditLimit = 100000;
  std::optional<long long> job;
  std::string backupFile, since;
  bool json = false, dead = false;
};


void printStatus(const AdminArgs& a) {
  auto cfg = config::loadConfig(a.config);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadOnly);
  auto st = storage::readStatus(*db);
  nlohmann::json status = storage::toJson(st);
  status["workers"] = config::workerCount(cfg);
  status["threads_per_worker"] = config::threadsPerWorker(cfg);
  if (a.json) {
    std::printf("%s\n", status.dump().c_str());
    return;
  }
  std::printf("database %s; %d worker(s) x %d threads\n", cfg.database.c_str(), config::workerCount(cfg),
              config::threadsPerWorker(cfg));
  for (const auto& [table, counts] : {std::pair{"series", &st.series}, {"jobs", &st.jobs}, {"outbox", &st.outbox}}) {
    std::printf("%-7s", table);
    for (const auto& [state, n] : *counts) std::printf("  %s=%lld", state.c_str(), (long long)n);
    std::printf("\n");
  }
  for (const auto& e : st.lastErrors) std::printf("  %s\n", e.c_str());
}

void printJobs(const AdminArgs& a) {
  auto cfg = config::loadConfig(a.config);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadOnly);
  storage::Jobs jobs(*db);
  std::optional<storage::JobState> state;
  if (!a.state.empty()) state = storage::stateFromSql<storage::JobState>(a.state);
  auto list = jobs.list(state, a.limit);
  if (!a.json) std::printf("%6s %-10s %-14s %-28s %4s  %s\n", "JOB", "STATE", "ROUTE", "MODEL", "GEN", "SERIES / REASON");
  for (const auto& j : list) {
    if (a.json) std::printf("%s\n", storage::toJson(j).dump().c_str());
    else
      std::printf("%6lld %-10s %-14s %-28s %4lld  %s%s%s\n", (long long)j.id, storage::sqlName(j.state), j.route.c_str(),
                  j.model.c_str(), (long long)j.generation, j.seriesUid.c_str(),
                  j.reason.empty() ? "" : ("\n         " + j.reason).c_str(),
                  j.plausibility.empty() || !j.reason.empty() ? "" : ("\n         " + j.plausibility).c_str());
  }
}

void retryDeliveries(const AdminArgs& a) {
  if (!a.job && !a.dead) throw Error(ErrorCode::InvalidArgument, "retry needs a JOB id or --dead");
  auto cfg = config::loadConfig(a.config);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadWrite);
  storage::Jobs jobs(*db);
  int n = 0;
  if (a.dead) {
    n = jobs.retryDead();
  } else {
    n = jobs.retryJob(*a.job);
    if (n == 0) throw Error(ErrorCode::NotFound, "job " + std::to_string(*a.job) + " has no pending or dead deliveries");
  }
  std::printf("%d deliveries re-queued; segnoded sends them within seconds\n", n);
}

// --since: an ISO date or UTC time (2026-12-01, 2026-12-01T08:30) or a span back from now (12h, 7d).
int64_t sinceMs(const std::string& since) {
  if (since.empty()) return 0;
  const int64_t now = storage::nowMs();
  char unit = since.back();
  if ((unit == 'h' || unit == 'd') && since.size() > 1 && since.find_first_not_of("0123456789") == since.size() - 1)
    return now - std::stoll(since.substr(0, since.size() - 1)) * (unit == 'h' ? 3600000LL : 86400000LL);
  std::tm t{};
  std::istringstream in(since);
  in >> std::get_time(&t, since.size() > 10 ? "%Y-%m-%dT%H:%M" : "%Y-%m-%d");
  if (in.fail()) throw Error(ErrorCode::InvalidArgument, "--since '" + since + "': use 2026-12-01, 2026-12-01T08:30, 12h or 7d");
  return int64_t(timegm(&t)) * 1000;
}

void printAudit(const AdminArgs& a) {
  auto cfg = config::loadConfig(a.config);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadOnly);
  for (const auto& e : storage::readAudit(*db, sinceMs(a.since), a.auditLimit)) {
    if (a.json)
      std::printf("%s\n", nlohmann::json{{"at", isoUtc(std::time_t(e.atMs / 1000))}, {"event", e.event}, {"peer", e.peer}, {"subject", e.subject},
                                          {"outcome", e.outcome}, {"detail", e.detail}}.dump().c_str());
    else
      std::printf("%s %-11s %-8s %s%s%s\n", isoUtc(std::time_t(e.atMs / 1000)).c_str(), e.event.c_str(), e.outcome.c_str(), e.peer.c_str(),
                  e.subject.empty() ? "" : (" " + e.subject).c_str(), e.detail.empty() ? "" : (": " + e.detail).c_str());
  }
}

void backup(const AdminArgs& a) {
  auto cfg = config::loadConfig(a.config);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadOnly);
  storage::backupDatabase(*db, a.backupFile);
  std::printf("%s: a consistent copy of %s (schema version %d, %lld bytes)\n", a.backupFile.c_str(), cfg.database.c_str(),
              storage::schemaVersion(*db), (long long)std::filesystem::file_size(a.backupFile));
}

}  // namespace

std::string defaultConfigFile() {
  return std::filesystem::exists("etc/segnode.yaml") ? "etc/segnode.yaml" : "/etc/segnode/segnode.yaml";
}

std::string isoUtc(std::time_t epochSeconds) {
  std::tm t{};
  gmtime_r(&epochSeconds, &t);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &t);
  return b;
}

// status, jobs, retry and backup read the database of the node that --config describes.
void addAdmin(CLI::App& app) {
  auto a = std::make_shared<AdminArgs>();
  auto* status = app.add_subcommand("status", "queue depths by state, workers, last errors");
  auto* jobs = app.add_subcommand("jobs", "recent jobs");
  auto* retry = app.add_subcommand("retry", "re-queue a job's failed deliveries (a JOB, or every dead one)");
  auto* save = app.add_subcommand("backup", "copy the database while the node runs (SQLite online backup)");
  auto* audit = app.add_subcommand("audit", "the audit trail: associations (accepted or why not) and deliveries (to whom, result)");
  for (auto* sub : {status, jobs, retry, save, audit}) sub->add_option("--config", a->config, "the node's configuration");
  audit->add_flag("--json", a->json, "one JSON object per line");
  audit->add_option("--since", a->since, "from this UTC date or time (2026-12-01, 2026-12-01T08:30) or span back (12h, 7d)");
  audit->add_option("--limit", a->auditLimit, "at most this many, oldest first")->check(CLI::Range(1, 10000000));
  save->add_option("FILE", a->backupFile, "the copy to write (must not exist)")->required();
  for (auto* sub : {status, jobs}) sub->add_flag("--json", a->json, "one JSON object per line");
  std::vector<std::string> states;
  for (auto s : storage::allStates<storage::JobState>()) states.push_back(storage::sqlName(s));
  jobs->add_option("--state", a->state, "only jobs in this state")->check(CLI::IsMember(states));
  jobs->add_option("--limit", a->limit, "at most this many, newest first")->check(CLI::Range(1, 100000));
  retry->add_option("JOB", a->job, "the job id")->excludes(retry->add_flag("--dead", a->dead, "every dead delivery"));
  status->callback([a] { printStatus(*a); });
  jobs->callback([a] { printJobs(*a); });
  retry->callback([a] { retryDeliveries(*a); });
  save->callback([a] { backup(*a); });
  audit->callback([a] { printAudit(*a); });
}

}  // namespace segnode::cli
