#include "engine/Volume.h"

#include "common/Error.h"

namespace segnode::engine {

void Volume::checkConsistent() const {
  if (!data.defined() || data.dim() != 3 || data.size(0) != geometry.size[2] ||
      data.size(1) != geometry.size[1] || data.size(2) != geometry.size[0]) {
    throw Error(ErrorCode::Internal, "volume tensor shape does not match its geometry " + geometry.describe());
  }
}

namespace {
// Tensor dim (counting from the end) for index axis a: i is the last dim.
int64_t dimOf(const torch::Tensor& t, int axis) { return t.dim() - 1 - axis; }
}  // namespace

torch::Tensor reorient(const torch::Tensor& t, const Reorientation& ro) {
  if (ro.isIdentity()) return t;
  std::vector<int64_t> perm(size_t(t.dim()));
  for (int64_t d = 0; d < t.dim() - 3; ++d) perm[size_t(d)] = d;
  for (int a = 0; a < 3; ++a) perm[size_t(dimOf(t, a))] = dimOf(t, ro.sourceAxis[size_t(a)]);
  torch::Tensor out = t.permute(perm);
  std::vector<int64_t> flips;
  for (int a = 0; a < 3; ++a)
    if (ro.flip[size_t(a)]) flips.push_back(dimOf(t, a));
  if (!flips.empty()) out = out.flip(flips);
  return out.contiguous();
}

torch::Tensor unreorient(const torch::Tensor& t, const Reorientation& ro) {
  if (ro.isIdentity()) return t;
  torch::Tensor in = t;
  std::vector<int64_t> flips;
  for (int a = 0; a < 3; ++a)
    if (ro.flip[size_t(a)]) flips.push_back(dimOf(t, a));
  if (!flips.empty()) in = in.flip(flips);
  std::vector<int64_t> perm(size_t(t.dim()));
  for (int64_t d = 0; d < t.dim() - 3; ++d) perm[size_t(d)] = d;
  for (int a = 0; a < 3; ++a) perm[size_t(dimOf(t, ro.sourceAxis[size_t(a)]))] = dimOf(t, a);
  return in.permute(perm).contiguous();
}

}  // namespace segnode::engine
