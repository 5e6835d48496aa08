// segnode status | jobs | retry | backup: what the node is doing, from its database (read by a
// separate connection; the daemon need not be running). status, jobs and backup open it
// read-only; retry writes rows but never migrates. --json prints one JSON object per line.
#include <cstdio>
#include <filesystem>

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
  std::string config = std::filesystem::exists("etc/segnode.yaml") ? "etc/segnode.yaml" : "/etc/segnode/segnode.yaml";
  std::string state;
  int limit = 50;
  std::optional<long long> job;
  std::string backupFile;
  bool json = false, dead = false;
};


nlohmann::json jobJson(const storage::Job& j) {
  return {{"id", j.id},
          {"series_uid", j.seriesUid},
          {"generation", j.generation},
          {"route", j.route},
          {"model", j.model},
          {"state", storage::sqlName(j.state)},
          {"reason", j.reason},
          {"seg_series_uid", j.segSeriesUid},
          {"seg_series_number", j.segSeriesNumber},
          {"destinations", j.destinations}};
}

void printStatus(const AdminArgs& a) {
  auto cfg = config::loadConfig(a.config);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadOnly);
  auto st = storage::readStatus(*db);
  const nlohmann::json status{{"series", st.series},
                              {"jobs", st.jobs},
                              {"outbox", st.outbox},
                              {"workers", config::workerCount(cfg)},
                              {"threads_per_worker", config::threadsPerWorker(cfg)},
                              {"last_errors", st.lastErrors}};
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
    if (a.json) std::printf("%s\n", jobJson(j).dump().c_str());
    else
      std::printf("%6lld %-10s %-14s %-28s %4lld  %s%s\n", (long long)j.id, storage::sqlName(j.state), j.route.c_str(), j.model.c_str(),
                  (long long)j.generation, j.seriesUid.c_str(), j.reason.empty() ? "" : ("\n         " + j.reason).c_str());
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

void backup(const AdminArgs& a) {
  auto cfg = config::loadConfig(a.config);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadOnly);
  storage::backupDatabase(*db, a.backupFile);
  std::printf("%s: a consistent copy of %s (schema version %d, %lld bytes)\n", a.backupFile.c_str(), cfg.database.c_str(),
              storage::schemaVersion(*db), (long long)std::filesystem::file_size(a.backupFile));
}

}  // namespace

// status, jobs, retry and backup read the database of the node that --config describes.
void addAdmin(CLI::App& app) {
  auto a = std::make_shared<AdminArgs>();
  auto* status = app.add_subcommand("status", "queue depths by state, workers, last errors");
  auto* jobs = app.add_subcommand("jobs", "recent jobs");
  auto* retry = app.add_subcommand("retry", "re-queue a job's failed deliveries (a JOB, or every dead one)");
  auto* save = app.add_subcommand("backup", "copy the database while the node runs (SQLite online backup)");
  for (auto* sub : {status, jobs, retry, save}) sub->add_option("--config", a->config, "the node's configuration");
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
}

}  // namespace segnode::cli
