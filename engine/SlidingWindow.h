#pragma once
// Sliding-window maths as nnU-Net defines it, as pure functions (no model, no LibTorch).
#include <cstdint>
#include <vector>

#include "engine/Geometry.h"

namespace segnode::engine {

// Start offsets of tiles of length `tile` over `size` voxels, about tile*step apart, the first at
// 0 and the last ending exactly at `size`. Requires size >= tile (the caller pads smaller inputs).
std::vector<int64_t> tileStarts(int64_t size, int64_t tile, double step);

// All tile origins (x, y, z) for a grid; z varies slowest.
std::vector<std::array<int64_t, 3>> tileOrigins(const Size3& size, const Size3& tile, double step);

// Gaussian importance map over a tile, sigma = tile * sigmaScale per axis, scaled to a maximum of
// 1, with zeros raised to the smallest positive value (so every voxel has a weight). Laid out
// [z][y][x], x fastest.
std::vector<float> gaussianImportance(const Size3& tile, double sigmaScale = 1.0 / 8.0);

}  // namespace segnode::engine
