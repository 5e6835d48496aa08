#include "training/Plan.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "common/Error.h"
#include "common/Yaml.h"

namespace segnode::training {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  if (n == 0) return 0;
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double percentile(std::vector<double> v, double p) {  // numpy's default (linear) percentile
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  double pos = p / 100.0 * double(v.size() - 1);
  size_t lo = size_t(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

// nnU-Net's pad_shape: round each axis up to a multiple of its divisor.
Int3 padShape(const Real3& shape, const Int3& by) {
  Int3 out{};
  for (int a = 0; a < 3; ++a) {
    auto s = int64_t(shape[size_t(a)]);
    out[size_t(a)] = s % by[size_t(a)] == 0 ? s : s + by[size_t(a)] - s % by[size_t(a)];
  }
  return out;
}

}  // namespace

Topology poolAndConvProps(const Real3& spacing, const Int3& patchSize, int minEdge) {
  Topology t;
  Real3 curSpacing = spacing;
  Real3 curSize{double(patchSize[0]), double(patchSize[1]), double(patchSize[2])};
  std::array<int, 3> kernel{1, 1, 1};
  t.strides.push_back({1, 1, 1});
  while (true) {
    std::vector<int> valid;
    for (int a = 0; a < 3; ++a)
      if (curSize[size_t(a)] >= 2 * minEdge) valid.push_back(a);
    if (valid.empty()) break;
    double minValid = 1e300;
    for (int a : valid) minValid = std::min(minValid, curSpacing[size_t(a)]);
    // Only axes within a factor 2 of the finest spacing are pooled (anisotropic data).
    std::vector<int> pool;
    for (int a : valid)
      if (curSpacing[size_t(a)] / minValid < 2) pool.push_back(a);
    if (pool.size() == 1 && curSize[size_t(pool[0])] < 3 * minEdge) break;
    if (pool.empty()) break;
    // A kernel becomes 3 once its axis is within factor 2 of the finest spacing, and stays 3.
    double minSpacing = *std::min_element(curSpacing.begin(), curSpacing.end());
    for (int a = 0; a < 3; ++a)
      if (kernel[size_t(a)] != 3 && curSpacing[size_t(a)] / minSpacing < 2) kernel[size_t(a)] = 3;
    std::array<int, 3> stride{1, 1, 1};
    for (int a : pool) {
      stride[size_t(a)] = 2;
      t.poolsPerAxis[size_t(a)] += 1;
      curSpacing[size_t(a)] *= 2;
      curSize[size_t(a)] = std::ceil(curSize[size_t(a)] / 2);
    }
    t.strides.push_back(stride);
    t.kernelSizes.push_back(kernel);
  }
  for (int a = 0; a < 3; ++a) t.divisibleBy[size_t(a)] = int64_t(1) << t.poolsPerAxis[size_t(a)];
  t.patchSize = padShape({double(patchSize[0]), double(patchSize[1]), double(patchSize[2])}, t.divisibleBy);
  t.kernelSizes.push_back({3, 3, 3});  // the bottleneck always gets 3x3x3
  return t;
}

double featureMapVoxels(const Int3& patch, const std::vector<std::array<int, 3>>& strides,
                        const std::vector<int>& features, int /*inChannels*/, int numLabels) {
  const size_t n = strides.size();
  auto prod = [](const Int3& s) { return double(s[0]) * double(s[1]) * double(s[2]); };
  double total = 0;
  Int3 size = patch;
  std::vector<Int3> skip;  // output size of each encoder stage
  for (size_t s = 0; s < n; ++s) {
    for (int a = 0; a < 3; ++a) size[size_t(a)] /= strides[s][size_t(a)];
    total += 2 * double(features[s]) * prod(size);  // two convs, both at the strided size
    skip.push_back(size);
  }
  for (size_t d = 0; d + 1 < n; ++d) {  // decoder, deepest first
    size_t level = n - 2 - d;
    double vox = prod(skip[level]);
    total += 2 * double(features[level]) * vox;  // two convs
    total += double(features[level]) * vox;      // transposed conv
    if (level == 0) total += double(numLabels) * vox;  // segmentation head
  }
  return total;
}

Real3 targetSpacing(const Fingerprint& fp) {
  Real3 target{}, size{};
  for (int a = 0; a < 3; ++a) {
    std::vector<double> sp, sz;
    for (auto& s : fp.spacings) sp.push_back(s[size_t(a)]);
    for (auto& s : fp.shapesAfterCrop) sz.push_back(double(s[size_t(a)]));
    target[size_t(a)] = median(sp);
    size[size_t(a)] = median(sz);
  }
  // Very anisotropic data (one axis > 3x coarser, with < 1/3 of the voxels): take the 10th
  // percentile on that axis, so thin-slice cases are not blurred away.
  int worst = int(std::max_element(target.begin(), target.end()) - target.begin());
  double otherSpacing = 0, otherSize = 1e300;
  for (int a = 0; a < 3; ++a)
    if (a != worst) {
      otherSpacing = std::max(otherSpacing, target[size_t(a)]);
      otherSize = std::min(otherSize, size[size_t(a)]);
    }
  const double aniso = 3;
  if (target[size_t(worst)] > aniso * otherSpacing && size[size_t(worst)] * aniso < otherSize) {
    std::vector<double> sp;
    for (auto& s : fp.spacings) sp.push_back(s[size_t(worst)]);
    double t = percentile(sp, 10);
    if (t < otherSpacing) t = std::max(otherSpacing, t) + 1e-5;
    target[size_t(worst)] = t;
  }
  return target;
}

engine::ArchitectureSpec Plan::architecture(int numClasses, int inChannels) const {
  engine::ArchitectureSpec a;
  a.inChannels = inChannels;
  a.numClasses = numClasses;
  a.features = features;
  a.kernelSizes = kernelSizes;
  a.strides = strides;
  a.convsPerStage.assign(features.size(), 2);
  a.convsPerStageDecoder.assign(features.size() - 1, 2);
  a.deepSupervision = true;
  a.convBias = false;
  return a;
}

Plan makePlan(const Fingerprint& fp, const PlanOptions& o) {
  if (fp.spacings.empty() || fp.spacings.size() != fp.shapesAfterCrop.size())
    throw Error(ErrorCode::BadInput, "plan: the fingerprint needs one spacing and one shape per case");
  Plan p;
  p.spacing = o.targetSpacing ? *o.targetSpacing : targetSpacing(fp);
  // Median shape after resampling to the target spacing (nnU-Net's compute_new_shape).
  Real3 median3{};
  for (int a = 0; a < 3; ++a) {
    std::vector<double> v;
    for (size_t c = 0; c < fp.spacings.size(); ++c)
      v.push_back(std::round(fp.spacings[c][size_t(a)] / p.spacing[size_t(a)] * double(fp.shapesAfterCrop[c][size_t(a)])));
    median3[size_t(a)] = median(v);
    p.medianShape[size_t(a)] = int64_t(std::round(median3[size_t(a)]));
  }
  double datasetVoxels = median3[0] * median3[1] * median3[2] * double(fp.spacings.size());

  // Initial patch: the aspect ratio of the spacing at the volume of 256^3, clipped to the median.
  Real3 inv{1 / p.spacing[0], 1 / p.spacing[1], 1 / p.spacing[2]};
  double scale = std::cbrt(256.0 * 256.0 * 256.0 / (inv[0] * inv[1] * inv[2]));
  Int3 patch{};
  for (int a = 0; a < 3; ++a)
    patch[size_t(a)] = int64_t(std::min(std::nearbyint(inv[size_t(a)] * scale), median3[size_t(a)]));

  auto featuresFor = [&](size_t stages) {
    std::vector<int> f;
    for (size_t i = 0; i < stages; ++i) f.push_back(int(std::min<int64_t>(o.maxFeatures, int64_t(o.baseFeatures) << i)));
    return f;
  };
  Topology topo = poolAndConvProps(p.spacing, patch, o.minFeatureMapEdge);
  auto estimate = [&](const Topology& t) {
    return featureMapVoxels(t.patchSize, t.strides, featuresFor(t.strides.size()), fp.inputChannels, fp.numLabels);
  };
  double est = estimate(topo);
  const double reference = 560000000.0 * (o.gpuMemoryTargetGb / 8.0);
  while (est > reference) {
    // Shrink the axis that is largest relative to the median shape (last one on ties).
    int axis = 0;
    double best = -1;
    for (int a = 0; a < 3; ++a) {
      double r = double(topo.patchSize[size_t(a)]) / median3[size_t(a)];
      if (r >= best) best = r, axis = a;
    }
    Int3 tmp = topo.patchSize;
    tmp[size_t(axis)] -= topo.divisibleBy[size_t(axis)];
    Int3 by = poolAndConvProps(p.spacing, tmp, o.minFeatureMapEdge).divisibleBy;
    Int3 next = topo.patchSize;
    next[size_t(axis)] -= by[size_t(axis)];
    topo = poolAndConvProps(p.spacing, next, o.minFeatureMapEdge);
    est = estimate(topo);
  }
  p.patchSize = topo.patchSize;
  p.strides = topo.strides;
  p.kernelSizes = topo.kernelSizes;
  p.features = featuresFor(topo.strides.size());
  p.vramEstimate = est;
  p.vramReference = reference;
  double patchVoxels = double(p.patchSize[0]) * double(p.patchSize[1]) * double(p.patchSize[2]);
  int bs = int(std::nearbyint(reference / est * 2));
  int bs5 = int(std::nearbyint(datasetVoxels * 0.05 / patchVoxels));  // at most 5 % of the data per batch
  p.batchSize = std::max(std::min(bs, bs5), 2);
  if (fp.ctStd != 1 || fp.ctMean != 0) {
    p.hasCt = true;
    p.ctClipLow = fp.ctPercentile005, p.ctClipHigh = fp.ctPercentile995, p.ctMean = fp.ctMean, p.ctStd = fp.ctStd;
  }
  return p;
}

namespace {
template <class T>
YAML::Node flow(const T& v) {
  YAML::Node n;
  for (auto x : v) n.push_back(x);
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}
template <class T>
YAML::Node flowList(const std::vector<T>& v) {
  YAML::Node n;
  for (auto& x : v) n.push_back(flow(x));
  return n;
}
}  // namespace

std::string planToYaml(const Plan& p, const Fingerprint& fp) {
  YAML::Node n;
  n["target_spacing"] = flow(p.spacing);
  n["median_shape"] = flow(p.medianShape);
  n["patch_size"] = flow(p.patchSize);
  n["batch_size"] = p.batchSize;
  n["n_stages"] = p.stages();
  n["features_per_stage"] = flow(p.features);
  n["strides"] = flowList(p.strides);
  n["kernel_sizes"] = flowList(p.kernelSizes);
  n["feature_map_estimate"] = p.vramEstimate;
  n["feature_map_reference"] = p.vramReference;
  n["cases"] = int(fp.spacings.size());
  n["num_labels"] = fp.numLabels;
  if (p.hasCt) {
    n["ct"]["clip"] = flow(std::array<double, 2>{p.ctClipLow, p.ctClipHigh});
    n["ct"]["mean"] = p.ctMean;
    n["ct"]["std"] = p.ctStd;
  }
  YAML::Emitter e;
  e << n;
  return std::string("# segnode-distill plan (nnU-Net v2 3d_fullres rules); axes (x, y, z)\n") + e.c_str() + "\n";
}

Plan planFromYaml(const std::string& path) {
  yaml::Reader r(path, ErrorCode::BadInput);
  Plan p;
  p.spacing = r.triple<double>("target_spacing", "spacings in mm");
  p.medianShape = r.triple<int64_t>("median_shape", "voxels");
  p.patchSize = r.triple<int64_t>("patch_size", "voxels");
  p.batchSize = r.get<int>("batch_size", "an integer");
  p.features = r.list<int>("features_per_stage", "an integer");
  p.strides = r.triples<int>("strides", "integers");
  p.kernelSizes = r.triples<int>("kernel_sizes", "integers");
  if (r.has("ct")) {
    p.hasCt = true;
    auto clip = r.list<double>("ct.clip", "HU");
    if (clip.size() != 2) r.fail("ct.clip", "must be [low, high]");
    p.ctClipLow = clip[0], p.ctClipHigh = clip[1];
    p.ctMean = r.get<double>("ct.mean", "a number"), p.ctStd = r.get<double>("ct.std", "a number");
  }
  r.finish();
  if (p.features.size() != p.strides.size() || p.features.size() != p.kernelSizes.size() || p.features.empty())
    throw Error(ErrorCode::BadInput, path + ": features_per_stage, strides and kernel_sizes must have one entry per stage");
  return p;
}

}  // namespace segnode::training
