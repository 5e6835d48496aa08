#include "engine/Segmenter.h"

#include <chrono>

#include <torch/torch.h>

#include "engine/Preprocess.h"
#include "engine/Resample.h"

namespace segnode::engine {
namespace {

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

WindowOptions windowOptions(const BundleSpec& spec, const SegmentOptions& o) {
  WindowOptions w;
  w.tile = spec.inference.patchSize;
  w.step = o.tileStep.value_or(spec.inference.tileStep);
  w.gaussian = spec.inference.gaussian;
  bool mirror = o.mirror.value_or(!spec.inference.mirrorAxes.empty());
  if (mirror) w.mirrorAxes = spec.inference.mirrorAxes.empty() ? std::vector<int>{0, 1, 2} : spec.inference.mirrorAxes;
  w.batchSize = spec.inference.batchSize;
  w.progress = o.progress;
  return w;
}

}  // namespace

Volume segment(const SegmentationModel& model, const Volume& input, const SegmentOptions& options, SegmentStats* stats) {
  c10::InferenceMode inferenceMode;
  const BundleSpec& spec = model.spec();
  SegmentStats local;
  SegmentStats& st = stats ? *stats : local;

  auto t0 = std::chrono::steady_clock::now();
  Preprocessed pre = preprocess(input, spec.preprocessing);
  st.preprocessSeconds = secondsSince(t0);
  st.networkSize = pre.record.networkSize;

  t0 = std::chrono::steady_clock::now();
  WindowOptions w = windowOptions(spec, options);
  st.tiles = countTiles(pre.record.networkSize, w);
  NetworkFn net = [&](const torch::Tensor& x) { return model.forward(x); };
  const int64_t numClasses = int64_t(spec.labels.size());
  // Without resampling, labels are final as the window slides and the full-volume logits never
  // exist; with it, logits are needed on the whole network grid to be resampled back.
  torch::Tensor logits, cropClasses;
  if (pre.record.resampled) logits = slidingWindowLogits(net, numClasses, pre.image, w);
  else cropClasses = slidingWindowClasses(net, numClasses, pre.image, w);
  pre.image = torch::Tensor();
  st.inferenceSeconds = secondsSince(t0);

  t0 = std::chrono::steady_clock::now();
  torch::Tensor classes = pre.record.resampled ? classesOnInputGrid(logits, pre.record)
                                               : placeOnInputGrid(cropClasses, pre.record);
  logits = torch::Tensor();
  int maxValue = 0;
  std::vector<int64_t> table;
  for (const auto& l : spec.labels) {
    table.push_back(l.value);
    maxValue = std::max(maxValue, l.value);
  }
  auto lut = torch::tensor(table, torch::kLong).to(maxValue <= 255 ? torch::kByte : torch::kShort);
  Volume out;
  out.geometry = input.geometry;
  // Class index -> label value a slab at a time: indexing wants int64 indices, 8 bytes a voxel
  // (1.3 GB for a 512 x 512 x 600 CT) if made for the whole volume at once.
  out.data = torch::empty(classes.sizes(), lut.options());
  const int64_t slab = slabSlices(classes.size(1) * classes.size(2));
  for (int64_t z0 = 0; z0 < classes.size(0); z0 += slab) {
    const int64_t z1 = std::min(classes.size(0), z0 + slab);
    out.data.slice(0, z0, z1).copy_(lut.index({classes.slice(0, z0, z1).to(torch::kLong)}));
  }
  st.postprocessSeconds = secondsSince(t0);
  return out;
}

}  // namespace segnode::engine
