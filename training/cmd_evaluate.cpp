// segnode-distill evaluate (Dice/HD95 per structure, per bundle, on image/reference cases) and
// export (install a bundle with the metrics evaluate measured).
//
// cases.yaml:
//   cases:
//     - name: seg18-t1            # one image + reference label map
//       group: synthetic           # summaries are per group
//       image: path.nii.gz         # relative paths: against --data-root (default: the file's folder)
//       reference: labels.nii.gz   # values of the bundle's label table, unless `structures` maps them
//       reference_pve: [gm.nii.gz, wm.nii.gz]  # instead of `reference`: label i+1 where map i >= 0.5
//       mask_by_reference: true    # zero the image outside reference > 0 (e.g. artefacts outside)
//       structures:                # merged comparisons; default: every bundle label by value
//         - {name: grey matter, predicted: [3, 42], reference: [1]}
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "common/Error.h"
#include "common/Sha256.h"
#include "common/Yaml.h"
#include "engine/Safetensors.h"
#include "engine/Model.h"
#include "engine/ModelStore.h"
#include "engine/PrecisionChoice.h"
#include "engine/Nifti.h"
#include "engine/Plausibility.h"
#include "engine/Segmenter.h"
#include "training/Commands.h"
#include "training/Data.h"
#include "training/Metrics.h"
#include "training/PlausibilityRanges.h"
#include "training/PostprocessingChoice.h"
#include "training/PrecisionGuard.h"

namespace segnode::distill {
namespace fs = std::filesystem;

namespace {

struct Structure {
  std::string name;
  std::vector<int64_t> predicted, reference;
};
struct Case {
  std::string name, group;
  fs::path image, reference;
  std::vector<fs::path> pve;
  bool maskByReference = false;
  std::vector<Structure> structures;  // empty: by bundle label value
};

std::vector<Case> readCases(const fs::path& file, const fs::path& root) {
  yaml::Reader r(file, ErrorCode::BadInput);
  auto path = [&](const std::string& key) {
    fs::path x = r.get<std::string>(key, "a file path");
    return x.is_absolute() ? x : root / x;
  };
  std::vector<Case> cases;
  for (size_t i = 0, n = r.size("cases", "- {name: ..., group: ..., image: ..., reference: ...}"); i < n; ++i) {
    const auto c = yaml::Reader::item("cases", i);
    Case k;
    k.name = r.get<std::string>(c + ".name", "a name");
    k.group = r.getOr<std::string>(c + ".group", "a group name", "default");
    k.image = path(c + ".image");
    if (r.has(c + ".reference")) k.reference = path(c + ".reference");
    for (size_t j = 0, m = r.size(c + ".reference_pve", "[FILE, ...]"); j < m; ++j) k.pve.push_back(path(yaml::Reader::item(c + ".reference_pve", j)));
    if (k.reference.empty() && k.pve.empty()) r.fail(c, "needs reference or reference_pve");
    k.maskByReference = r.getOr<bool>(c + ".mask_by_reference", "true or false", false);
    for (size_t j = 0, m = r.size(c + ".structures", "- {name: ..., predicted: [...], reference: [...]}"); j < m; ++j) {
      const auto st = yaml::Reader::item(c + ".structures", j);
      k.structures.push_back({r.get<std::string>(st + ".name", "a name"), r.list<int64_t>(st + ".predicted", "a label value"),
                              r.list<int64_t>(st + ".reference", "a label value")});
    }
    cases.push_back(k);
  }
  r.finish();
  if (cases.empty()) r.fail("cases", "no cases");
  return cases;
}

engine::Volume referenceOf(const Case& c) {
  if (!c.reference.empty()) {
    auto v = engine::readNifti(c.reference);
    v.data = v.data.to(torch::kFloat).round().to(torch::kLong);
    return v;
  }
  engine::Volume out;
  std::vector<torch::Tensor> maps;
  for (const auto& p : c.pve) {
    out = engine::readNifti(p);
    maps.push_back(out.data.to(torch::kFloat));
  }
  auto stack = torch::stack(maps);
  auto best = stack.max(0);
  out.data = torch::where(std::get<0>(best) >= 0.5, std::get<1>(best) + 1, torch::zeros_like(std::get<1>(best)));
  return out;
}

struct Row {
  std::string bundle, caseName, group, structure;
  double dice, hd95;
};

struct BundleSummary {
  std::string name, version, precision;
  int64_t params = 0;
  double seconds = 0;
  int volumes = 0;
  int64_t tiles = 0;  // network evaluations, over all cases
  std::map<std::string, std::vector<double>> diceByGroup;
  std::map<std::string, std::map<std::string, std::vector<double>>> diceByStructure;  // group -> structure
  // Per case, for the plausibility thresholds export derives (issue 16).
  std::vector<double> confidence, labelledMl, leftRight, structuresPresent, connectedShare;
  std::map<std::string, double> largestStructureMl;  // CT: each organ's largest volume in a case
};

double mean(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n ? s / n : std::nan("");
}

std::string fmt(double x, int digits = 3) {
  if (std::isnan(x)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, x);
  return b;
}

struct EvaluateArgs {
  std::vector<std::string> bundles;
  std::string cases, out, dataRoot, teacher;
  std::string precision;  // "" = each bundle's own (inference.precision)
  std::string postprocessing = "bundle";  // or "none": measures what the bundle's post-processing adds
  std::optional<double> step;  // sliding-window step; default: each bundle's (inference.tile_step)
  int threads = int(std::thread::hardware_concurrency());
};

int evaluateBundles(const EvaluateArgs& args) {
  fs::path casesFile = args.cases;
  fs::path root = args.dataRoot.empty() ? casesFile.parent_path() : fs::path(args.dataRoot);
  auto cases = readCases(casesFile, root);
  fs::path out = args.out;
  fs::create_directories(out);
  const int threads = args.threads;
  torch::set_num_threads(threads);

  // Every case is read (and masked) once, then segmented by each bundle.
  std::vector<std::pair<engine::Volume, engine::Volume>> loaded;  // image, reference
  for (const auto& c : cases) {
    engine::Volume image = engine::readNifti(c.image);
    engine::Volume ref = referenceOf(c);
    if (ref.data.sizes() != image.data.sizes())
      throw Error(ErrorCode::BadInput, "case " + c.name + ": reference grid differs from the image");
    if (c.maskByReference) image.data = image.data.to(torch::kFloat) * (ref.data > 0).to(torch::kFloat);
    loaded.emplace_back(std::move(image), std::move(ref));
  }

  std::vector<Row> rows;
  std::vector<BundleSummary> summaries;
  for (const auto& dir : args.bundles) {
    auto spec = engine::loadBundleSpec(dir);
    engine::Precision precision = spec.inference.precision;
    if (!args.precision.empty() && !engine::parsePrecision(args.precision, precision))
      throw Error(ErrorCode::InvalidArgument, "--precision: fp32, bf16 or int8");
    auto model = engine::SegmentationModel::load(spec, engine::defaultBackend(), precision);
    if (model->precision() != precision)
      throw Error(ErrorCode::Unsupported, std::string("this CPU does not compute ") + engine::toString(precision) +
                                              " natively: its Dice here would be another precision's");
    BundleSummary sum;
    sum.precision = engine::toString(precision);
    sum.name = spec.name;
    sum.version = spec.version.toString();
    sum.params = model->parameterCount();
    for (size_t ci = 0; ci < cases.size(); ++ci) {
      const Case& c = cases[ci];
      const engine::Volume& image = loaded[ci].first;
      const engine::Volume& ref = loaded[ci].second;
      c10::InferenceMode guard;
      engine::SegmentOptions options;
      options.tileStep = args.step;
      options.postprocess = args.postprocessing == "bundle";
      engine::SegmentStats stats;
      if (sum.volumes == 0) engine::segment(*model, image, options);  // warm-up: TorchScript optimises on first calls
      auto t0 = std::chrono::steady_clock::now();
      engine::Volume pred = engine::segment(*model, image, options, &stats);
      sum.tiles += stats.tiles;
      double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      sum.seconds += sec;
      ++sum.volumes;
      auto p = pred.data.to(torch::kLong), r = ref.data;
      std::vector<Structure> structures = c.structures;
      if (structures.empty())
        for (const auto& l : spec.labels)
          if (l.value != 0) structures.push_back({l.name, {l.value}, {l.value}});
      std::vector<double> caseDice;
      for (const auto& s : structures) {
        auto pm = torch::isin(p, torch::tensor(s.predicted)), rm = torch::isin(r, torch::tensor(s.reference));
        // Absent from this reference (e.g. the oesophagus above a CT's field of view): no Dice.
        if (!rm.any().item<bool>()) continue;
        double d = training::dice(pm, rm), h = training::hd95(pm, rm, image.geometry.spacing);
        rows.push_back({spec.reference(), c.name, c.group, s.name, d, h});
        caseDice.push_back(d);
        sum.diceByStructure[c.group][s.name].push_back(d);
      }
      sum.diceByGroup[c.group].push_back(mean(caseDice));
      auto plausibility = engine::checkPlausibility(spec, pred, stats);
      sum.confidence.push_back(stats.confidence.meanMaxProbability);
      sum.labelledMl.push_back(plausibility.labelledMl);
      if (plausibility.leftRightRatio > 0) sum.leftRight.push_back(plausibility.leftRightRatio);
      sum.structuresPresent.push_back(plausibility.structuresPresent);
      sum.connectedShare.push_back(plausibility.connectedShare);
      if (spec.modality == engine::Modality::CT) {
        const auto volumes = engine::labelVolumesMl(pred, spec.labels);
        for (size_t i = 1; i < volumes.size(); ++i)
          sum.largestStructureMl[spec.labels[i].name] = std::max(sum.largestStructureMl[spec.labels[i].name], volumes[i]);
      }
      // What a node route with on_implausible: reject does with it (pred is not used after this).
      std::string decision;
      if (!plausibility.plausible) {
        const auto kept = engine::omitStructures(spec, pred, stats, plausibility);
        decision = kept.omitted.empty() ? " (a rejecting route rejects it)" : " (a rejecting route sends the rest)";
      }
      std::fprintf(stderr, "%s %s: mean Dice %.3f, %.1f s; %s%s; %.0f %% in one piece%s\n", spec.name.c_str(), c.name.c_str(),
                   mean(caseDice), sec, plausibility.summary().c_str(), decision.c_str(), 100 * plausibility.connectedShare,
                   stats.connectedShare ? (", post-processing cleared " + std::to_string(stats.removedVoxels) + " voxels").c_str() : "");
    }
    summaries.push_back(sum);
  }

  std::ofstream csv(out / "report.csv");
  csv << "bundle,case,group,structure,dice,hd95_mm\n";
  for (const auto& r : rows)
    csv << r.bundle << "," << r.caseName << "," << r.group << ",\"" << r.structure << "\"," << fmt(r.dice, 4) << ","
        << fmt(r.hd95, 2) << "\n";

  // Summary: mean Dice per group, retention against the teacher, parameters, CPU seconds.
  const std::string& teacher = args.teacher;
  const BundleSummary* t = nullptr;
  for (const auto& s : summaries)
    if (s.name == teacher || (teacher.empty() && s.name.find("teacher") != std::string::npos)) t = &s;
  std::vector<std::string> groups;  // in the cases file's order: the first one is plotted
  for (const auto& c : cases)
    if (std::find(groups.begin(), groups.end(), c.group) == groups.end()) groups.push_back(c.group);
  std::ofstream md(out / "report.md");
  md << "| bundle | parameters | CPU s / volume (" << threads << " threads) |";
  for (const auto& g : groups) md << " mean Dice " << g << " | retention " << g << " |";
  md << "\n|---|---:|---:|";
  for (size_t i = 0; i < groups.size(); ++i) md << "---:|---:|";
  md << "\n";
  std::ofstream plot(out / "summary.tsv");
  plot << "# bundle\tparams\tcpu_seconds\tmean_dice_first_group\n";
  for (const auto& s : summaries) {
    md << "| " << s.name << "@" << s.version << " | " << s.params << " | " << fmt(s.seconds / std::max(1, s.volumes), 1) << " |";
    for (const auto& g : groups) {
      double m = mean(s.diceByGroup.count(g) ? s.diceByGroup.at(g) : std::vector<double>{});
      double tm = t && t->diceByGroup.count(g) ? mean(t->diceByGroup.at(g)) : std::nan("");
      md << " " << fmt(m) << " | " << (t ? fmt(100 * m / tm, 1) + " %" : "n/a") << " |";
    }
    md << "\n";
    plot << s.name << "@" << s.version << "\t" << s.params << "\t" << s.seconds / std::max(1, s.volumes) << "\t"
         << mean(s.diceByGroup.count(*groups.begin()) ? s.diceByGroup.at(*groups.begin()) : std::vector<double>{}) << "\n";
    // Per-bundle metrics for export.
    nlohmann::ordered_json m;
    m["params"] = s.params;
    m["cpu_seconds_per_volume"] = std::round(100 * s.seconds / std::max(1, s.volumes)) / 100;
    m["cpu_threads"] = threads;
    m["precision"] = s.precision;
    m["postprocessing"] = args.postprocessing;
    m["tiles_per_volume"] = std::round(10.0 * double(s.tiles) / std::max(1, s.volumes)) / 10;
    if (args.step) m["tile_step"] = *args.step;
    // Four decimals: the precision guard (export --guard) compares drops of 0.005.
    for (const auto& g : groups)
      if (s.diceByGroup.count(g)) {
        m["mean_dice"][g] = std::round(10000 * mean(s.diceByGroup.at(g))) / 10000;
        for (const auto& [name, v] : s.diceByStructure.at(g)) m["dice"][g][name] = std::round(10000 * mean(v)) / 10000;
      }
    if (t) m["teacher"] = t->name;
    // What the validation cases look like to the plausibility checks: export sets min_confidence
    // below the lowest of them, so that no validation case would be flagged.
    if (!s.confidence.empty()) {
      auto lo = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
      auto hi = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
      m["validation_cases"]["confidence"] = {std::round(1000 * lo(s.confidence)) / 1000, std::round(1000 * hi(s.confidence)) / 1000};
      m["validation_cases"]["labelled_volume_ml"] = {std::round(lo(s.labelledMl)), std::round(hi(s.labelledMl))};
      // Rounded outwards: a range export widens to these bounds still holds the case itself.
      auto outwards = [&](const std::vector<double>& v) {
        return nlohmann::ordered_json{std::floor(1000 * lo(v)) / 1000, std::ceil(1000 * hi(v)) / 1000};
      };
      if (!s.leftRight.empty()) m["validation_cases"]["left_right_ratio"] = outwards(s.leftRight);
      m["validation_cases"]["structures_present"] = std::floor(1000 * lo(s.structuresPresent)) / 1000;
      m["validation_cases"]["connected_share"] = outwards(s.connectedShare);
      for (const auto& [name, ml] : s.largestStructureMl)
        m["validation_cases"]["largest_structure_ml"][name] = std::ceil(100 * ml) / 100;
    }
    // Name and version: two versions of one model evaluated side by side keep separate files.
    YAML::Emitter e;
    yaml::emit(e, m);
    std::ofstream(out / (s.name + "-" + s.version + ".metrics.yaml")) << e.c_str() << "\n";
  }
  md << "\nPer structure (mean Dice over the cases of each group):\n\n";
  for (const auto& g : groups) {
    md << "\n**" << g << "**\n\n| structure |";
    for (const auto& s : summaries) md << " " << s.name << "@" << s.version << " |";
    md << "\n|---|";
    for (size_t i = 0; i < summaries.size(); ++i) md << "---:|";
    md << "\n";
    std::vector<std::string> names;
    if (!summaries.empty() && summaries[0].diceByStructure.count(g))
      for (const auto& [n, v] : summaries[0].diceByStructure.at(g)) names.push_back(n);
    for (const auto& n : names) {
      md << "| " << n << " |";
      for (const auto& s : summaries) {
        auto gi = s.diceByStructure.find(g);
        md << " " << (gi != s.diceByStructure.end() && gi->second.count(n) ? fmt(mean(gi->second.at(n))) : "n/a") << " |";
      }
      md << "\n";
    }
  }
  md.close();
  plot.close();
  // Plot with gnuplot when installed: parameters (log) vs Dice, point size by CPU seconds.
  std::string gp = "gnuplot -e \"set terminal png size 900,600; set output '" + (out / "plot.png").string() +
                   "'; set logscale x; set xlabel 'parameters'; set ylabel 'mean Dice (" + *groups.begin() +
                   ")'; set title 'params vs Dice vs CPU latency (label: seconds per volume)'; set key off; "
                   "plot '" + (out / "summary.tsv").string() +
                   "' using 2:4 with points pt 7 ps 2, '' using 2:4:(sprintf('%s %.1fs',stringcolumn(1),\\$3)) with labels offset 0,1.5\" 2>&1";
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    if (std::system(gp.c_str()) != 0) std::fprintf(stderr, "gnuplot failed; the tables are complete\n");
  } else {
    std::fprintf(stderr, "gnuplot not installed: no plot.png (apt-get install gnuplot-nox)\n");
  }
  std::ifstream report(out / "report.md");
  std::fputs(std::string(std::istreambuf_iterator<char>(report), {}).c_str(), stdout);
  return 0;
}

struct ExportArgs {
  std::string bundle, metrics, modelsDir = "etc/models", templateFile, version, description;
  std::vector<std::string> guards;  // PRECISION=FILE: evaluate's metrics in another precision
  std::string postprocessingCheck;  // evaluate's metrics with --postprocessing none
  std::optional<double> tileStep;     // the bundle's default sliding-window step, when measured
  bool fp16 = false;
  std::vector<std::string> plausibilityLabels;  // training label maps: bundle.yaml `plausibility:`
  training::RangeOptions ranges;
};

int exportBundle(const ExportArgs& args) {
  auto spec = engine::loadBundleSpec(args.bundle);
  if (const auto& t = args.templateFile; !t.empty()) {  // refresh codes and colours from the (newer) label table
    auto tpl = engine::loadBundleTemplate(t);
    if (tpl.labels.size() != spec.labels.size())
      throw Error(ErrorCode::BadBundle, t + ": its label table does not match " + spec.directory.string());
    for (size_t i = 0; i < tpl.labels.size(); ++i) {
      if (tpl.labels[i].value != spec.labels[i].value)
        throw Error(ErrorCode::BadBundle, t + ": label " + std::to_string(i) + " has another value than the bundle's");
      spec.labels[i] = tpl.labels[i];
    }
    spec.postprocessing = tpl.postprocessing;
  }
  if (!args.version.empty() && !engine::SemVer::parse(args.version, spec.version))
    throw Error(ErrorCode::InvalidArgument, "--version wants X.Y.Z");
  if (!args.description.empty()) spec.description = args.description;
  if (args.tileStep) spec.inference.tileStep = *args.tileStep;
  if (!args.metrics.empty()) {
    // A post-processing choice made by an earlier export stays with the bundle it shaped.
    const auto check = spec.metrics.value("postprocessing_check", nlohmann::ordered_json());
    spec.metrics = yaml::toJson(yaml::Reader(args.metrics, ErrorCode::BadInput).at(""));
    if (!check.is_null()) spec.metrics["postprocessing_check"] = check;
  }
  // The bundle's recorded Dice is the product's: measured with the post-processing it declares.
  if (spec.metrics.value("postprocessing", "bundle") == "none" && !spec.postprocessing.largestComponent.empty())
    throw Error(ErrorCode::BadInput, args.metrics + ": measured with --postprocessing none, but the bundle keeps the largest "
                                     "piece of its organs; evaluate it again without that option");
  for (const auto& g : args.guards) {
    auto eq = g.find('=');
    engine::Precision p;
    if (eq == std::string::npos || !engine::parsePrecision(g.substr(0, eq), p))
      throw Error(ErrorCode::InvalidArgument, "--guard wants PRECISION=METRICS.yaml, e.g. bf16=build/eval-bf16/NAME-X.Y.Z.metrics.yaml");
    if (args.metrics.empty()) throw Error(ErrorCode::InvalidArgument, "--guard needs --metrics: the fp32 reference");
    auto candidate = yaml::toJson(yaml::Reader(g.substr(eq + 1), ErrorCode::BadInput).at(""));
    spec.metrics["precision_guard"][engine::toString(p)] = training::precisionGuard(spec.metrics, candidate).toJson();
  }
  if (!args.postprocessingCheck.empty()) {
    if (args.metrics.empty()) throw Error(ErrorCode::InvalidArgument, "--postprocessing-check needs --metrics: the same cases post-processed");
    const auto without = yaml::toJson(yaml::Reader(args.postprocessingCheck, ErrorCode::BadInput).at(""));
    const auto choice = training::choosePostprocessing(spec, spec.metrics, without);
    spec.postprocessing.largestComponent = choice.kept;
    spec.metrics["postprocessing_check"] = choice.toJson();
    for (const auto& name : choice.dropped)
      std::fprintf(stderr, "post-processing: %s keeps all its pieces (its largest alone lost %.4f Dice on the validation cases); "
                           "its metrics were measured with it: evaluate the exported bundle again\n",
                   name.c_str(), -choice.gain[name].get<double>());
  }
  if (!args.plausibilityLabels.empty()) {
    training::ValidationExtremes validation;
    if (spec.metrics.contains("validation_cases")) {
      const auto& v = spec.metrics["validation_cases"];
      auto range = [&](const char* key) { return std::array<double, 2>{v[key][0].get<double>(), v[key][1].get<double>()}; };
      validation.lowestConfidence = v["confidence"][0].get<double>();
      validation.labelledVolumeMl = range("labelled_volume_ml");
      if (v.contains("left_right_ratio")) validation.leftRightRatio = range("left_right_ratio");  // evaluate since 2026-12-02
      if (v.contains("structures_present")) validation.structuresPresent = v["structures_present"].get<double>();
      if (v.contains("connected_share")) validation.connectedShare = v["connected_share"][0].get<double>();
      if (v.contains("largest_structure_ml"))  // CT, evaluate since 2026-12-04
        for (const auto& [name, ml] : v["largest_structure_ml"].items()) validation.largestStructureMl[name] = ml.get<double>();
    } else {
      std::fprintf(stderr, "no validation cases in --metrics (evaluate them again): min_confidence not set\n");
    }
    spec.plausibility = training::plausibilityFromLabelMaps(spec, args.plausibilityLabels, validation, args.ranges);
  }
  fs::path models = args.modelsDir;
  fs::path dest = models / spec.name / spec.version.toString();
  if (fs::exists(dest / "bundle.yaml"))
    throw Error(ErrorCode::InvalidArgument, dest.string() + " exists already; bundles are immutable, pick a new --version");
  fs::create_directories(dest);
  if (args.fp16) {  // half the size; the engine computes in float32 either way
    engine::writeSafetensors(dest / spec.weightsFile, engine::readSafetensors(spec.weightsPath()),
                             {{"format", "pt"}, {"bundle", spec.name}}, torch::kHalf);
    spec.weightsSha256 = sha256File(dest / spec.weightsFile);
  } else {
    fs::copy_file(spec.weightsPath(), dest / spec.weightsFile, fs::copy_options::overwrite_existing);
  }
  spec.directory = dest;
  engine::saveBundleSpec(spec, dest / "bundle.yaml");
  engine::loadBundleSpec(dest);  // refuses what would not load in the node
  std::printf("%s\n", dest.c_str());
  return 0;
}

}  // namespace

void addEvaluate(CLI::App& app) {
  auto e = std::make_shared<EvaluateArgs>();
  auto* evaluate = app.add_subcommand("evaluate", "Dice and HD95 per label for bundles on image/label cases; Markdown, CSV and a plot");
  evaluate->add_option("--bundles", e->bundles, "bundle folders DIR,DIR,...")->required()->delimiter(',');
  evaluate->add_option("--cases", e->cases, "cases.yaml (format: training/cmd_evaluate.cpp)")->required();
  evaluate->add_option("--out", e->out, "report folder")->required();
  evaluate->add_option("--threads", e->threads, "CPU threads")->check(CLI::Range(1, 1024));
  evaluate->add_option("--data-root", e->dataRoot, "relative case paths against this (default: the cases file's folder)");
  evaluate->add_option("--precision", e->precision, "fp32, bf16 or int8 (calibrated bundles) for every bundle (default: each bundle's own)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  evaluate->add_option("--step", e->step, "sliding-window step for every bundle (default: each bundle's)")
      ->check(CLI::Range(0.05, 1.0));
  evaluate->add_option("--postprocessing", e->postprocessing,
                       "bundle: each bundle's post-processing (largest piece per listed organ), as the node runs it; "
                       "none: the network's labels as they are")
      ->check(CLI::IsMember({"bundle", "none"}));
  evaluate->add_option("--teacher", e->teacher, "bundle name retention is measured against (default: the one named *teacher*)");
  evaluate->callback([e] { evaluateBundles(*e); });

  auto x = std::make_shared<ExportArgs>();
  auto* install = app.add_subcommand("export", "install a trained bundle into a models directory with its measured metrics");
  install->add_option("--bundle", x->bundle, "the trained bundle's folder")->required();
  install->add_option("--metrics", x->metrics, "NAME-VERSION.metrics.yaml (segnode-distill evaluate)");
  install->add_option("--template", x->templateFile, "refresh label codes, colours and post-processing from this template");
  install->add_option("--version", x->version, "X.Y.Z (default: the bundle's)");
  install->add_option("--description", x->description, "replace the bundle's description");
  install->add_flag("--fp16", x->fp16, "store the weights as float16");
  install->add_option("--models-dir", x->modelsDir, "where to install");
  install->add_option("--tile-step", x->tileStep, "the bundle's default sliding-window step (its --metrics measured with it)")
      ->check(CLI::Range(0.05, 1.0));
  install->add_option("--postprocessing-check", x->postprocessingCheck,
                      "METRICS.yaml of `evaluate --postprocessing none` on the --metrics cases: keeps the largest piece only "
                      "of the organs where that did not lower the Dice (nnU-Net's rule)");
  install->add_option("--guard", x->guards, "PRECISION=METRICS.yaml: the same evaluation in bf16 or int8; recorded as "
                                            "metrics.precision_guard (the node runs a precision only where it passed)")
      ->delimiter(',');
  install->add_option("--plausibility-labels", x->plausibilityLabels,
                       "the training label maps A,B,...: derive bundle.yaml `plausibility:` from them and the "
                       "validation confidence in --metrics")
      ->delimiter(',');
  install->add_option("--plausibility-margin", x->ranges.margin, "widen the ranges by this share")->check(CLI::Range(0.0, 2.0));
  install->callback([x] { exportBundle(*x); });
}

}  // namespace segnode::distill
