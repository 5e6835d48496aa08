// segnode bench: models measured side by side in one process, interleaved, after warm-up, so that
// machine noise hits every model alike. Seconds per volume = the whole in-memory pipeline
// (preprocess, sliding window, back to the input grid); I/O is excluded.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <cstdio>
#include <sstream>

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
  std::optional<double> step;  // :stepS, else --step, else the bundle's
  double loadSeconds = 0;
  std::vector<double> seconds, preSeconds, inferSeconds, postSeconds;  // per run: whole, then stages
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

// ":step0.5" -> 0.5, in the range --step accepts.
double stepPart(const std::string& part) {
  try {
    size_t used = 0;
    const double v = std::stod(part.substr(4), &used);
    if (used == part.size() - 4 && v >= 0.05 && v <= 1.0) return v;
  } catch (const std::exception&) {
  }
  throw Error(ErrorCode::InvalidArgument, "'" + part + "': a model's step is written stepS with S in 0.05..1, e.g. step0.5");
}

struct BenchArgs : RunOptions {
  std::vector<std::string> models;
  int repeat = 3, warmup = 3;
  bool json = false;
};

void bench(BenchArgs& a, const char* argv0) {
  engine::ModelStore store = modelStore(a.modelsDir, argv0);
  at::set_num_threads(a.threads);
  engine::Volume image = readInputVolume(a.input);
  engine::SegmentOptions& options = a.segment;

  std::vector<Entry> entries;
  for (const auto& item : a.models) {
    // NAME[@VERSION][:onednn|:script|:eager][:fp32|:bf16|:int8][:stepS]
    std::istringstream parts(item);
    std::string ref, part, backend = engine::toString(engine::defaultBackend()), precision;
    Entry e;
    std::getline(parts, ref, ':');
    while (std::getline(parts, part, ':')) {
      if (part.rfind("step", 0) == 0) e.step = stepPart(part);
      else (part == "fp32" || part == "bf16" || part == "int8" ? precision : backend) = part;
    }
    e.label = item;
    auto t0 = std::chrono::steady_clock::now();
    auto spec = store.resolve(ref);
    e.model = engine::SegmentationModel::load(spec, backendOption(backend), precisionOption(precision, spec));
    e.loadSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    warmUp(*e.model, a.warmup);
    entries.push_back(std::move(e));
  }
  if (entries.empty()) throw Error(ErrorCode::InvalidArgument, "--models lists no model");

  for (int r = 0; r < a.repeat; ++r) {
    for (auto& e : entries) {
      resetPeakRss();
      ProgressLine progress("bench " + e.label + " run " + std::to_string(r + 1) + "/" + std::to_string(a.repeat));
      options.progress = [&](int64_t done, int64_t total) { progress.update(done, total); };
      engine::SegmentStats stats;
      engine::SegmentOptions entryOptions = options;
      if (e.step) entryOptions.tileStep = e.step;
      auto t0 = std::chrono::steady_clock::now();
      engine::segment(*e.model, image, entryOptions, &stats);
      e.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      progress.finish();
      e.preSeconds.push_back(stats.preprocessSeconds);
      e.inferSeconds.push_back(stats.inferenceSeconds);
      e.postSeconds.push_back(stats.postprocessSeconds);
      e.peakRss.push_back(peakRssBytes());
      e.tiles = stats.tiles;
    }
  }

  if (!a.json)
    std::printf("%-36s %11s %9s %9s %10s %9s %6s\n", "MODEL", "PARAMS", "MEDIAN_S", "MIN_S", "S_PER_TILE", "PEAK_MIB",
                "TILES");
  for (const auto& e : entries) {
    double med = median(e.seconds), mn = *std::min_element(e.seconds.begin(), e.seconds.end());
    double perTile = median(e.inferSeconds) / double(std::max<int64_t>(1, e.tiles));
    int64_t peak = *std::max_element(e.peakRss.begin(), e.peakRss.end());
    if (a.json) {
      const nlohmann::json o{{"model", e.label},
                             {"reference", e.model->spec().reference()},
                             {"parameters", e.model->parameterCount()},
                             {"median_seconds", med},
                             {"min_seconds", mn},
                             {"preprocess_seconds", median(e.preSeconds)},
                             {"inference_seconds", median(e.inferSeconds)},
                             {"postprocess_seconds", median(e.postSeconds)},
                             {"seconds_per_tile", perTile},
                             {"tiles", e.tiles},
                             {"peak_rss_bytes", peak},
                             {"load_seconds", e.loadSeconds},
                             {"threads", a.threads},
                             {"runs", e.seconds}};
      std::printf("%s\n", o.dump().c_str());
    } else {
      std::printf("%-36s %11lld %9.2f %9.2f %10.3f %9.0f %6lld\n", e.label.c_str(), (long long)e.model->parameterCount(),
                  med, mn, perTile, double(peak) / (1024.0 * 1024.0), (long long)e.tiles);
    }
  }
}

}  // namespace

void addBench(CLI::App& app, const char* argv0) {
  auto a = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand("bench", "time models side by side on one volume, interleaved, after warm-up");
  sub->add_option("--models", a->models, "NAME[@VERSION][:onednn|:script|:eager][:fp32|:bf16|:int8][:stepS],...")->required()->delimiter(',');
  addRunOptions(*sub, *a);
  sub->add_option("--repeat", a->repeat, "timed runs per model")->check(CLI::Range(1, 1000));
  sub->add_option("--warmup", a->warmup, "forward passes per model before timing")->check(CLI::Range(0, 100));
  sub->add_flag("--json", a->json, "one JSON object per model");
  sub->callback([a, argv0] { bench(*a, argv0); });
}

}  // namespace segnode::cli
