// segnode bench: models measured side by side in one process, interleaved, after warm-up, so that
// machine noise hits every model alike. Seconds per volume = the whole in-memory pipeline
// (preprocess, sliding window, back to the input grid); I/O is excluded.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/Error.h"
#include <nlohmann/json.hpp>
#include "daemon/cli/Commands.h"
#include "daemon/cli/ModelRef.h"
#include "common/Terminal.h"
#include "daemon/cli/InputVolume.h"
#include "engine/Segmenter.h"

namespace segnode::cli {
namespace {

struct Entry {
  std::string label;  // as given on the command line
  std::shared_ptr<engine::SegmentationModel> model;
  double loadSeconds = 0;
  std::vector<double> seconds, inferSeconds;
  std::vector<int64_t> peakRss;
  int64_t tiles = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Three forward passes on a tile-shaped input: the TorchScript profiling executor optimises after
// its first runs, and oneDNN caches its kernels, so timings after this are steady-state.
void warmUp(const engine::SegmentationModel& m, int passes) {
  c10::InferenceMode guard;
  const auto& p = m.spec().inference.patchSize;
  torch::Tensor x = torch::randn({m.spec().inference.batchSize, 1, p[2], p[1], p[0]});
  for (int i = 0; i < passes; ++i) m.forward(x);
}

}  // namespace

int runBench(const ArgList& argList, const char* argv0) {
  Args args(argList, {"--json"}, {"--models", "--input", "--repeat", "--threads", "--step", "--warmup", "--models-dir"});
  engine::ModelStore store = modelStore(args, argv0);
  const int repeat = args.intValue("--repeat", 3, 1, 1000);
  const int warmup = args.intValue("--warmup", 3, 0, 100);
  const int threads = applyThreads(args);
  engine::Volume image = readInputVolume(args.required("--input"));
  engine::SegmentOptions options;
  if (args.value("--step")) options.tileStep = args.doubleValue("--step", 0.5, 0.05, 1.0);

  std::vector<Entry> entries;
  for (const auto& item : splitList(args.required("--models"))) {
    // NAME[@VERSION][:onednn|:script|:eager][:fp32|:bf16]
    auto parts = splitList(item, ':');
    std::string ref = parts.empty() ? item : parts[0], backend = engine::toString(engine::defaultBackend());
    std::optional<std::string> precision;
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i] == "fp32" || parts[i] == "bf16") precision = parts[i];
      else backend = parts[i];
    }
    Entry e;
    e.label = item;
    auto t0 = std::chrono::steady_clock::now();
    auto spec = store.resolve(ref);
    e.model = engine::SegmentationModel::load(spec, backendOption(backend), precisionOption(precision, spec));
    e.loadSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    warmUp(*e.model, warmup);
    entries.push_back(std::move(e));
  }
  if (entries.empty()) throw Error(ErrorCode::InvalidArgument, "--models lists no model");

  for (int r = 0; r < repeat; ++r) {
    for (auto& e : entries) {
      resetPeakRss();
      ProgressLine progress("bench " + e.label + " run " + std::to_string(r + 1) + "/" + std::to_string(repeat));
      options.progress = [&](int64_t done, int64_t total) { progress.update(done, total); };
      engine::SegmentStats stats;
      auto t0 = std::chrono::steady_clock::now();
      engine::segment(*e.model, image, options, &stats);
      e.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      progress.finish();
      e.inferSeconds.push_back(stats.inferenceSeconds);
      e.peakRss.push_back(peakRssBytes());
      e.tiles = stats.tiles;
    }
  }

  const bool json = args.flag("--json");
  if (!json)
    std::printf("%-36s %11s %9s %9s %10s %9s %6s\n", "MODEL", "PARAMS", "MEDIAN_S", "MIN_S", "S_PER_TILE", "PEAK_MIB",
                "TILES");
  for (const auto& e : entries) {
    double med = median(e.seconds), mn = *std::min_element(e.seconds.begin(), e.seconds.end());
    double perTile = median(e.inferSeconds) / double(std::max<int64_t>(1, e.tiles));
    int64_t peak = *std::max_element(e.peakRss.begin(), e.peakRss.end());
    if (json) {
      const nlohmann::json o{{"model", e.label},
                             {"reference", e.model->spec().reference()},
                             {"parameters", e.model->parameterCount()},
                             {"median_seconds", med},
                             {"min_seconds", mn},
                             {"seconds_per_tile", perTile},
                             {"tiles", e.tiles},
                             {"peak_rss_bytes", peak},
                             {"load_seconds", e.loadSeconds},
                             {"threads", threads},
                             {"runs", e.seconds}};
      std::printf("%s\n", o.dump().c_str());
    } else {
      std::printf("%-36s %11lld %9.2f %9.2f %10.3f %9.0f %6lld\n", e.label.c_str(), (long long)e.model->parameterCount(),
                  med, mn, perTile, double(peak) / (1024.0 * 1024.0), (long long)e.tiles);
    }
  }
  return 0;
}

}  // namespace segnode::cli
