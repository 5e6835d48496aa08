#include "engine/Resample.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include <ATen/Parallel.h>

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

// The taps of each output index along one axis from nIn to nOut samples: output n samples the
// input at n * step (clamped to the axis), with 1 (nearest), 2 (linear) or 4 (cubic) taps.
// resampleAxis and resampleArgmax both use these, so their products round alike.
struct Taps {
  std::vector<std::vector<int64_t>> index;  // [tap][n]
  std::vector<std::vector<float>> weight;   // [tap][n]
};

Taps axisTaps(int64_t nIn, int64_t nOut, double step, Interpolation interp) {
  const int taps = interp == Interpolation::Cubic ? 4 : interp == Interpolation::Linear ? 2 : 1;
  Taps t{std::vector<std::vector<int64_t>>(size_t(taps), std::vector<int64_t>(size_t(nOut))),
         std::vector<std::vector<float>>(size_t(taps), std::vector<float>(size_t(nOut)))};
  for (int64_t n = 0; n < nOut; ++n) {
    const double p = std::clamp(double(n) * step, 0.0, double(nIn - 1));
    if (interp == Interpolation::Nearest) {
      t.index[0][size_t(n)] = std::clamp<int64_t>(std::llround(p), 0, nIn - 1);
      t.weight[0][size_t(n)] = 1;
      continue;
    }
    const int64_t i0 = int64_t(std::floor(p));
    const double f = p - double(i0);
    for (int k = 0; k < taps; ++k) {
      const int64_t off = interp == Interpolation::Cubic ? k - 1 : k;
      t.index[size_t(k)][size_t(n)] = std::clamp<int64_t>(i0 + off, 0, nIn - 1);
      t.weight[size_t(k)][size_t(n)] = float(interp == Interpolation::Cubic ? keys(f - double(off)) : (k == 0 ? 1 - f : f));
    }
  }
  return t;
}

// One axis (tensor dim `dim`) from n_in to n_out samples.
torch::Tensor resampleAxis(const torch::Tensor& x, int64_t dim, int64_t nOut, double step, Interpolation interp) {
  const int64_t nIn = x.size(dim);
  if (nOut == nIn && step == 1.0) return x;
  std::vector<int64_t> bcast(size_t(x.dim()), 1);
  bcast[size_t(dim)] = nOut;
  const Taps t = axisTaps(nIn, nOut, step, interp);
  torch::Tensor out;
  for (size_t k = 0; k < t.index.size(); ++k) {
    auto index = torch::tensor(t.index[k], torch::kLong);
    auto weight = torch::tensor(t.weight[k], torch::kFloat).view(bcast);
    torch::Tensor term = x.index_select(dim, index).mul_(weight);
    out = k == 0 ? term : out.add_(term);
  }
  return out;
}

// Index of the first largest of the C maps at each voxel, a block of voxels at a time (the
// block's running maximum stays in cache while the classes stream past).
torch::Tensor argmaxClasses(const float* maps, int64_t classes, int64_t voxels) {
  torch::Tensor out = torch::empty({voxels}, torch::kByte);
  uint8_t* o = out.data_ptr<uint8_t>();
  constexpr int64_t kBlock = 4096;
  at::parallel_for(0, (voxels + kBlock - 1) / kBlock, 1, [&](int64_t b0, int64_t b1) {
    std::array<float, kBlock> best;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t v0 = b * kBlock, n = std::min(kBlock, voxels - v0);
      std::copy(maps + v0, maps + v0 + n, best.begin());
      std::fill(o + v0, o + v0 + n, uint8_t(0));
      for (int64_t c = 1; c < classes; ++c) {
        const float* m = maps + c * voxels + v0;
        for (int64_t i = 0; i < n; ++i)
          if (m[i] > best[size_t(i)]) best[size_t(i)] = m[i], o[v0 + i] = uint8_t(c);
      }
    }
  });
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

// Linear interpolation is a convex combination, and rounding keeps its order: where the eight
// input voxels around an output voxel share their argmax class, that class wins the interpolated
// maps too. Only output voxels on a class boundary (a few percent) interpolate every class, in the
// order of resample()'s separable passes (x, then y, then z), so the result equals the per-class
// resampling followed by argmax.
torch::Tensor resampleArgmax(const torch::Tensor& input, const Size3& outSize, const Vec3& step) {
  const torch::Tensor maps = input.to(torch::kFloat).contiguous();
  const int64_t classes = maps.size(0), nz = maps.size(1), ny = maps.size(2), nx = maps.size(3);
  if (classes > 256) throw std::invalid_argument("resampleArgmax: more than 256 classes");
  const int64_t voxels = nz * ny * nx;
  const float* m = maps.data_ptr<float>();
  const torch::Tensor argmax = argmaxClasses(m, classes, voxels);
  const uint8_t* a = argmax.data_ptr<uint8_t>();
  const Taps tx = axisTaps(nx, outSize[0], step[0], Interpolation::Linear),
             ty = axisTaps(ny, outSize[1], step[1], Interpolation::Linear),
             tz = axisTaps(nz, outSize[2], step[2], Interpolation::Linear);
  torch::Tensor label = torch::empty({outSize[2], outSize[1], outSize[0]}, torch::kByte);
  uint8_t* out = label.data_ptr<uint8_t>();
  at::parallel_for(0, outSize[2], 1, [&](int64_t z0, int64_t z1) {
    for (int64_t z = z0; z < z1; ++z) {
      const int64_t za = tz.index[0][size_t(z)] * ny * nx, zb = tz.index[1][size_t(z)] * ny * nx;
      const float wza = tz.weight[0][size_t(z)], wzb = tz.weight[1][size_t(z)];
      for (int64_t y = 0; y < outSize[1]; ++y) {
        const int64_t ya = ty.index[0][size_t(y)] * nx, yb = ty.index[1][size_t(y)] * nx;
        const float wya = ty.weight[0][size_t(y)], wyb = ty.weight[1][size_t(y)];
        const int64_t rows[4] = {za + ya, za + yb, zb + ya, zb + yb};
        uint8_t* o = out + (z * outSize[1] + y) * outSize[0];
        for (int64_t x = 0; x < outSize[0]; ++x) {
          const int64_t xa = tx.index[0][size_t(x)], xb = tx.index[1][size_t(x)];
          const uint8_t first = a[rows[0] + xa];
          bool uniform = true;
          for (int64_t r : rows) uniform = uniform && a[r + xa] == first && a[r + xb] == first;
          if (uniform) {
            o[x] = first;
            continue;
          }
          const float wxa = tx.weight[0][size_t(x)], wxb = tx.weight[1][size_t(x)];
          float best = 0;
          uint8_t bestClass = 0;
          for (int64_t c = 0; c < classes; ++c) {
            const float* mc = m + c * voxels;
            float fx[4];
            for (int r = 0; r < 4; ++r) fx[r] = mc[rows[r] + xa] * wxa + mc[rows[r] + xb] * wxb;
            const float fza = fx[0] * wya + fx[1] * wyb, fzb = fx[2] * wya + fx[3] * wyb;
            const float v = fza * wza + fzb * wzb;
            if (c == 0 || v > best) best = v, bestClass = uint8_t(c);
          }
          o[x] = bestClass;
        }
      }
    }
  });
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
