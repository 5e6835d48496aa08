#include "engine/Geometry.h"

#include <cmath>
#include <cstdio>

#include "common/Error.h"

namespace segnode::engine {

Mat3 identity3() { return {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}; }

Vec3 Geometry::indexToWorld(const Vec3& ijk) const {
  Vec3 out = origin;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) out[r] += direction[r][c] * spacing[c] * ijk[c];
  return out;
}

Vec3 Geometry::worldToIndex(const Vec3& xyz) const {
  // direction is orthonormal for every grid we accept, so its inverse is its transpose; for a
  // sheared affine we solve the 3x3 system instead.
  Mat3 m{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) m[r][c] = direction[r][c] * spacing[c];
  double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
               m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
               m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  Mat3 inv{};
  inv[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / det;
  inv[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det;
  inv[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det;
  inv[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / det;
  inv[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det;
  inv[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det;
  inv[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / det;
  inv[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det;
  inv[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det;
  Vec3 d{xyz[0] - origin[0], xyz[1] - origin[1], xyz[2] - origin[2]};
  Vec3 out{0, 0, 0};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) out[r] += inv[r][c] * d[c];
  return out;
}

Affine Geometry::affine() const {
  Affine a{};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) a[r][c] = direction[r][c] * spacing[c];
    a[r][3] = origin[r];
  }
  a[3] = {0, 0, 0, 1};
  return a;
}

Geometry Geometry::fromAffine(const Affine& a, const Size3& size) {
  Geometry g;
  g.size = size;
  for (int c = 0; c < 3; ++c) {
    double norm = std::sqrt(a[0][c] * a[0][c] + a[1][c] * a[1][c] + a[2][c] * a[2][c]);
    if (!(norm > 0) || !std::isfinite(norm))
      throw Error(ErrorCode::BadInput, "affine column " + std::to_string(c) + " is zero or not finite");
    g.spacing[c] = norm;
    for (int r = 0; r < 3; ++r) g.direction[r][c] = a[r][c] / norm;
  }
  for (int r = 0; r < 3; ++r) g.origin[r] = a[r][3];
  return g;
}

std::string Geometry::describe() const {
  static const char pos[3] = {'L', 'P', 'S'}, neg[3] = {'R', 'A', 'I'};
  std::string axes;
  for (int c = 0; c < 3; ++c) {
    int best = 0;
    for (int r = 1; r < 3; ++r)
      if (std::fabs(direction[r][c]) > std::fabs(direction[best][c])) best = r;
    axes.push_back(direction[best][c] >= 0 ? pos[best] : neg[best]);
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%lldx%lldx%lld @ %gx%gx%g mm, %s", (long long)size[0],
                (long long)size[1], (long long)size[2], spacing[0], spacing[1], spacing[2], axes.c_str());
  return buf;
}

Affine flipXY(const Affine& a) {
  Affine out = a;
  for (int c = 0; c < 4; ++c) {
    out[0][c] = -a[0][c];
    out[1][c] = -a[1][c];
  }
  return out;
}

bool Reorientation::isIdentity() const {
  return sourceAxis == std::array<int, 3>{0, 1, 2} && !flip[0] && !flip[1] && !flip[2];
}

Geometry Reorientation::apply(const Geometry& g) const {
  Geometry out;
  Vec3 corner{0, 0, 0};  // old index of the voxel that becomes new (0,0,0)
  for (int a = 0; a < 3; ++a) {
    int s = sourceAxis[a];
    out.size[a] = g.size[s];
    out.spacing[a] = g.spacing[s];
    for (int r = 0; r < 3; ++r) out.direction[r][a] = flip[a] ? -g.direction[r][s] : g.direction[r][s];
    if (flip[a]) corner[s] = double(g.size[s] - 1);
  }
  out.origin = g.indexToWorld(corner);
  return out;
}

Reorientation canonicalReorientation(const Geometry& g) {
  // Greedy assignment of each world axis to the index axis most aligned with it; exact for the
  // axis-aligned and mildly oblique grids scanners produce.
  Reorientation ro;
  std::array<bool, 3> worldUsed{false, false, false}, indexUsed{false, false, false};
  for (int pass = 0; pass < 3; ++pass) {
    int bw = -1, bi = -1;
    double best = -1;
    for (int w = 0; w < 3; ++w) {
      if (worldUsed[w]) continue;
      for (int i = 0; i < 3; ++i) {
        if (indexUsed[i]) continue;
        double v = std::fabs(g.direction[w][i]);
        if (v > best) {
          best = v;
          bw = w;
          bi = i;
        }
      }
    }
    worldUsed[bw] = indexUsed[bi] = true;
    ro.sourceAxis[bw] = bi;
    ro.flip[bw] = g.direction[bw][bi] < 0;
  }
  return ro;
}

}  // namespace segnode::engine
