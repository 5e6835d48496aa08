// LibTorch pulls in glog, whose CHECK macro must not shadow Catch's: torch first.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <fstream>


#include "TestSupport.h"
#include "common/Error.h"
#include "engine/Nifti.h"

using namespace segnode::engine;
using segnode::test::TempDir;

namespace {

Volume makeVolume(torch::ScalarType type, bool flipped) {
  Volume v;
  v.geometry.size = {7, 5, 4};
  v.geometry.spacing = {0.5, 1.25, 3.0};
  v.geometry.origin = {-12.5, 40.25, 7.0};
  if (flipped)  // radiological, oblique, negative determinant
    v.geometry.direction = {{{-0.8, 0, 0.6}, {0, 1, 0}, {0.6, 0, 0.8}}};
  else
    v.geometry.direction = {{{0, 1, 0}, {0.6, 0, -0.8}, {0.8, 0, 0.6}}};
  v.data = (torch::arange(140, torch::kDouble).view({4, 5, 7}) * 3.5 - 100).to(type);
  return v;
}

std::array<std::array<float, 4>, 3> floatAffine(const Geometry& g) {
  auto a = g.affine();
  std::array<std::array<float, 4>, 3> f{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) f[r][c] = float(a[r][c]);
  return f;
}

void patchInt16(const std::filesystem::path& p, size_t offset, int16_t value) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(std::streamoff(offset));
  f.write(reinterpret_cast<const char*>(&value), 2);
}

}  // namespace

TEST_CASE("NIfTI round trip keeps affine and voxels exactly", "[nifti]") {
  TempDir dir;
  for (bool flipped : {false, true}) {
    for (auto type : {torch::kByte, torch::kShort, torch::kInt, torch::kFloat, torch::kDouble}) {
      for (const char* name : {"v.nii", "v.nii.gz"}) {
        Volume v = makeVolume(type, flipped);
        writeNifti(dir / name, v);
        Volume r = readNifti(dir / name);
        INFO("flipped=" << flipped << " type=" << c10::toString(type) << " " << name);
        CHECK(r.data.scalar_type() == type);
        CHECK(torch::equal(r.data, v.data));
        CHECK(r.geometry.size == v.geometry.size);
        CHECK(floatAffine(r.geometry) == floatAffine(v.geometry));
        // Writing what was read gives the same affine again, bit for bit.
        writeNifti(dir / "again.nii", r);
        CHECK(floatAffine(readNifti(dir / "again.nii").geometry) == floatAffine(r.geometry));
      }
    }
  }
}

TEST_CASE("NIfTI qform is used when the sform is absent", "[nifti]") {
  TempDir dir;
  for (bool flipped : {false, true}) {
    Volume v = makeVolume(torch::kFloat, flipped);
    writeNifti(dir / "q.nii", v);
    patchInt16(dir / "q.nii", 254, 0);  // sform_code = 0
    Volume r = readNifti(dir / "q.nii");
    auto a = r.geometry.affine(), b = v.geometry.affine();
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) CHECK(a[i][j] == Approx(b[i][j]).margin(1e-5));
  }
}

TEST_CASE("NIfTI reads the real Colin27 header in LPS", "[nifti][data]") {
  auto path = segnode::test::sharedData("brain_mr/colin27_mricron/ch2.nii.gz");
  if (segnode::test::missing(!path.empty(), "../shared/data/brain_mr")) return;
  Volume v = readNifti(path);
  CHECK((v.geometry.size == Size3{181, 217, 181}));
  CHECK(v.data.scalar_type() == torch::kByte);
  // RAS affine diag(1,1,1), origin (-90,-125,-71) -> LPS origin (90, 125, -71), axes R->L flipped.
  CHECK((v.geometry.origin == Vec3{90, 125, -71}));
  CHECK(v.geometry.direction[0][0] == -1);
  CHECK(v.geometry.direction[1][1] == -1);
  CHECK(v.geometry.direction[2][2] == 1);
}

TEST_CASE("unreadable NIfTI files get an error naming the file and the problem", "[nifti]") {
  TempDir dir;
  Volume v = makeVolume(torch::kShort, false);
  writeNifti(dir / "ok.nii", v);
  auto expectError = [&](const std::filesystem::path& p, const std::string& fragment) {
    try {
      readNifti(p);
      FAIL("no error for " << p);
    } catch (const segnode::Error& e) {
      std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find(p.string()) != std::string::npos);
      CHECK(msg.find(fragment) != std::string::npos);
    }
  };
  expectError(dir / "missing.nii", "no such file");

  std::filesystem::copy_file(dir / "ok.nii", dir / "trunc.nii");
  std::filesystem::resize_file(dir / "trunc.nii", 352 + 100);
  expectError(dir / "trunc.nii", "truncated");

  std::filesystem::copy_file(dir / "ok.nii", dir / "magic.nii");
  { std::fstream f(dir / "magic.nii", std::ios::in | std::ios::out | std::ios::binary); f.seekp(344); f.write("xyz", 3); }
  expectError(dir / "magic.nii", "magic");

  std::filesystem::copy_file(dir / "ok.nii", dir / "four.nii");
  patchInt16(dir / "four.nii", 40, 4);
  patchInt16(dir / "four.nii", 48, 3);
  expectError(dir / "four.nii", "only 3D");

  std::filesystem::copy_file(dir / "ok.nii", dir / "type.nii");
  patchInt16(dir / "type.nii", 70, 32);  // complex64
  expectError(dir / "type.nii", "datatype 32");

  { std::ofstream f(dir / "text.nii"); f << "hello"; }
  expectError(dir / "text.nii", "shorter than a NIfTI-1 header");
}
