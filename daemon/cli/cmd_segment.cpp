// segnode segment: one NIfTI (or a DICOM series folder) in, one label NIfTI out on the same grid.
// segnode convert: a DICOM series folder -> the NIfTI volume the node would segment.
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/Error.h"
#include "daemon/cli/Commands.h"
#include "daemon/cli/ModelRef.h"
#include "common/Terminal.h"
#include "daemon/cli/InputVolume.h"
#include "engine/Nifti.h"
#include "engine/Plausibility.h"
#include "engine/Segmenter.h"

namespace segnode::cli {

void addRunOptions(CLI::App& sub, RunOptions& o) {
  sub.add_option("--input", o.input, "a NIfTI volume, or a folder holding one DICOM series")->required();
  sub.add_option("--models-dir", o.modelsDir, "the installed model bundles");
  o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  sub.add_option("--threads", o.threads, "intra-op threads (default: all cores)")->check(CLI::Range(1, 1024));
  sub.add_option("--step", o.segment.tileStep, "sliding-window step (default: the bundle's)")->check(CLI::Range(0.05, 1.0));
}

engine::ModelStore modelStore(const std::string& modelsDir, const char* argv0) {
  return engine::ModelStore(modelsDir.empty() ? engine::defaultModelsDir(argv0) : std::filesystem::path(modelsDir));
}

engine::Backend backendOption(const std::string& text) {
  if (text == "onednn") return engine::Backend::OneDnn;
  if (text == "script") return engine::Backend::TorchScript;
  if (text == "eager") return engine::Backend::Eager;
  throw Error(ErrorCode::InvalidArgument, "backend must be 'onednn', 'script' or 'eager', got '" + text + "'");
}

engine::Precision precisionOption(const std::string& text, const engine::BundleSpec& spec) {
  if (text.empty()) return spec.inference.precision;
  engine::Precision p = engine::Precision::Float32;
  if (!engine::parsePrecision(text, p))
    throw Error(ErrorCode::InvalidArgument, "precision must be 'fp32', 'bf16' or 'int8', got '" + text + "'");
  return p;
}

void warnIfUntrained(const engine::BundleSpec& spec) {
  if (spec.untrained())
    std::fprintf(stderr, "segnode: WARNING: %s has RANDOM (untrained) weights; its labels are meaningless\n",
                 spec.reference().c_str());
}

namespace {

struct SegmentArgs : RunOptions {
  std::string model, output, backend = engine::toString(engine::defaultBackend()), precision;
  bool mirror = false;
};

void segmentVolume(const SegmentArgs& a, const char* argv0) {
  engine::BundleSpec spec = modelStore(a.modelsDir, argv0).resolve(a.model);
  warnIfUntrained(spec);
  at::set_num_threads(a.threads);
  auto t0 = std::chrono::steady_clock::now();
  auto model = engine::SegmentationModel::load(spec, backendOption(a.backend), precisionOption(a.precision, spec));
  engine::Volume image = readInputVolume(a.input);

  engine::SegmentOptions options = a.segment;
  if (a.mirror) options.mirror = true;
  ProgressLine progress("segment " + spec.reference());
  options.progress = [&](int64_t done, int64_t total) { progress.update(done, total); };
  engine::SegmentStats stats;
  engine::Volume labels = engine::segment(*model, image, options, &stats);
  progress.finish();
  engine::writeNifti(a.output, labels);
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr,
               "segnode: %s -> %s with %s (%d threads): %.1f s total; preprocess %.2f s, %lld tiles %.1f s, "
               "back to input grid %.2f s\n",
               a.input.c_str(), a.output.c_str(), spec.reference().c_str(), a.threads, total, stats.preprocessSeconds,
               (long long)stats.tiles, stats.inferenceSeconds, stats.postprocessSeconds);
  // What the node would decide (issue 16): the bundle's plausibility ranges and the confidence.
  auto check = engine::checkPlausibility(spec, labels, stats);
  std::fprintf(stderr, "segnode: %s (labelled %.0f mL, %.0f %% of structures, %.0f %% in one piece, low-margin voxels %.0f %%)%s\n",
               check.summary().c_str(), check.labelledMl, 100 * check.structuresPresent, 100 * check.connectedShare,
               100 * stats.confidence.lowMarginFraction, check.checked ? "" : "; this bundle declares no plausibility ranges");
  if (!check.plausible) {  // a route that rejects would send the rest (the file written keeps every label)
    engine::Volume rest{labels.data.clone(), labels.geometry};
    if (auto kept = engine::omitStructures(spec, rest, stats, check); !kept.omitted.empty())
      std::fprintf(stderr, "segnode: a node route with on_implausible: reject sends it without them: %s\n", kept.summary().c_str());
  }
  // The structures the network was least sure of: where a reader should look first.
  std::vector<std::pair<double, std::string>> perStructure;
  const auto& byClass = stats.confidence.classMeanMaxProbability;
  for (size_t i = 1; i < byClass.size() && i < spec.labels.size(); ++i)
    if (byClass[i] > 0) perStructure.emplace_back(byClass[i], spec.labels[i].name);
  std::sort(perStructure.begin(), perStructure.end());
  std::string least;
  for (size_t i = 0; i < perStructure.size() && i < 3; ++i)
    least += (i ? ", " : "") + perStructure[i].second + " " + std::to_string(perStructure[i].first).substr(0, 4);
  if (!least.empty()) std::fprintf(stderr, "segnode: least confident structures: %s\n", least.c_str());
}

void convertVolume(const std::string& input, const std::string& output) {
  engine::Volume volume = readInputVolume(input);
  engine::writeNifti(output, volume);
  const auto& g = volume.geometry;
  std::fprintf(stderr, "segnode: %s -> %s: %lldx%lldx%lld voxels of %.3gx%.3gx%.3g mm\n", input.c_str(), output.c_str(),
               (long long)g.size[0], (long long)g.size[1], (long long)g.size[2], g.spacing[0], g.spacing[1], g.spacing[2]);
}

}  // namespace

void addSegment(CLI::App& app, const char* argv0) {
  auto a = std::make_shared<SegmentArgs>();
  auto* sub = app.add_subcommand("segment", "segment one volume (NIfTI, or a folder holding one DICOM series) with an installed model");
  sub->add_option("--model", a->model, "NAME[@VERSION] of an installed bundle (default version: the newest)")->required();
  addRunOptions(*sub, *a);
  sub->add_option("--output", a->output, "the label NIfTI to write (.nii or .nii.gz)")->required();
  sub->add_flag("--mirror", a->mirror, "average over mirrored copies (test-time augmentation)");
  sub->add_option("--backend", a->backend, "inference backend")->check(CLI::IsMember({"onednn", "script", "eager"}));
  sub->add_option("--precision", a->precision, "compute precision (default: the bundle's)")->check(CLI::IsMember({"fp32", "bf16", "int8"}));
  sub->callback([a, argv0] { segmentVolume(*a, argv0); });

  auto files = std::make_shared<std::pair<std::string, std::string>>();
  auto* convert = app.add_subcommand("convert", "a DICOM series folder -> the NIfTI volume the node segments");
  convert->add_option("--input", files->first, "the DICOM series folder (or a NIfTI)")->required();
  convert->add_option("--output", files->second, "the NIfTI to write (.nii or .nii.gz)")->required();
  convert->callback([files] { convertVolume(files->first, files->second); });
}

}  // namespace segnode::cli
