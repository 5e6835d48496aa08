#pragma once
// Routing (DESIGN §3, mercure's per-series rules): a ready series is matched against the rules in
// order; the first match becomes a job for its model and destinations. No match, or a series
// larger than processing.max_voxels, is recorded on the series with the reason, and no job is made.
#include <functional>
#include <string>
#include <vector>

#include "daemon/config/Config.h"
#include "storage/Index.h"
#include "storage/Jobs.h"

namespace segnode::routing {

// Why `match` does not hold for `series` ("" when it does).
std::string mismatch(const config::RouteMatch& match, const storage::SeriesAttributes& series);

class Router {
 public:
  // What routing needs of the configuration: the routes (copied: a job is made with what its
  // route says at that moment), the size bound, the root of the SEG UIDs a job fixes.
  struct Options {
    std::vector<config::Route> routes;
    int64_t maxVoxels = 0;  // a larger series is refused before anything is loaded
    std::string uidRoot;    // "" = 2.25 UUID-based UIDs
  };
  Router(Options options, storage::Index& index, storage::Jobs& jobs, std::function<void()> jobCreated);
  // Makes the job of the first matching route, or records "no route". Never throws: a database
  // error is retried (storage::recordWithRetry), then logged; the series stays ready.
  void onSeriesReady(const std::string& seriesUid, int64_t generation);
  // SIGHUP: the routes for series that become ready from now on. Same thread as onSeriesReady
  // (the io thread): no lock.
  void setRoutes(std::vector<config::Route> routes) { options_.routes = std::move(routes); }

 private:
  void route(const std::string& seriesUid, int64_t generation);  // may throw (database)
  Options options_;
  storage::Index& index_;
  storage::Jobs& jobs_;
  std::function<void()> jobCreated_;
};

}  // namespace segnode::routing
