#include "engine/Resample.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

namespace segnode::engine {
namespace {

// Keys' cubic convolution kernel (a = -0.5), interpolating.
double keys(double x) {
  x = std::fabs(x);
  const double a = -0.5;
  if (x <= 1) return (a + 2) * x * x * x - (a + 3) * x * x + 1;
  if (x < 2) return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
  return 0;
}

// The part of an axis a tensor holds: its first index on the whole axis, and the whole length.
struct Extent {
  int64_t first = 0, whole = -1;  // whole < 0: the tensor holds the whole axis
};

// One axis (tensor dim `dim`) from n_in to n_out samples. `outPart` and `inPart` place the output and the
// input within their whole axes (a slab of each): output n samples the whole input at
// (outPart.first + n) * step, computed exactly as for the whole axis, so slabs agree with the whole.
torch::Tensor resampleAxis(const torch::Tensor& x, int64_t dim, int64_t nOut, double step, Interpolation interp,
                           Extent outPart = {}, Extent inPart = {}) {
  const int64_t nIn = x.size(dim);
  const int64_t nWhole = inPart.whole < 0 ? nIn : inPart.whole;
  if (nOut == nIn && step == 1.0 && outPart.first == inPart.first) return x;
  std::vector<int64_t> bcast(size_t(x.dim()), 1);
  bcast[size_t(dim)] = nOut;
  int taps = interp == Interpolation::Cubic ? 4 : interp == Interpolation::Linear ? 2 : 1;
  std::vector<std::vector<int64_t>> idx(static_cast<size_t>(taps), std::vector<int64_t>(static_cast<size_t>(nOut)));
  std::vector<std::vector<float>> w(static_cast<size_t>(taps), std::vector<float>(static_cast<size_t>(nOut)));
  for (int64_t n = 0; n < nOut; ++n) {
    // Subtracting the integer inPart.first from p <= nWhole is exact: the fraction, hence the
    // weights, are those of the whole axis.
    double p = std::clamp(double(n + outPart.first) * step, 0.0, double(nWhole - 1)) - double(inPart.first);
    if (interp == Interpolation::Nearest) {
      idx[0][size_t(n)] = std::clamp<int64_t>(std::llround(p), 0, nIn - 1);
      w[0][size_t(n)] = 1;
      continue;
    }
    int64_t i0 = int64_t(std::floor(p));
    double t = p - double(i0);
    for (int k = 0; k < taps; ++k) {
      int64_t off = interp == Interpolation::Cubic ? k - 1 : k;
      idx[size_t(k)][size_t(n)] = std::clamp<int64_t>(i0 + off, 0, nIn - 1);
      w[size_t(k)][size_t(n)] = float(interp == Interpolation::Cubic ? keys(t - double(off)) : (k == 0 ? 1 - t : t));
    }
  }
  torch::Tensor out;
  for (int k = 0; k < taps; ++k) {
    auto index = torch::tensor(idx[size_t(k)], torch::kLong);
    auto weight = torch::tensor(w[size_t(k)], torch::kFloat).view(bcast);
    torch::Tensor term = x.index_select(dim, index).mul_(weight);
    out = k == 0 ? term : out.add_(term);
  }
  return out;
}

}  // namespace

Size3 resampledSize(const Size3& size, const Vec3& spacing, const Vec3& target) {
  Size3 out;
  for (int a = 0; a < 3; ++a)
    out[size_t(a)] = std::max<int64_t>(1, std::llround(double(size[size_t(a)]) * spacing[size_t(a)] / target[size_t(a)]));
  return out;
}

torch::Tensor resample(const torch::Tensor& input, const Size3& outSize, const Vec3& step, Interpolation interp) {
  torch::Tensor x = input.is_floating_point() ? input : input.to(torch::kFloat);
  for (int a = 0; a < 3; ++a) x = resampleAxis(x, x.dim() - 1 - a, outSize[size_t(a)], step[size_t(a)], interp);
  return x;
}

torch::Tensor resampleArgmax(const torch::Tensor& maps, const Size3& outSize, const Vec3& step, int64_t slabVoxels) {
  const int64_t nz = outSize[2], plane = outSize[0] * outSize[1], nzIn = maps.size(1);
  const int64_t slab = slabSlices(plane, slabVoxels);
  torch::Tensor label = torch::empty({nz, outSize[1], outSize[0]}, torch::kByte);
  for (int64_t z0 = 0; z0 < nz; z0 += slab) {
    const int64_t z1 = std::min(nz, z0 + slab);
    // The input slices the linear taps of output slices z0..z1-1 read (one more on each side).
    const int64_t lo = std::clamp<int64_t>(int64_t(std::floor(double(z0) * step[2])) - 1, 0, nzIn - 1);
    const int64_t hi = std::clamp<int64_t>(int64_t(std::floor(double(z1 - 1) * step[2])) + 2, 0, nzIn - 1);
    torch::Tensor best, part;
    for (int64_t c = 0; c < maps.size(0); ++c) {
      torch::Tensor r = maps[c].slice(0, lo, hi + 1);
      r = resampleAxis(r, 2, outSize[0], step[0], Interpolation::Linear);
      r = resampleAxis(r, 1, outSize[1], step[1], Interpolation::Linear);
      r = resampleAxis(r, 0, z1 - z0, step[2], Interpolation::Linear, {z0, nz}, {lo, nzIn});
      if (c == 0) {
        best = r;
        part = torch::zeros(r.sizes(), torch::kByte);
        continue;
      }
      torch::Tensor better = r > best;
      best = torch::where(better, r, best);
      part.masked_fill_(better, c);
    }
    label.slice(0, z0, z1).copy_(part);
  }
  return label;
}

torch::Tensor resampleLabels(const torch::Tensor& labels, const Size3& outSize, const Vec3& step) {
  torch::Tensor values = std::get<0>(at::_unique(labels.flatten(), /*sorted=*/true));
  torch::Tensor best, out;
  for (int64_t i = 0; i < values.size(0); ++i) {
    auto v = values[i];
    torch::Tensor r = resample(labels.eq(v).to(torch::kFloat), outSize, step, Interpolation::Linear);
    if (i == 0) {
      best = r;
      out = torch::full(r.sizes(), v.item(), labels.options());
      continue;
    }
    torch::Tensor better = r > best;
    best = torch::where(better, r, best);
    out.masked_fill_(better, v.item());
  }
  return out;
}

}  // namespace segnode::engine
