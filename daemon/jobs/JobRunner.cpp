#include "daemon/jobs/JobRunner.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "common/Log.h"
#include "common/Metrics.h"
#include "common/Version.h"
#include "daemon/dicom/SegWriter.h"
#include "daemon/dicom/SeriesLoader.h"
#include "engine/Model.h"
#include "storage/Spool.h"
#include "engine/ModelStore.h"
#include "engine/PrecisionChoice.h"
#include "engine/Plausibility.h"
#include "engine/Segmenter.h"
#include "engine/TensorCache.h"

namespace segnode::jobs {
namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

JobRunner::JobRunner(WorkerOptions options, storage::Index& index, storage::Jobs& jobs,
                     std::function<void()> outboxChanged)
    : options_(std::move(options)), index_(index), jobs_(jobs), outboxChanged_(std::move(outboxChanged)) {}

JobRunner::~JobRunner() { stop(); }

void JobRunner::start() {
  // Tiles allocate and free the same 30-300 MB activations over and over; without the cache each
  // one is a fresh mmap whose pages the kernel zeroes again (docs/benchmarks.md).
  engine::installTensorCache();
  running_ = true;
  if (options_.heartbeats)
    for (int w = 0; w < options_.workers; ++w) beats_.push_back(options_.heartbeats->add("worker " + std::to_string(w)));
  for (int w = 0; w < options_.workers; ++w) threads_.emplace_back([this, w] { loop(w); });
  SEGNODE_LOG(Info, Infer, options_.workers << " worker(s) x " << options_.threadsPerWorker << " threads");
}

void JobRunner::wake() { wake_.notify(); }

void JobRunner::stop(std::chrono::steady_clock::duration deadline) {
  if (!running_.exchange(false)) return;
  cancelAtNs_ = (std::chrono::steady_clock::now() + deadline).time_since_epoch() / std::chrono::nanoseconds(1);
  wake();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

std::vector<std::string> JobRunner::preload(const std::vector<std::string>& references) {
  std::vector<std::string> problems;
  for (const auto& r : references) try {
      auto m = model(r);
      metrics::set(metrics::Family::BuildInfo, {version(), engine::toString(m->backend())}, 1);
    } catch (const std::exception& e) {
      problems.push_back(r + ": " + e.what());
    }
  return problems;
}

void JobRunner::forgetModels() {
  std::lock_guard<std::mutex> lock(modelsMutex_);
  models_.clear();
}

std::shared_ptr<engine::SegmentationModel> JobRunner::model(const std::string& reference) {
  std::lock_guard<std::mutex> lock(modelsMutex_);
  auto& slot = models_[reference];
  if (!slot) {
    engine::BundleSpec spec = engine::ModelStore({options_.modelsDir, options_.siteModelsDir}).resolve(reference);
    std::optional<engine::Precision> pinned;
    if (engine::Precision p; engine::parsePrecision(options_.precision, p)) pinned = p;
    at::set_num_threads(options_.threadsPerWorker);  // timed as the workers will run it
    const engine::PrecisionChoice choice = engine::choosePrecision(spec, options_.precisionCache, pinned);
    slot = engine::SegmentationModel::load(spec, engine::defaultBackend(), choice.chosen);
    SEGNODE_LOG(Info, Infer, "loaded " << spec.reference() << " (" << slot->parameterCount() << " parameters, "
                                       << engine::toString(slot->backend()) << " " << engine::toString(slot->precision())
                                       << "; precision " << choice.summary() << ")"
                                       << (spec.untrained() ? " - UNTRAINED random weights" : ""));
  }
  return slot;
}

void JobRunner::loop(int worker) {
  at::set_num_threads(options_.threadsPerWorker);  // per worker thread
  while (running_) {
    beat(worker);
    uint64_t ticket = wake_.ticket();
    std::optional<storage::Job> job;
    try {
      job = jobs_.claimNext();
    } catch (const std::exception& e) {
      SEGNODE_LOG(Error, Infer, "claiming a job: " << e.what());
    }
    if (job) {
      run(*job, worker);
      continue;
    }
    idle(worker, true);
    wake_.wait(ticket, std::chrono::seconds(5), [&] { return !running_; });
    idle(worker, false);
  }
}

void JobRunner::beat(int worker) {
  if (options_.heartbeats && size_t(worker) < beats_.size()) options_.heartbeats->beat(beats_[size_t(worker)]);
}

void JobRunner::idle(int worker, bool waiting) {
  if (options_.heartbeats && size_t(worker) < beats_.size()) options_.heartbeats->idle(beats_[size_t(worker)], waiting);
}

void JobRunner::run(const storage::Job& job, int worker) {
  log::Scope scope{{"job", std::to_string(job.id)}, {"series", job.seriesUid}, {"model", job.model}};
  nlohmann::json timings = nlohmann::json::object();
  const auto t0 = std::chrono::steady_clock::now();
  const Outcome o = process(job, worker, timings);
  const double seconds = since(t0);
  if (o.stopped) {
    std::string error;
    if (storage::recordWithRetry([&] { jobs_.release(job.id); }, error))
      SEGNODE_LOG(Info, Infer, "job " << job.id << " stopped by the shutdown after " << seconds << " s: back in the queue");
    else
      SEGNODE_LOG(Error, Infer, "job " << job.id << " stopped by the shutdown: " << error << "; the next start re-queues it");
    return;
  }
  storage::JobState written{};
  std::string error;
  if (!storage::recordWithRetry([&] { written = jobs_.finish(job.id, o.state, o.reason, o.segPath, timings.dump(), o.confidence, o.plausibility); }, error)) {
    SEGNODE_LOG(Error, Infer, "job " << job.id << ": its outcome (" << storage::sqlName(o.state) << ") could not be recorded: "
                                     << error << "; it stays running and is taken up again at the next start");
    return;
  }
  SEGNODE_LOG(Info, Infer, "job " << job.id << " " << storage::sqlName(written) << (o.reason.empty() ? "" : ": " + o.reason));
  metrics::add(metrics::Family::JobsFinished, {job.model, storage::sqlName(written)});
  if (written == storage::JobState::Done) {
    metrics::observe(metrics::Family::JobSeconds, {job.model}, seconds);
    metrics::observe(metrics::Family::InferenceSeconds, {job.model}, timings.value("inference_s", 0.0));
  }
  if (written == storage::JobState::Done && outboxChanged_) outboxChanged_();
}

// The work of one job; every error becomes its outcome (nothing escapes a worker thread).
JobRunner::Outcome JobRunner::process(const storage::Job& job, int worker, nlohmann::json& timings) {
  using storage::JobState;
  try {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::filesystem::path> files;
    for (const auto& f : index_.instanceFilesOfSeries(job.seriesUid)) files.emplace_back(f);
    auto net = model(job.model);
    timings["load_s"] = since(t0);
    t0 = std::chrono::steady_clock::now();
    dicom::SeriesImage image = dicom::loadSeries(files);
    engine::Volume volume;
    volume.geometry = image.geometry;
    volume.data = torch::from_blob(image.voxels.data(), {image.geometry.size[2], image.geometry.size[1], image.geometry.size[0]},
                                   torch::kFloat);
    timings["convert_s"] = since(t0);
    engine::SegmentStats stats;
    engine::SegmentOptions options;
    if (options_.tileStep > 0) options.tileStep = options_.tileStep;
    options.progress = [&](int64_t, int64_t) {  // between tiles: alive, and not past the shutdown's deadline
      beat(worker);
      if (std::chrono::steady_clock::now().time_since_epoch() / std::chrono::nanoseconds(1) > cancelAtNs_) throw Stopped();
    };
    engine::Volume labels = engine::segment(*net, volume, options, &stats);
    timings["preprocess_s"] = stats.preprocessSeconds;
    timings["inference_s"] = stats.inferenceSeconds;
    timings["postprocess_s"] = stats.postprocessSeconds;
    const auto& spec = net->spec();
    // Is this what the model's anatomy looks like? A phantom or another body part is rejected
    // with what was measured, or sent flagged where the route says so (issue 16). A route that
    // rejects keeps the rest of a result where only a few organs fall outside their own ranges.
    auto check = engine::checkPlausibility(spec, labels, stats);
    const std::optional<double> confidence = stats.confidence.meanMaxProbability;
    if (!check.plausible && !job.sendImplausible) {
      check = engine::omitStructures(spec, labels, stats, check);
      if (!check.plausible)
        return {JobState::Rejected, "implausible result of " + spec.reference() + ": " + check.reasonText(), "", false,
                confidence, check.summary()};
    }
    t0 = std::chrono::steady_clock::now();
    // Straight into the SEG writer's buffer (label values are < 32768): no int32 copy of the
    // volume on the way (600 MB for a 512 x 512 x 600 CT).
    std::vector<uint16_t> values(size_t(labels.data.numel()));
    torch::from_blob(values.data(), labels.data.sizes(), torch::kShort).copy_(labels.data);
    std::filesystem::create_directories(options_.outputDir);
    auto path = options_.outputDir / ("job-" + std::to_string(job.id) + ".dcm");
    dicom::SegOutput out{job.segSeriesUid, job.segSopUid, int(job.segSeriesNumber), "", spec.name, spec.version.toString(),
                         options_.uidRoot, "", "", stats.confidence.classMeanMaxProbability};
    if (!check.plausible || check.lowConfidence)
      out.flag = !check.plausible ? "IMPLAUSIBLE" : "LOW CONFIDENCE", out.note = check.summary();
    else if (!check.omitted.empty())  // the structures left out, where a viewer shows it
      out.flag = "STRUCTURES OMITTED", out.note = check.omittedText();
    dicom::writeSegmentation(image, values, spec.labels, files.front(), out, path);
    storage::syncFilesystems({options_.outputDir});  // on disk before an outbox row says it can be sent
    for (size_t i : check.omittedStructures)  // a model that often leaves one out has drifted from its data
      metrics::add(metrics::Family::StructuresOmitted, {job.model, spec.labels[i].name});
    timings["seg_s"] = since(t0);
    return {JobState::Done, "", path.string(), false, confidence, check.summary()};
  } catch (const Stopped&) {
    return {JobState::Queued, "", "", true, std::nullopt, ""};
  } catch (const Error& e) {
    return {e.code() == ErrorCode::Unsupported ? JobState::Rejected : JobState::Failed, e.what(), "", false, std::nullopt, ""};
  } catch (const std::bad_alloc&) {
    return {JobState::Failed, "out of memory", "", false, std::nullopt, ""};
  } catch (const std::exception& e) {
    return {JobState::Failed, e.what(), "", false, std::nullopt, ""};
  }
}

}  // namespace segnode::jobs
