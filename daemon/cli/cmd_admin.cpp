// segnode status | jobs | retry: what the node is doing, from its database (read by a separate
// connection; the daemon need not be running). status and jobs open it read-only; retry writes
// rows but never migrates. --json prints one JSON object per line.
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "common/Args.h"
#include "daemon/cli/Commands.h"
#include "daemon/config/Config.h"
#include "storage/Db.h"
#include "storage/Jobs.h"
#include "storage/Status.h"

namespace segnode::cli {
namespace {

config::NodeConfig nodeConfig(const Args& args) {
  std::string file = args.value("--config").value_or(
      std::filesystem::exists("etc/segnode.yaml") ? "etc/segnode.yaml" : "/etc/segnode/segnode.yaml");
  return config::loadConfig(file);
}


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

}  // namespace

int runStatus(const ArgList& argList, const char*) {
  Args args(argList, {"--json"}, {"--config"});
  auto cfg = nodeConfig(args);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadOnly);
  auto st = storage::readStatus(*db);
  const nlohmann::json status{{"series", st.series},
                              {"jobs", st.jobs},
                              {"outbox", st.outbox},
                              {"workers", config::workerCount(cfg)},
                              {"threads_per_worker", config::threadsPerWorker(cfg)},
                              {"last_errors", st.lastErrors}};
  if (args.flag("--json")) {
    std::printf("%s\n", status.dump().c_str());
    return 0;
  }
  std::printf("database %s; %d worker(s) x %d threads\n", cfg.database.c_str(), config::workerCount(cfg),
              config::threadsPerWorker(cfg));
  for (const auto& [table, counts] : {std::pair{"series", &st.series}, {"jobs", &st.jobs}, {"outbox", &st.outbox}}) {
    std::printf("%-7s", table);
    for (const auto& [state, n] : *counts) std::printf("  %s=%lld", state.c_str(), (long long)n);
    std::printf("\n");
  }
  for (const auto& e : st.lastErrors) std::printf("  %s\n", e.c_str());
  return 0;
}

int runJobs(const ArgList& argList, const char*) {
  Args args(argList, {"--json"}, {"--config", "--state", "--limit"});
  auto cfg = nodeConfig(args);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadOnly);
  storage::Jobs jobs(*db);
  std::optional<storage::JobState> state;
  if (auto s = args.value("--state")) state = storage::stateFromSql<storage::JobState>(*s);
  auto list = jobs.list(state, args.intValue("--limit", 50, 1, 100000));
  if (!args.flag("--json")) std::printf("%6s %-10s %-14s %-28s %4s  %s\n", "JOB", "STATE", "ROUTE", "MODEL", "GEN", "SERIES / REASON");
  for (const auto& j : list) {
    if (args.flag("--json")) std::printf("%s\n", jobJson(j).dump().c_str());
    else
      std::printf("%6lld %-10s %-14s %-28s %4lld  %s%s\n", (long long)j.id, storage::sqlName(j.state), j.route.c_str(), j.model.c_str(),
                  (long long)j.generation, j.seriesUid.c_str(), j.reason.empty() ? "" : ("\n         " + j.reason).c_str());
  }
  return 0;
}

int runRetry(const ArgList& argList, const char*) {
  if (argList.empty()) throw Error(ErrorCode::InvalidArgument, "retry needs a JOB id or --dead");
  bool dead = argList[0] == "--dead";
  ArgList rest(argList.begin() + 1, argList.end());
  Args args(rest, {}, {"--config"});
  auto cfg = nodeConfig(args);
  auto db = storage::openDatabase(cfg.database, storage::Access::ReadWrite);
  storage::Jobs jobs(*db);
  int n = 0;
  if (dead) {
    n = jobs.retryDead();
  } else {
    char* end = nullptr;
    long long id = std::strtoll(argList[0].c_str(), &end, 10);
    if (!end || *end) throw Error(ErrorCode::InvalidArgument, "retry: '" + argList[0] + "' is not a job id");
    n = jobs.retryJob(id);
    if (n == 0) throw Error(ErrorCode::NotFound, "job " + argList[0] + " has no pending or dead deliveries");
  }
  std::printf("%d deliveries re-queued; segnoded sends them within seconds\n", n);
  return 0;
}

}  // namespace segnode::cli
