#include "engine/SlidingWindow.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace segnode::engine {

std::vector<int64_t> tileStarts(int64_t size, int64_t tile, double step) {
  if (tile < 1 || size < tile || !(step > 0 && step <= 1))
    throw std::invalid_argument("tileStarts: need size >= tile >= 1 and 0 < step <= 1");
  double target = double(tile) * step;
  int64_t steps = int64_t(std::ceil(double(size - tile) / target)) + 1;
  std::vector<int64_t> starts;
  if (steps == 1) return {0};
  double actual = double(size - tile) / double(steps - 1);
  for (int64_t i = 0; i < steps; ++i) starts.push_back(int64_t(std::llround(actual * double(i))));
  return starts;
}

std::vector<std::array<int64_t, 3>> tileOrigins(const Size3& size, const Size3& tile, double step) {
  auto xs = tileStarts(size[0], tile[0], step);
  auto ys = tileStarts(size[1], tile[1], step);
  auto zs = tileStarts(size[2], tile[2], step);
  std::vector<std::array<int64_t, 3>> out;
  for (int64_t z : zs)
    for (int64_t y : ys)
      for (int64_t x : xs) out.push_back({x, y, z});
  return out;
}

std::vector<float> gaussianImportance(const Size3& tile, double sigmaScale) {
  std::array<std::vector<double>, 3> axis;
  for (int a = 0; a < 3; ++a) {
    double centre = double(tile[a] / 2);  // nnU-Net puts the peak at tile // 2
    double sigma = double(tile[a]) * sigmaScale;
    for (int64_t i = 0; i < tile[a]; ++i) {
      double d = double(i) - centre;
      axis[a].push_back(std::exp(-0.5 * d * d / (sigma * sigma)));
    }
  }
  std::vector<float> map(size_t(tile[0] * tile[1] * tile[2]));
  double peak = 0;
  size_t n = 0;
  for (int64_t z = 0; z < tile[2]; ++z)
    for (int64_t y = 0; y < tile[1]; ++y)
      for (int64_t x = 0; x < tile[0]; ++x) {
        double v = axis[2][size_t(z)] * axis[1][size_t(y)] * axis[0][size_t(x)];
        peak = std::max(peak, v);
        map[n++] = float(v);
      }
  float smallest = 1.0f;
  for (float& v : map) {
    v = float(double(v) / peak);
    if (v > 0) smallest = std::min(smallest, v);
  }
  for (float& v : map)
    if (v == 0) v = smallest;
  return map;
}

}  // namespace segnode::engine
