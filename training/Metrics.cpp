#include "training/Metrics.h"

#include "engine/Preprocess.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace segnode::training {

double dice(const torch::Tensor& a, const torch::Tensor& b) {
  double inter = (a & b).sum().item<double>(), sum = a.sum().item<double>() + b.sum().item<double>();
  return sum == 0 ? 1.0 : 2 * inter / sum;
}

namespace {

// 1-D squared distance transform of f (sampled every `w` mm) in place: the lower envelope of
// parabolas (Felzenszwalb & Huttenlocher 2012).
void edt1d(float* f, int64_t n, int64_t stride, double w, std::vector<double>& d, std::vector<int64_t>& v,
           std::vector<double>& z) {
  const double inf = std::numeric_limits<double>::infinity();
  d.resize(size_t(n));
  v.resize(size_t(n));
  z.resize(size_t(n) + 1);
  int64_t k = 0;
  int64_t first = -1;
  for (int64_t q = 0; q < n; ++q)
    if (std::isfinite(f[q * stride])) {
      first = q;
      break;
    }
  if (first < 0) return;  // no sites on this line: stays +inf
  v[0] = first;
  z[0] = -inf;
  z[1] = inf;
  auto fq = [&](int64_t q) { return double(f[q * stride]); };
  for (int64_t q = first + 1; q < n; ++q) {
    if (!std::isfinite(fq(q))) continue;
    double s;
    while (true) {
      int64_t p = v[size_t(k)];
      s = ((fq(q) + w * w * double(q * q)) - (fq(p) + w * w * double(p * p))) / (2 * w * w * double(q - p));
      if (s <= z[size_t(k)] && k > 0) {
        --k;
        continue;
      }
      break;
    }
    ++k;
    v[size_t(k)] = q;
    z[size_t(k)] = s;
    z[size_t(k) + 1] = inf;
  }
  k = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (z[size_t(k) + 1] < double(q)) ++k;
    int64_t p = v[size_t(k)];
    d[size_t(q)] = w * w * double((q - p) * (q - p)) + fq(p);
  }
  for (int64_t q = 0; q < n; ++q) f[q * stride] = float(d[size_t(q)]);
}

}  // namespace

torch::Tensor distanceTransform(const torch::Tensor& sites, const engine::Vec3& spacing) {
  const float inf = std::numeric_limits<float>::infinity();
  auto f = torch::full(sites.sizes(), inf, torch::kFloat).masked_fill(sites.to(torch::kBool), 0).contiguous();
  const int64_t nz = f.size(0), ny = f.size(1), nx = f.size(2);
  float* p = f.data_ptr<float>();
  std::vector<double> d, z;
  std::vector<int64_t> v;
  for (int64_t a = 0; a < nz; ++a)  // along x
    for (int64_t b = 0; b < ny; ++b) edt1d(p + (a * ny + b) * nx, nx, 1, spacing[0], d, v, z);
  for (int64_t a = 0; a < nz; ++a)  // along y
    for (int64_t c = 0; c < nx; ++c) edt1d(p + a * ny * nx + c, ny, nx, spacing[1], d, v, z);
  for (int64_t b = 0; b < ny; ++b)  // along z
    for (int64_t c = 0; c < nx; ++c) edt1d(p + b * nx + c, nz, ny * nx, spacing[2], d, v, z);
  return f.sqrt();
}

namespace {

torch::Tensor surface(const torch::Tensor& m) {  // voxels of m with a 6-neighbour outside m
  auto f = m.to(torch::kFloat).unsqueeze(0).unsqueeze(0);
  auto outside = torch::constant_pad_nd(1 - f, {1, 1, 1, 1, 1, 1}, 1);
  torch::Tensor touch = torch::zeros_like(f, torch::kBool);
  const int64_t Z = f.size(2), Y = f.size(3), X = f.size(4);
  for (auto [dz, dy, dx] : std::vector<std::array<int64_t, 3>>{{0, 1, 1}, {2, 1, 1}, {1, 0, 1}, {1, 2, 1}, {1, 1, 0}, {1, 1, 2}})
    touch |= outside.slice(2, dz, dz + Z).slice(3, dy, dy + Y).slice(4, dx, dx + X) > 0.5;
  return (m & touch[0][0]);
}

double percentile95(torch::Tensor values) {
  if (values.numel() == 0) return std::nan("");
  auto sorted = std::get<0>(values.to(torch::kDouble).sort());
  double pos = 0.95 * double(sorted.numel() - 1);
  int64_t lo = int64_t(std::floor(pos)), hi = std::min<int64_t>(lo + 1, sorted.numel() - 1);
  double a = sorted[lo].item<double>(), b = sorted[hi].item<double>();
  return a + (b - a) * (pos - double(lo));
}

}  // namespace

double hd95(const torch::Tensor& a, const torch::Tensor& b, const engine::Vec3& spacing) {
  if (!a.any().item<bool>() || !b.any().item<bool>()) return std::nan("");
  // Work inside the union's bounding box: every surface voxel lies in it, so distances are exact.
  auto box = engine::nonzeroBox(a | b);
  auto crop = [&](const torch::Tensor& t) {
    return t.slice(0, box.begin[2], box.end[2]).slice(1, box.begin[1], box.end[1]).slice(2, box.begin[0], box.end[0]).contiguous();
  };
  auto sa = surface(crop(a)), sb = surface(crop(b));
  auto da = distanceTransform(sb, spacing).masked_select(sa);  // A's surface to B's
  auto db = distanceTransform(sa, spacing).masked_select(sb);
  return std::max(percentile95(da), percentile95(db));
}

}  // namespace segnode::training
