#pragma once
// The worker pool: N workers x T intra-op threads (config::workerCount / threadsPerWorker), each
// taking queued jobs: series -> volume -> model -> labels -> DICOM-SEG -> outbox. Models are
// loaded once and cached. A job that throws or runs out of memory is failed with its reason and
// the worker carries on; a series that cannot be converted is rejected with the reason. Each worker
// beats on Heartbeats on every loop turn and inference tile, and is idle while it waits for work
// (systemd's watchdog, /readyz). At stop,
// a running job finishes unless it passes its deadline; then it is stopped between two tiles and
// put back in the queue for the next start.
#include <atomic>
#include <chrono>
#include <climits>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/Liveness.h"
#include "common/WakeSignal.h"
#include "storage/Index.h"
#include "storage/Jobs.h"

namespace segnode::engine {
class SegmentationModel;
}

namespace segnode::jobs {

// What the workers need of the node's configuration.
struct WorkerOptions {
  std::filesystem::path modelsDir, outputDir;  // bundles; DICOM-SEG files waiting to be sent
  int workers = 1, threadsPerWorker = 1;
  std::string uidRoot;  // dicom.uid_root, for the UIDs the SEG writer makes
  Heartbeats* heartbeats = nullptr;  // one beat per worker, named "worker N"
  std::filesystem::path precisionCache;  // engine::choosePrecision's cache ("" = measure every load)
  std::string precision = "auto";        // processing.precision: auto, fp32 or bf16
  double tileStep = 0;                   // processing.tile_step; 0: each bundle's
  std::filesystem::path siteModelsDir;   // processing.site_models_dir: searched after modelsDir
};

class JobRunner {
 public:
  JobRunner(WorkerOptions options, storage::Index& index, storage::Jobs& jobs, std::function<void()> outboxChanged);
  ~JobRunner();
  void start();
  void wake();  // a job was queued
  // Takes no new job; a running one finishes, or past `deadline` is stopped and re-queued.
  void stop(std::chrono::steady_clock::duration deadline = std::chrono::hours(24 * 365));
  // Loads the bundles these references resolve to now; returns "reference: why" for each that fails.
  std::vector<std::string> preload(const std::vector<std::string>& references);
  // Drops the loaded bundles (after a reload): references resolve again, so a newly installed
  // version is taken by a route that names its model without a version.
  void forgetModels();

 private:
  void loop(int worker);
  void beat(int worker);
  void idle(int worker, bool waiting);
  struct Outcome {
    storage::JobState state;
    std::string reason, segPath;
    bool stopped = false;  // by stop()'s deadline: the job goes back to the queue
    std::optional<double> confidence;  // what the plausibility check measured, once it ran
    std::string plausibility;
  };
  struct Stopped {};  // thrown between tiles past the deadline
  void run(const storage::Job& job, int worker);  // process, then record the outcome (storage::recordWithRetry)
  Outcome process(const storage::Job& job, int worker, nlohmann::json& timings);
  std::shared_ptr<engine::SegmentationModel> model(const std::string& reference);

  const WorkerOptions options_;
  storage::Index& index_;
  storage::Jobs& jobs_;
  std::function<void()> outboxChanged_;
  std::vector<std::thread> threads_;
  WakeSignal wake_;
  std::atomic<bool> running_{false};
  std::atomic<int64_t> cancelAtNs_{INT64_MAX};  // steady clock; a running job past it is stopped
  std::vector<int> beats_;                      // heartbeat id per worker
  std::mutex modelsMutex_;
  std::map<std::string, std::shared_ptr<engine::SegmentationModel>> models_;
};

}  // namespace segnode::jobs
