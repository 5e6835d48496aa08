#include "engine/Preprocess.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "engine/Resample.h"

namespace segnode::engine {
namespace {

// First and one-past-last true index of a 1D bool tensor.
std::pair<int64_t, int64_t> extent(const torch::Tensor& any) {
  auto idx = torch::nonzero(any).flatten();
  if (idx.numel() == 0) return {0, any.size(0)};
  return {idx.min().item<int64_t>(), idx.max().item<int64_t>() + 1};
}

// The box that crops nothing: a [z, y, x] tensor's whole grid.
CropBox wholeGrid(const torch::Tensor& image) { return {{0, 0, 0}, {image.size(2), image.size(1), image.size(0)}}; }

bool sameSpacing(const Vec3& a, const Vec3& b) {
  for (int i = 0; i < 3; ++i)
    if (std::fabs(a[size_t(i)] - b[size_t(i)]) > 1e-3 * b[size_t(i)]) return false;
  return true;
}

}  // namespace

CropBox nonzeroBox(const torch::Tensor& image) {
  torch::Tensor nz = image.ne(0);
  if (!nz.any().item<bool>()) return wholeGrid(image);
  CropBox box;
  auto [z0, z1] = extent(nz.any(2).any(1));
  auto [y0, y1] = extent(nz.any(2).any(0));
  auto [x0, x1] = extent(nz.any(1).any(0));
  box.begin = {x0, y0, z0};
  box.end = {x1, y1, z1};
  return box;
}

CropBox foregroundBox(const torch::Tensor& image, double fraction, const Size3& margin) {
  // The percentile of a strided sample: exact enough for a threshold, and cheap on 10^7 voxels.
  torch::Tensor sample = image.flatten().slice(0, 0, image.numel(), std::max<int64_t>(1, image.numel() / 1000000));
  const int64_t k = std::max<int64_t>(1, int64_t(0.99 * double(sample.numel())));
  const double high = std::get<0>(sample.to(torch::kFloat).kthvalue(k)).item<double>();
  if (!(high > 0)) return wholeGrid(image);
  return foregroundBoxAbove(image, fraction * high, margin);
}

CropBox foregroundBoxAbove(const torch::Tensor& image, double threshold, const Size3& margin) {
  const CropBox whole = wholeGrid(image);
  const Size3 size = whole.end;
  torch::Tensor bright = image.gt(threshold).to(torch::kFloat);
  CropBox box;
  for (int a = 0; a < 3; ++a) {  // a: x, y, z = tensor dims 2, 1, 0
    const int64_t dim = 2 - a;
    std::vector<int64_t> others;
    for (int64_t d = 0; d < 3; ++d)
      if (d != dim) others.push_back(d);
    torch::Tensor subject = bright.mean(others).gt(0.01);  // slices more than 1 % bright
    if (!subject.any().item<bool>()) return whole;
    auto [lo, hi] = extent(subject);
    box.begin[size_t(a)] = std::max<int64_t>(0, lo - margin[size_t(a)]);
    box.end[size_t(a)] = std::min<int64_t>(size[size_t(a)], hi + margin[size_t(a)]);
  }
  return box;
}

void normalize(torch::Tensor& image, const PreprocessingSpec& spec) {
  if (spec.normalization == Normalization::CT) {
    image.clamp_(spec.clipLow, spec.clipHigh).sub_(spec.mean).div_(std::max(spec.std, 1e-8));
    return;
  }
  // Accumulate in double: float32 sums over millions of voxels lose digits.
  double mean = image.mean(torch::kDouble).item<double>();
  double std = image.to(torch::kDouble).std(/*unbiased=*/false).item<double>();
  image.sub_(mean).div_(std::max(std, 1e-8));
}

Preprocessed preprocess(const Volume& input, const PreprocessingSpec& spec) {
  input.checkConsistent();
  PreprocessRecord rec;
  rec.input = input.geometry;
  rec.reorientation = canonicalReorientation(input.geometry);
  Geometry canonical = rec.reorientation.apply(input.geometry);
  rec.canonicalSize = canonical.size;
  torch::Tensor image = reorient(input.data.to(torch::kFloat), rec.reorientation);

  rec.crop = spec.cropNonzero ? nonzeroBox(image) : wholeGrid(image);
  if (spec.cropsForeground()) {  // within the non-zero box: both are boxes of the same grid
    Size3 margin;
    for (int a = 0; a < 3; ++a)
      margin[size_t(a)] = int64_t(std::ceil(spec.cropForegroundMarginMm / canonical.spacing[size_t(a)]));
    const CropBox fg = spec.cropForegroundAbove ? foregroundBoxAbove(image, *spec.cropForegroundAbove, margin)
                                                : foregroundBox(image, spec.cropForeground, margin);
    for (int a = 0; a < 3; ++a) {
      rec.crop.begin[size_t(a)] = std::max(rec.crop.begin[size_t(a)], fg.begin[size_t(a)]);
      rec.crop.end[size_t(a)] = std::min(rec.crop.end[size_t(a)], fg.end[size_t(a)]);
    }
  }
  const auto& c = rec.crop;
  image = image.slice(0, c.begin[2], c.end[2]).slice(1, c.begin[1], c.end[1]).slice(2, c.begin[0], c.end[0]);

  const Size3 cropSize = c.size();
  rec.resampled = !sameSpacing(canonical.spacing, spec.targetSpacing);
  rec.networkSize = cropSize;
  if (rec.resampled) {
    rec.networkSize = resampledSize(cropSize, canonical.spacing, spec.targetSpacing);
    for (int a = 0; a < 3; ++a) rec.step[size_t(a)] = spec.targetSpacing[size_t(a)] / canonical.spacing[size_t(a)];
    image = resample(image, rec.networkSize, rec.step, spec.imageInterpolation);
  }
  image = image.contiguous();
  // Never normalise the caller's voxels in place (a view survives when no step copied them).
  if (image.storage().is_alias_of(input.data.storage())) image = image.clone();
  normalize(image, spec);
  return {image, rec};
}

torch::Tensor classesOnInputGrid(const torch::Tensor& logits, const PreprocessRecord& rec) {
  if (!rec.resampled) return placeOnInputGrid(logits.argmax(0).to(torch::kByte), rec);
  Vec3 back;
  for (int a = 0; a < 3; ++a) back[size_t(a)] = 1.0 / rec.step[size_t(a)];
  return placeOnInputGrid(resampleArgmax(logits, rec.crop.size(), back), rec);
}

torch::Tensor placeOnInputGrid(const torch::Tensor& cropClasses, const PreprocessRecord& rec) {
  const auto& s = rec.canonicalSize;
  torch::Tensor canonical = torch::zeros({s[2], s[1], s[0]}, torch::kByte);
  const auto& c = rec.crop;
  canonical.slice(0, c.begin[2], c.end[2]).slice(1, c.begin[1], c.end[1]).slice(2, c.begin[0], c.end[0]).copy_(cropClasses);
  return unreorient(canonical, rec.reorientation);
}

}  // namespace segnode::engine
