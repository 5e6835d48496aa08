#include "engine/PrecisionChoice.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/Log.h"
#include "engine/Model.h"

#ifdef SEGNODE_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace segnode::engine {
namespace {

std::mutex g_cacheMutex;  // one process writes the cache at a time (workers load models one by one too)

nlohmann::json readCache(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return nlohmann::json::object();
  try {
    auto j = nlohmann::json::parse(in);
    if (j.is_object() && j.contains("entries") && j["entries"].is_array()) return j;
  } catch (const std::exception& e) {  // a damaged cache costs one measurement, nothing else
    SEGNODE_LOG(Warn, Infer, file.string() << ": unreadable precision cache, measuring again: " << e.what());
  }
  return nlohmann::json::object();
}

// The instruction set oneDNN runs on: the CPU's, or less where ONEDNN_MAX_CPU_ISA caps it.
std::string onednnIsa() {
#ifdef SEGNODE_WITH_ONEDNN
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof hex, "isa 0x%x", unsigned(dnnl_get_effective_cpu_isa()));
      return hex;
    }
  }
#else
  return "";
#endif
}

bool sameKey(const nlohmann::json& e, const BundleSpec& spec, const std::string& cpu) {
  return e.value("cpu", "") == cpu && e.value("bundle", "") == spec.reference() &&
         e.value("weights_sha256", "") == spec.weightsSha256;
}

// Best of three timed forward passes of one tile, after one warm-up (oneDNN creates its
// primitives on the first call).
double secondsPerTile(const SegmentationModel& model) {
  const auto& p = model.spec().inference.patchSize;
  c10::InferenceMode guard;
  torch::Tensor tile = torch::randn({1, model.spec().architecture.inChannels, p[0], p[1], p[2]});
  model.forward(tile);
  double best = 1e300;
  for (int i = 0; i < 3; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    model.forward(tile);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

std::vector<Precision> allowedPrecisions(const BundleSpec& spec) {
  std::vector<Precision> allowed{Precision::Float32};
  const auto& guard = spec.metrics.contains("precision_guard") ? spec.metrics["precision_guard"] : nlohmann::ordered_json();
  auto passed = [&](const char* name) {
    return guard.is_object() && guard.contains(name) && guard[name].is_object() && guard[name].value("passed", false);
  };
  if (passed("bf16")) allowed.push_back(Precision::BFloat16);
  // int8 also needs the calibration it was guarded with.
  if (passed("int8") && !spec.inference.int8.activationAbsmax.empty()) allowed.push_back(Precision::Int8);
  return allowed;
}

std::string cpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown CPU";
}

std::string cpuKey() {
  static const std::string key = [] {  // fixed for the process: read /proc/cpuinfo once
    const std::string isa = onednnIsa();
    return isa.empty() ? cpuModelName() : cpuModelName() + " (oneDNN " + isa + ")";
  }();
  return key;
}

std::string PrecisionChoice::summary() const {
  std::string s = std::string(toString(chosen)) + " (" + how;
  for (size_t i = 0; i < secondsPerTile.size(); ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s %.3f s", i ? ", " : ": ", toString(secondsPerTile[i].first), secondsPerTile[i].second);
    s += buf;
  }
  return s + (secondsPerTile.empty() ? ")" : " per tile)");
}

std::optional<PrecisionChoice> cachedPrecision(const BundleSpec& spec, const std::filesystem::path& cacheFile) {
  if (cacheFile.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(g_cacheMutex);
  const std::string cpu = cpuKey();
  const nlohmann::json entries = readCache(cacheFile).value("entries", nlohmann::json::array());
  for (const auto& e : entries) {
    if (!sameKey(e, spec, cpu)) continue;
    PrecisionChoice c;
    if (!parsePrecision(e.value("chosen", ""), c.chosen)) continue;
    const nlohmann::json times = e.value("seconds_per_tile", nlohmann::json::object());  // items() must not outlive it
    for (const auto& [name, seconds] : times.items()) {
      Precision p;
      if (parsePrecision(name, p) && seconds.is_number()) c.secondsPerTile.emplace_back(p, seconds.get<double>());
    }
    c.how = "cached";
    return c;
  }
  return std::nullopt;
}

PrecisionChoice choosePrecision(const BundleSpec& spec, const std::filesystem::path& cacheFile, std::optional<Precision> pinned) {
  const auto allowed = allowedPrecisions(spec);
  if (pinned) {
    bool ok = std::find(allowed.begin(), allowed.end(), *pinned) != allowed.end();
    return {*pinned, {}, ok ? "pinned in the config" : "pinned in the config, though the bundle records no Dice guard for it"};
  }
  if (allowed.size() == 1) return {Precision::Float32, {}, "only fp32 allowed: the bundle records no other precision's Dice guard"};
  if (auto cached = cachedPrecision(spec, cacheFile)) return *cached;

  PrecisionChoice c;
  c.how = "measured";
  double best = 1e300;
  for (Precision p : allowed) {
    auto model = SegmentationModel::load(spec, defaultBackend(), p);
    if (model->precision() != p) continue;  // bf16 or int8 without native support run as fp32: nothing to time
    double s = secondsPerTile(*model);
    c.secondsPerTile.emplace_back(p, s);
    if (s < best) best = s, c.chosen = p;
  }
  if (cacheFile.empty()) return c;
  std::lock_guard<std::mutex> lock(g_cacheMutex);
  nlohmann::json cache = readCache(cacheFile);
  nlohmann::json entries = nlohmann::json::array();
  const std::string cpu = cpuKey();
  const nlohmann::json old = cache.value("entries", nlohmann::json::array());
  for (const auto& e : old)
    if (!sameKey(e, spec, cpu)) entries.push_back(e);
  nlohmann::json times = nlohmann::json::object();
  for (const auto& [p, s] : c.secondsPerTile) times[toString(p)] = s;
  entries.push_back({{"cpu", cpu}, {"bundle", spec.reference()}, {"weights_sha256", spec.weightsSha256},
                     {"chosen", toString(c.chosen)}, {"seconds_per_tile", times}});
  cache["entries"] = entries;
  std::error_code ec;
  std::filesystem::create_directories(cacheFile.parent_path(), ec);
  const auto tmp = cacheFile.string() + ".tmp";
  std::ofstream(tmp) << cache.dump(2) << "\n";
  std::filesystem::rename(tmp, cacheFile, ec);
  if (ec) SEGNODE_LOG(Warn, Infer, cacheFile.string() << ": the precision choice is not cached: " << ec.message());
  return c;
}

}  // namespace segnode::engine
