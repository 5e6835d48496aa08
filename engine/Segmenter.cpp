#include "engine/Segmenter.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <type_traits>

#include <ATen/Parallel.h>

#include <torch/torch.h>

#include "engine/Components.h"
#include "engine/Preprocess.h"

namespace segnode::engine {
namespace {

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Class index -> label value from the bundle's table, one lookup a voxel; uint8 when every value
// fits, else int16.
torch::Tensor labelValues(const torch::Tensor& classIndices, const std::vector<LabelInfo>& labels) {
  const torch::Tensor classes = classIndices.contiguous();
  int maxValue = 0;
  for (const auto& l : labels) maxValue = std::max(maxValue, l.value);
  torch::Tensor out = torch::empty(classes.sizes(), maxValue <= 255 ? torch::kByte : torch::kShort);
  auto map = [&](auto* o) {
    using T = std::remove_pointer_t<decltype(o)>;
    std::array<T, 256> lut{};
    for (size_t i = 0; i < labels.size() && i < lut.size(); ++i) lut[i] = T(labels[i].value);
    const uint8_t* c = classes.data_ptr<uint8_t>();
    at::parallel_for(0, classes.numel(), 1 << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = lut[c[i]];
    });
  };
  if (out.scalar_type() == torch::kByte) map(out.data_ptr<uint8_t>());
  else map(out.data_ptr<int16_t>());
  return out;
}

}  // namespace

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

PlausibilityReport checkPlausibility(const BundleSpec& spec, const Volume& labels, const SegmentStats& stats) {
  return checkPlausibility(spec, labels, stats.confidence, stats.connectedShare, stats.lowestInput);
}

PlausibilityReport omitStructures(const BundleSpec& spec, Volume& labels, const SegmentStats& stats,
                                  const PlausibilityReport& check) {
  const auto structures = omittableStructures(check, spec);
  if (structures.empty()) return check;
  setToBackground(labels, structures, spec.labels);
  BundleSpec rest = spec;  // the rest against every range but those of the structures left out
  auto& ranges = rest.plausibility.structureVolumeMl;
  for (size_t i : structures)
    ranges.erase(std::remove_if(ranges.begin(), ranges.end(), [&](const auto& r) { return r.first == spec.labels[i].name; }),
                 ranges.end());
  PlausibilityReport again = checkPlausibility(rest, labels, stats);
  if (!again.plausible) return check;
  again.omitted = check.reasons;  // only the structures' own, by omittableStructures
  again.omittedStructures = structures;
  return again;
}

Volume segment(const SegmentationModel& model, const Volume& input, const SegmentOptions& options, SegmentStats* stats) {
  c10::InferenceMode inferenceMode;
  const BundleSpec& spec = model.spec();
  SegmentStats local;
  SegmentStats& st = stats ? *stats : local;

  auto t0 = std::chrono::steady_clock::now();
  if (spec.plausibility.lowestInputAtMost) st.lowestInput = input.data.min().item<double>();
  Preprocessed pre = preprocess(input, spec.preprocessing);
  st.preprocessSeconds = secondsSince(t0);
  st.networkSize = pre.record.networkSize;

  t0 = std::chrono::steady_clock::now();
  WindowOptions w = windowOptions(spec, options);
  ConfidenceAccumulator confidence;
  w.confidence = &confidence;
  st.tiles = countTiles(pre.record.networkSize, w);
  NetworkFn net = [&](const torch::Tensor& x) { return model.forward(x); };
  const int64_t numClasses = int64_t(spec.labels.size());
  // Without resampling, labels are final as the window slides and the full-volume logits never
  // exist; with it, logits are needed on the whole network grid to be resampled back.
  torch::Tensor logits, cropClasses;
  if (pre.record.resampled) logits = slidingWindowLogits(net, numClasses, pre.image, w);
  else cropClasses = slidingWindowClasses(net, numClasses, pre.image, w);
  pre.image = torch::Tensor();
  st.confidence = confidence.result();
  st.inferenceSeconds = secondsSince(t0);

  t0 = std::chrono::steady_clock::now();
  torch::Tensor classes = pre.record.resampled ? classesOnInputGrid(logits, pre.record)
                                               : placeOnInputGrid(cropClasses, pre.record);
  logits = torch::Tensor();
  Volume out;
  out.geometry = input.geometry;
  out.data = labelValues(classes, spec.labels);
  if (const auto& keep = spec.postprocessing.largestComponent; options.postprocess && !keep.empty()) {
    const PieceSummary pieces = keepLargestPieces(out, keep);
    st.removedVoxels = pieces.removed;
    st.connectedShare = pieces.connectedShare();
  }
  st.postprocessSeconds = secondsSince(t0);
  return out;
}

}  // namespace segnode::engine
