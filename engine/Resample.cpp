#include "engine/Resample.h"

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

// One axis (tensor dim `dim`) from n_in to n_out samples.
torch::Tensor resampleAxis(const torch::Tensor& x, int64_t dim, int64_t nOut, double step, Interpolation interp) {
  const int64_t nIn = x.size(dim);
  if (nOut == nIn && step == 1.0) return x;
  std::vector<int64_t> bcast(size_t(x.dim()), 1);
  bcast[size_t(dim)] = nOut;
  int taps = interp == Interpolation::Cubic ? 4 : interp == Interpolation::Linear ? 2 : 1;
  std::vector<std::vector<int64_t>> idx(static_cast<size_t>(taps), std::vector<int64_t>(static_cast<size_t>(nOut)));
  std::vector<std::vector<float>> w(static_cast<size_t>(taps), std::vector<float>(static_cast<size_t>(nOut)));
  for (int64_t n = 0; n < nOut; ++n) {
    double p = std::clamp(double(n) * step, 0.0, double(nIn - 1));
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

torch::Tensor resampleArgmax(const torch::Tensor& maps, const Size3& outSize, const Vec3& step) {
  torch::Tensor best, label;
  for (int64_t c = 0; c < maps.size(0); ++c) {
    torch::Tensor r = resample(maps[c], outSize, step, Interpolation::Linear);
    if (c == 0) {
      best = r;
      label = torch::zeros(r.sizes(), torch::kByte);
      continue;
    }
    torch::Tensor better = r > best;
    best = torch::where(better, r, best);
    label.masked_fill_(better, c);
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
