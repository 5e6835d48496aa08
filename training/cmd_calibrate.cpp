// segnode-distill calibrate: int8 activation scales for a bundle (issue 14). Each image is
// preprocessed as the node does and run tile by tile through the sliding window in float32; for
// every convolution that int8 quantises and each of its input channels, the |input| at a high
// percentile (99.99 by default: a few outliers would otherwise coarsen every step), the largest over tiles and images, is
// written to the bundle's inference.int8_calibration (bundle.yaml only: the weights and their
// sha256 are untouched). The images should be ones the Dice guard does not score (synthesised
// from training label maps with their own seed): calibrating on the guard's cases would flatter it.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>

#include "common/Error.h"
#include "engine/Model.h"
#include "engine/Nifti.h"
#include "engine/Predictor.h"
#include "engine/Preprocess.h"
#include "engine/Segmenter.h"
#include "training/Commands.h"

namespace segnode::distill {
namespace {

struct CalibrateArgs {
  std::string bundle;
  std::vector<std::string> images;
  int threads = 0;
  double percentile = 99.99;
};

// Running maxima over every tile of one image (the same tiles the node would run).
void observe(const engine::SegmentationModel& model, const engine::Volume& volume, double percentile,
             std::vector<std::vector<double>>& absmax) {
  const auto& spec = model.spec();
  engine::Preprocessed pre = engine::preprocess(volume, spec.preprocessing);
  const int64_t classes = int64_t(spec.labels.size());
  engine::NetworkFn net = [&](const torch::Tensor& x) {
    const auto tile = model.calibrationAbsmax(x, percentile);
    if (absmax.empty()) absmax = tile;
    for (size_t i = 0; i < tile.size(); ++i)
      for (size_t c = 0; c < tile[i].size(); ++c) absmax[i][c] = std::max(absmax[i][c], tile[i][c]);
    return torch::zeros({x.size(0), classes, x.size(2), x.size(3), x.size(4)});
  };
  engine::slidingWindowLogits(net, classes, pre.image, engine::windowOptions(spec));
}

void calibrate(const CalibrateArgs& a) {
  if (a.threads > 0) at::set_num_threads(a.threads);
  engine::BundleSpec spec = engine::loadBundleSpec(a.bundle);
  auto model = engine::SegmentationModel::load(spec, engine::Backend::OneDnn, engine::Precision::Float32);
  c10::InferenceMode guard;
  std::vector<std::vector<double>> absmax;
  for (const auto& image : a.images) {
    observe(*model, engine::readNifti(image), a.percentile, absmax);
    std::fprintf(stderr, "calibrate: %s\n", image.c_str());
  }
  if (absmax.empty()) throw Error(ErrorCode::InvalidArgument, "--images: nothing was run");
  spec.inference.int8.activationAbsmax = absmax;
  char what[160];
  std::snprintf(what, sizeof what, "%zu images, every tile at the bundle's step; per channel the largest over tiles of the %g-th percentile of |x|",
                a.images.size(), a.percentile);
  spec.inference.int8.images = what;
  engine::saveBundleSpec(spec, spec.directory / "bundle.yaml");
  std::printf("%s: int8 calibration of %zu convolutions written\n", (spec.directory / "bundle.yaml").c_str(), absmax.size());
}

}  // namespace

void addCalibrate(CLI::App& app) {
  auto a = std::make_shared<CalibrateArgs>();
  auto* sub = app.add_subcommand("calibrate", "int8 activation scales for a bundle, written into its bundle.yaml");
  sub->add_option("--bundle", a->bundle, "the bundle's folder")->required();
  sub->add_option("--images", a->images, "NIfTI images IMG,IMG,... (not the Dice guard's cases)")->required()->delimiter(',');
  sub->add_option("--threads", a->threads, "CPU threads (default: all)")->check(CLI::Range(1, 1024));
  sub->add_option("--percentile", a->percentile, "per channel, the |activation| percentile that maps to 127 (100: the largest)")
      ->check(CLI::Range(90.0, 100.0));
  sub->callback([a] { calibrate(*a); });
}

}  // namespace segnode::distill
