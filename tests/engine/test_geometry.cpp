// LibTorch pulls in glog, whose CHECK macro must not shadow Catch's: torch first.
#include <torch/torch.h>

#include <catch2/catch.hpp>


#include "engine/Geometry.h"
#include "engine/Volume.h"

using namespace segnode::engine;

namespace {
Geometry obliqueFlipped() {
  // Sagittal-like acquisition: i runs A->P, j runs S->I, k runs R->L, slightly rotated.
  Geometry g;
  g.size = {5, 6, 7};
  g.spacing = {0.9, 1.1, 1.3};
  g.origin = {10, -20, 30};
  double c = std::cos(0.1), s = std::sin(0.1);
  // columns: i = +P, j = (s, 0, -c) (mostly inferior), k = (-c, 0, -s) (mostly right)
  g.direction = {{{0, s, -c}, {1, 0, 0}, {0, -c, -s}}};
  return g;
}
}  // namespace

TEST_CASE("index <-> world is one consistent mapping", "[geometry]") {
  Geometry g = obliqueFlipped();
  Vec3 ijk{1.5, 2, 3.25};
  Vec3 back = g.worldToIndex(g.indexToWorld(ijk));
  for (int a = 0; a < 3; ++a) CHECK(back[a] == Approx(ijk[a]).margin(1e-12));
  Affine aff = g.affine();
  Geometry h = Geometry::fromAffine(aff, g.size);
  for (int r = 0; r < 3; ++r) {
    CHECK(h.origin[r] == Approx(g.origin[r]));
    CHECK(h.spacing[r] == Approx(g.spacing[r]));
    for (int c = 0; c < 3; ++c) CHECK(h.direction[r][c] == Approx(g.direction[r][c]).margin(1e-12));
  }
}

TEST_CASE("canonical reorientation keeps every voxel at its world position", "[geometry]") {
  Geometry g = obliqueFlipped();
  Reorientation ro = canonicalReorientation(g);
  Geometry c = ro.apply(g);
  for (int a = 0; a < 3; ++a) CHECK(c.direction[a][a] > 0.9);  // axis a now runs along +world a

  torch::Tensor t = torch::arange(g.voxelCount(), torch::kInt).view({g.size[2], g.size[1], g.size[0]});
  torch::Tensor r = reorient(t, ro);
  REQUIRE(r.size(0) == c.size[2]);
  REQUIRE(r.size(2) == c.size[0]);
  // Voxel value v sits at the same world point in both grids.
  for (int64_t k = 0; k < c.size[2]; k += 2)
    for (int64_t j = 0; j < c.size[1]; j += 3)
      for (int64_t i = 0; i < c.size[0]; ++i) {
        int v = r[k][j][i].item<int>();
        int64_t oi = v % g.size[0], oj = (v / g.size[0]) % g.size[1], ok = v / (g.size[0] * g.size[1]);
        Vec3 w1 = c.indexToWorld({double(i), double(j), double(k)});
        Vec3 w0 = g.indexToWorld({double(oi), double(oj), double(ok)});
        for (int a = 0; a < 3; ++a) REQUIRE(w1[a] == Approx(w0[a]).margin(1e-9));
      }
  CHECK(torch::equal(unreorient(r, ro), t));
  // With a leading channel dimension too.
  torch::Tensor t4 = torch::stack({t, t + 1});
  CHECK(torch::equal(unreorient(reorient(t4, ro), ro), t4));
}
