#pragma once
// Voxel grid geometry in DICOM's patient frame (LPS, millimetres). This is the one place that
// converts between voxel indices and world coordinates; NIfTI (RAS) and DICOM readers convert
// into it at their boundary. No LibTorch here.
//
// Index convention: (i, j, k) with i varying fastest in memory. A volume tensor is stored with
// shape [nk, nj, ni], so tensor dim d corresponds to index axis 2 - d.
#include <array>
#include <cstdint>
#include <string>

namespace segnode::engine {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<std::array<double, 3>, 3>;    // m[row][col]
using Affine = std::array<std::array<double, 4>, 4>;  // homogeneous index -> world
using Size3 = std::array<int64_t, 3>;                 // (ni, nj, nk)

Mat3 identity3();

struct Geometry {
  Size3 size{0, 0, 0};
  Vec3 spacing{1, 1, 1};
  Vec3 origin{0, 0, 0};          // world position of the centre of voxel (0,0,0)
  Mat3 direction = identity3();  // column c: unit world direction of index axis c

  int64_t voxelCount() const { return size[0] * size[1] * size[2]; }
  Vec3 indexToWorld(const Vec3& ijk) const;
  Vec3 worldToIndex(const Vec3& xyz) const;
  Affine affine() const;  // index -> LPS world
  // Splits an affine into spacing (column norms) and unit directions. Throws on a singular one.
  static Geometry fromAffine(const Affine& a, const Size3& size);
  std::string describe() const;  // "181x217x181 @ 1x1x1 mm, RAS-like axes" for messages
};

// NIfTI's world is RAS, DICOM's is LPS: the two differ by the sign of x and y. The same
// operation converts both ways.
Affine flipXY(const Affine& a);

// An axis permutation plus flips that brings a grid to the nearest "canonical" orientation,
// where index axis a runs along +world axis a (L, P, S). Networks see every input the same way
// round whatever the scanner's slice orientation; the inverse restores the input grid exactly.
struct Reorientation {
  std::array<int, 3> sourceAxis{0, 1, 2};  // new index axis a = old index axis sourceAxis[a]
  std::array<bool, 3> flip{false, false, false};
  bool isIdentity() const;
  Geometry apply(const Geometry& g) const;  // geometry of the reoriented grid
};
Reorientation canonicalReorientation(const Geometry& g);

}  // namespace segnode::engine
