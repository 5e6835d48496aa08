// segnode models: what is installed, and (models init) random-weight bundles for tests/benchmarks.
#include <cmath>
#include <cstdio>
#include <optional>
#include <ctime>

#include "common/Error.h"
#include <nlohmann/json.hpp>
#include "common/Sha256.h"
#include "daemon/cli/Commands.h"
#include "daemon/cli/ModelRef.h"
#include "daemon/config/Config.h"
#include "engine/PrecisionChoice.h"

namespace segnode::cli {
namespace {

std::string number(const nlohmann::ordered_json& n) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", n.is_number() ? n.get<double>() : 0.0);
  return b;
}

// "Dice synth-t1 0.904, real-philips-fast 0.864; 41.3 s/volume": mean Dice per validation group
// (or one number), then the CPU time the evaluation measured.
std::string metricSummary(const nlohmann::ordered_json& metrics) {
  std::string out;
  const auto dice = metrics.value("mean_dice", nlohmann::ordered_json());
  if (dice.is_number()) out = "Dice " + number(dice);
  if (dice.is_object())
    for (const auto& [group, value] : dice.items()) out += (out.empty() ? "Dice " : ", ") + group + " " + number(value);
  if (const auto sec = metrics.value("cpu_seconds_per_volume", nlohmann::ordered_json()); sec.is_number())
    out += (out.empty() ? "" : "; ") + number(sec) + " s/volume";
  return out.empty() ? "-" : out;
}

nlohmann::json bundleJson(const engine::InstalledBundle& b, bool verify) {
  nlohmann::json o{{"directory", b.directory.string()}, {"ok", b.ok}};
  if (!b.ok) {
    o["error"] = b.error;
    return o;
  }
  const auto& s = b.spec;
  auto labels = nlohmann::json::array();
  for (const auto& l : s.labels) labels.push_back({{"value", l.value}, {"name", l.name}});
  o["name"] = s.name;
  o["version"] = s.version.toString();
  o["modality"] = engine::toString(s.modality);
  o["body_part"] = s.bodyPart;
  o["labels"] = std::move(labels);
  o["parameters"] = s.architecture.parameterCount();
  o["untrained"] = s.untrained();
  o["metrics"] = s.metrics;
  if (verify) o["weights_ok"] = sha256File(s.weightsPath()) == s.weightsSha256;
  return o;
}

// models (list) and models init.
struct ModelsArgs {
  std::string modelsDir, templateFile, name, version;
  std::string config = defaultConfigFile();
  bool json = false, verify = false, fp16 = false;
  int divisor = 1, minFeatures = 4, seed = 1;
};

// "fp32, bf16 allowed; on this CPU: bf16 (cached: fp32 0.412 s, bf16 0.298 s per tile)".
std::string precisionLine(const engine::BundleSpec& s, const std::filesystem::path& cache) {
  std::string line;
  for (auto p : engine::allowedPrecisions(s)) line += (line.empty() ? "" : ", ") + std::string(engine::toString(p));
  line += " allowed";
  if (auto c = engine::cachedPrecision(s, cache)) line += "; on this CPU: " + c->summary();
  else if (engine::allowedPrecisions(s).size() > 1) line += "; not measured on this CPU yet (the node does at first load)";
  return line;
}

// The node's config, when it is readable here: its precision cache and site models directory.
std::optional<config::NodeConfig> nodeConfig(const ModelsArgs& a) {
  try {
    if (std::filesystem::exists(a.config)) return config::loadConfig(a.config);
  } catch (const Error&) {
  }
  return std::nullopt;
}

// The bundle's plausibility ranges in one line (engine/Plausibility.h).
std::string plausibilityLine(const engine::PlausibilitySpec& p) {
  if (!p.declared) return "none declared (results are measured, never rejected)";
  auto range = [](const engine::PlausibilitySpec::Range& r) {
    char b[64];
    std::snprintf(b, sizeof b, "%.3g-%.3g", r[0], r[1]);
    return std::string(b);
  };
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  if (p.labelledVolumeMl[1] > 0) add("labelled " + range(p.labelledVolumeMl) + " mL");
  if (p.structuresPresent > 0) add(">= " + std::to_string(int(std::lround(100 * p.structuresPresent))) + " % of structures");
  if (p.leftRightRatio[1] > 0) add("left/right " + range(p.leftRightRatio));
  if (!p.structureVolumeMl.empty()) add(std::to_string(p.structureVolumeMl.size()) + " structure volume ranges");
  if (p.lowestInputAtMost) {
    char b[48];
    std::snprintf(b, sizeof b, "input's lowest value <= %.0f", *p.lowestInputAtMost);
    add(b);
  }
  if (p.minConfidence > 0) {
    char b[32];
    std::snprintf(b, sizeof b, "confidence >= %.2f", p.minConfidence);
    add(b);
  }
  return s;
}

int listModels(const ModelsArgs& a, const char* argv0) {
  const auto cfg = nodeConfig(a);
  const auto cache = cfg ? config::precisionCacheFile(*cfg) : std::filesystem::path();
  engine::ModelStore store = a.modelsDir.empty() && cfg
                                 ? engine::ModelStore({engine::defaultModelsDir(argv0), cfg->siteModelsDir})
                                 : modelStore(a.modelsDir, argv0);
  auto all = store.list();
  const bool verify = a.verify;
  int broken = 0;
  if (a.json) {
    for (const auto& b : all) {
      nlohmann::json j = bundleJson(b, verify && b.ok);
      if (b.ok) j["precision"] = precisionLine(b.spec, cache);
      if (b.ok) j["plausibility"] = plausibilityLine(b.spec.plausibility);
      if (b.ok) j["largest_component"] = b.spec.postprocessing.largestComponent;
      if (!b.ok || (verify && j.contains("weights_ok") && !j.at("weights_ok").get<bool>())) ++broken;
      std::printf("%s\n", j.dump().c_str());
    }
    return broken ? 65 : 0;
  }
  for (const auto& root : store.roots()) std::printf("models in %s\n", root.string().c_str());
  std::printf("%-28s %-8s %-3s %-8s %6s %11s  %s\n", "NAME", "VERSION", "MOD", "BODY", "LABELS", "PARAMS", "METRICS");
  for (const auto& b : all) {
    if (!b.ok) {
      std::printf("%-28s BROKEN: %s\n", b.directory.string().c_str(), b.error.c_str());
      ++broken;
      continue;
    }
    const auto& s = b.spec;
    std::string metrics = s.untrained() ? "UNTRAINED (random weights)" : metricSummary(s.metrics);
    if (verify && sha256File(s.weightsPath()) != s.weightsSha256) {
      metrics = "WEIGHTS FAIL CHECKSUM";
      ++broken;
    }
    std::printf("%-28s %-8s %-3s %-8s %6zu %11lld  %s\n", s.name.c_str(), s.version.toString().c_str(),
                engine::toString(s.modality), s.bodyPart.c_str(), s.labels.size() - 1,
                (long long)s.architecture.parameterCount(), metrics.c_str());
    std::printf("%-28s precision: %s\n", "", precisionLine(s, cache).c_str());
    std::printf("%-28s plausibility: %s\n", "", plausibilityLine(s.plausibility).c_str());
    if (const auto n = s.postprocessing.largestComponent.size(); n > 0)
      std::printf("%-28s post-processing: largest piece of %zu of %zu structures\n", "", n, s.labels.size() - 1);
  }
  if (all.empty()) std::printf("(none installed)\n");
  return broken ? 65 : 0;
}

void initBundle(const ModelsArgs& a, const char* argv0) {
  engine::BundleSpec spec = engine::loadBundleTemplate(a.templateFile);
  spec.name = a.name;
  if (!engine::SemVer::parse(a.version, spec.version))
    throw Error(ErrorCode::InvalidArgument, "--version must be MAJOR.MINOR.PATCH");
  const int divisor = a.divisor, minFeatures = a.minFeatures;
  spec.architecture = spec.architecture.withWidthDivisor(divisor, minFeatures);
  spec.created = isoUtc(std::time(nullptr));
  spec.description = "UNTRAINED: random weights for tests and benchmarks; outputs are meaningless. " + spec.description;
  spec.provenance = {{"untrained", true}, {"template", a.templateFile}, {"width_divisor", divisor}, {"seed", a.seed}};
  spec.metrics = {{"parameters", spec.architecture.parameterCount()}};
  engine::ModelStore store = modelStore(a.modelsDir, argv0);
  auto dir = store.root() / spec.name / spec.version.toString();
  if (std::filesystem::exists(dir / "bundle.yaml"))
    throw Error(ErrorCode::InvalidArgument, dir.string() + " exists already; bundles are immutable, pick a new version");
  auto written = engine::writeRandomBundle(spec, dir, uint64_t(a.seed), a.fp16 ? torch::kHalf : torch::kFloat);
  std::printf("%s: %s (%lld parameters, random weights)\n", dir.string().c_str(), written.reference().c_str(),
              (long long)written.architecture.parameterCount());
}

}  // namespace

void addModels(CLI::App& app, const char* argv0) {
  auto a = std::make_shared<ModelsArgs>();
  auto* sub = app.add_subcommand("models", "list installed model bundles");
  sub->add_flag("--json", a->json, "one JSON object per bundle");
  sub->add_flag("--verify", a->verify, "check every weights file against its sha256");
  auto* init = sub->add_subcommand("init", "make a bundle with RANDOM weights from a template (tests, benchmarks)");
  init->add_option("--template", a->templateFile, "bundle template (etc/templates/*.yaml)")->required();
  init->add_option("--name", a->name, "bundle name")->required();
  init->add_option("--version", a->version, "X.Y.Z")->required();
  init->add_option("--width-divisor", a->divisor, "features per stage / D")->check(CLI::Range(1, 64));
  init->add_option("--min-features", a->minFeatures, "floor of the divided widths")->check(CLI::Range(1, 1024));
  init->add_option("--seed", a->seed, "weights seed")->check(CLI::Range(0, 1 << 30));
  init->add_flag("--fp16", a->fp16, "store the weights as float16");
  for (auto* s : {sub, init}) s->add_option("--models-dir", a->modelsDir, "the installed model bundles");
  sub->add_option("--config", a->config, "the node's configuration (where its precision cache is)");
  init->callback([a, argv0] { initBundle(*a, argv0); });
  sub->callback([a, argv0, init] {
    if (int rc = init->parsed() ? 0 : listModels(*a, argv0)) throw CLI::RuntimeError(rc);
  });
}

}  // namespace segnode::cli
