#pragma once
// Axis-aligned resampling of the last three dims of a tensor. Output index n along axis a samples
// the input at continuous index n * step[a] (same origin and directions; only spacing changes),
// so forward and inverse resampling use the same world mapping. Separable, so a 3D resample
// costs three 1D passes.
#include <torch/types.h>


#include "engine/BundleSpec.h"
#include "engine/Geometry.h"

namespace segnode::engine {

// nnU-Net's rule: round(size * spacing / target), at least 1.
Size3 resampledSize(const Size3& size, const Vec3& spacing, const Vec3& target);

torch::Tensor resample(const torch::Tensor& x, const Size3& outSize, const Vec3& step, Interpolation interp);

// Per-channel linear resampling of [C, z, y, x] maps (logits or probabilities, C <= 256) followed
// by argmax, without a resampled map: beyond the uint8 result and an argmax of the input grid,
// the cost is proportional to the class-boundary voxels. Equals the per-channel resample() then
// argmax (first largest on ties). Returns uint8 indices.
torch::Tensor resampleArgmax(const torch::Tensor& maps, const Size3& outSize, const Vec3& step);

// Label maps: each label's indicator is resampled linearly and the largest wins, so labels stay
// consistent (no invented values between neighbours). Keeps the input's values and dtype.
torch::Tensor resampleLabels(const torch::Tensor& labels, const Size3& outSize, const Vec3& step);

}  // namespace segnode::engine
