#pragma once
// A 3D image or label map: voxels plus the grid they sit on.
#include <torch/types.h>

#include "engine/Geometry.h"

namespace segnode::engine {

struct Volume {
  torch::Tensor data;  // shape [nk, nj, ni] (see Geometry.h), any dtype, CPU, contiguous
  Geometry geometry;

  // Throws Error(Internal) if data's shape does not match geometry.size.
  void checkConsistent() const;
};

// Reorders the last three dims of `t` (laid out for geometry `g`) as `ro` says, and back.
torch::Tensor reorient(const torch::Tensor& t, const Reorientation& ro);
torch::Tensor unreorient(const torch::Tensor& t, const Reorientation& ro);

}  // namespace segnode::engine
