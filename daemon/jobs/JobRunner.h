#pragma once
// The worker pool: N workers x T intra-op threads (config::workerCount / threadsPerWorker), each
// taking queued jobs: series -> volume -> model -> labels -> DICOM-SEG -> outbox. Models are
// loaded once and cached. A job that throws or runs out of memory is failed with its reason and
// the worker carries on; a series that cannot be converted is rejected with the reason.
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <thread>
#include <vector>

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
};

class JobRunner {
 public:
  JobRunner(WorkerOptions options, storage::Index& index, storage::Jobs& jobs, std::function<void()> outboxChanged);
  ~JobRunner();
  void start();
  void wake();  // a job was queued
  void stop();  // finishes running jobs first

 private:
  void loop(int worker);
  struct Outcome {
    storage::JobState state;
    std::string reason, segPath;
  };
  void run(const storage::Job& job);  // process, then record the outcome (storage::recordWithRetry)
  Outcome process(const storage::Job& job, nlohmann::json& timings);
  std::shared_ptr<engine::SegmentationModel> model(const std::string& reference);

  const WorkerOptions options_;
  storage::Index& index_;
  storage::Jobs& jobs_;
  std::function<void()> outboxChanged_;
  std::vector<std::thread> threads_;
  WakeSignal wake_;
  std::atomic<bool> running_{false};
  std::mutex modelsMutex_;
  std::map<std::string, std::shared_ptr<engine::SegmentationModel>> models_;
};

}  // namespace segnode::jobs
