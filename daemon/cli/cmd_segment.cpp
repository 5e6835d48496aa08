// segnode segment: one NIfTI (or a DICOM series folder) in, one label NIfTI out on the same grid.
// segnode convert: a DICOM series folder -> the NIfTI volume the node would segment.
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "common/Error.h"
#include "daemon/cli/Commands.h"
#include "daemon/cli/ModelRef.h"
#include "common/Terminal.h"
#include "daemon/cli/InputVolume.h"
#include "engine/Nifti.h"
#include "engine/Segmenter.h"

namespace segnode::cli {

engine::ModelStore modelStore(const Args& args, const char* argv0) {
  auto dir = args.value("--models-dir");
  return engine::ModelStore(dir ? std::filesystem::path(*dir) : engine::defaultModelsDir(argv0));
}

engine::Backend backendOption(const std::string& text) {
  if (text == "onednn") return engine::Backend::OneDnn;
  if (text == "script") return engine::Backend::TorchScript;
  if (text == "eager") return engine::Backend::Eager;
  throw Error(ErrorCode::InvalidArgument, "backend must be 'onednn', 'script' or 'eager', got '" + text + "'");
}

int applyThreads(const Args& args) {
  int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  int threads = args.intValue("--threads", cores, 1, 1024);
  at::set_num_threads(threads);
  return threads;
}

engine::Precision precisionOption(const std::optional<std::string>& text, const engine::BundleSpec& spec) {
  if (!text) return spec.inference.precision;
  if (*text == "fp32") return engine::Precision::Float32;
  if (*text == "bf16") return engine::Precision::BFloat16;
  throw Error(ErrorCode::InvalidArgument, "--precision must be fp32 or bf16, got '" + *text + "'");
}

void warnIfUntrained(const engine::BundleSpec& spec) {
  if (spec.untrained())
    std::fprintf(stderr, "segnode: WARNING: %s has RANDOM (untrained) weights; its labels are meaningless\n",
                 spec.reference().c_str());
}

int runSegment(const ArgList& argList, const char* argv0) {
  Args args(argList, {"--mirror"},
            {"--model", "--input", "--output", "--threads", "--step", "--backend", "--precision", "--models-dir"});
  const std::string input = args.required("--input"), output = args.required("--output");
  engine::BundleSpec spec = modelStore(args, argv0).resolve(args.required("--model"));
  warnIfUntrained(spec);
  int threads = applyThreads(args);
  auto t0 = std::chrono::steady_clock::now();
  auto model = engine::SegmentationModel::load(spec, backendOption(args.value("--backend").value_or(engine::toString(engine::defaultBackend()))),
                                               precisionOption(args.value("--precision"), spec));
  engine::Volume image = readInputVolume(input);

  engine::SegmentOptions options;
  if (args.value("--step")) options.tileStep = args.doubleValue("--step", 0.5, 0.05, 1.0);
  if (args.flag("--mirror")) options.mirror = true;
  ProgressLine progress("segment " + spec.reference());
  options.progress = [&](int64_t done, int64_t total) { progress.update(done, total); };
  engine::SegmentStats stats;
  engine::Volume labels = engine::segment(*model, image, options, &stats);
  progress.finish();
  engine::writeNifti(output, labels);
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr,
               "segnode: %s -> %s with %s (%d threads): %.1f s total; preprocess %.2f s, %lld tiles %.1f s, "
               "back to input grid %.2f s\n",
               input.c_str(), output.c_str(), spec.reference().c_str(), threads, total, stats.preprocessSeconds,
               (long long)stats.tiles, stats.inferenceSeconds, stats.postprocessSeconds);
  return 0;
}

int runConvert(const ArgList& argList, const char*) {
  Args args(argList, {}, {"--input", "--output"});
  const std::string input = args.required("--input"), output = args.required("--output");
  engine::Volume volume = readInputVolume(input);
  engine::writeNifti(output, volume);
  const auto& g = volume.geometry;
  std::fprintf(stderr, "segnode: %s -> %s: %lldx%lldx%lld voxels of %.3gx%.3gx%.3g mm\n", input.c_str(), output.c_str(),
               (long long)g.size[0], (long long)g.size[1], (long long)g.size[2], g.spacing[0], g.spacing[1], g.spacing[2]);
  return 0;
}

}  // namespace segnode::cli
