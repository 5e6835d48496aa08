#pragma once
// Overlap and surface-distance metrics on CPU masks: Dice and the 95th-percentile symmetric
// Hausdorff distance (HD95, in mm, as MONAI/nnU-Net report it: the larger of the two directed 95th
// percentiles of surface-to-surface distances).
#include <torch/types.h>

#include "engine/Geometry.h"

namespace segnode::training {

// Masks are bool [z, y, x]. Dice of two empty masks is 1 (nothing to find, nothing found).
double dice(const torch::Tensor& a, const torch::Tensor& b);
// NaN when either mask is empty. `spacing` is (x, y, z) mm.
double hd95(const torch::Tensor& a, const torch::Tensor& b, const engine::Vec3& spacing);
// Exact Euclidean distance (mm) from every voxel to the nearest `true` voxel of `sites`
// (Felzenszwalb-Huttenlocher, separable); +inf everywhere when there is none.
torch::Tensor distanceTransform(const torch::Tensor& sites, const engine::Vec3& spacing);

}  // namespace segnode::training
