#pragma once
// The node's HTTP endpoints: /healthz (the process answers), /readyz (it can take and process
// images: every check below passes), /metrics (Prometheus text), /api/status and /api/jobs (the
// JSON of `segnode status --json` and `segnode jobs --json`). What only the running daemon knows
// (listening, models loaded, workers alive, the config reload) comes in as checks from app.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "daemon/http/HttpServer.h"

namespace segnode::http {

struct Check {
  std::string name;
  bool ok = true;
  std::string detail;
  bool required = true;  // false: shown in /readyz, but the node is ready without it
};

struct NodeView {
  std::filesystem::path database, spoolDir;
  uint64_t minFreeBytes = 0;
  int workers = 1, threadsPerWorker = 1;
  std::function<std::vector<Check>()> daemonChecks;
};

std::map<std::string, Handler> nodeEndpoints(NodeView view);

}  // namespace segnode::http
