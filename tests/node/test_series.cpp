// Series -> Volume against dcm2niix's reference NIfTI and the refusals of DESIGN §7.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "NodeHarness.h"
#include "common/Error.h"
#include "daemon/dicom/SeriesLoader.h"
#include "engine/Nifti.h"

using namespace segnode;
using segnode::test::dicomData;
using segnode::test::dicomFilesIn;
using segnode::test::TempDir;
namespace fs = std::filesystem;

namespace {

engine::Volume toVolume(const dicom::SeriesImage& s) {
  engine::Volume v;
  v.geometry = s.geometry;
  v.data = torch::from_blob(const_cast<float*>(s.voxels.data()), {s.geometry.size[2], s.geometry.size[1], s.geometry.size[0]},
                            torch::kFloat)
               .clone();
  return v;
}

// Two volumes on the same grid up to axis order and direction: both brought to canonical axes,
// then compared voxel for voxel and in world coordinates.
void requireSameVolume(const engine::Volume& a, const engine::Volume& b) {
  auto ra = engine::canonicalReorientation(a.geometry), rb = engine::canonicalReorientation(b.geometry);
  engine::Geometry ga = ra.apply(a.geometry), gb = rb.apply(b.geometry);
  INFO("ours " << ga.describe() << " vs reference " << gb.describe());
  REQUIRE(ga.size == gb.size);
  for (int r = 0; r < 3; ++r) {
    CHECK(ga.spacing[r] == Approx(gb.spacing[r]).margin(1e-4));
    CHECK(ga.origin[r] == Approx(gb.origin[r]).margin(1e-3));
    for (int c = 0; c < 3; ++c) CHECK(ga.direction[r][c] == Approx(gb.direction[r][c]).margin(1e-4));
  }
  torch::Tensor va = engine::reorient(a.data.to(torch::kFloat), ra), vb = engine::reorient(b.data.to(torch::kFloat), rb);
  INFO("sums " << va.sum().item<double>() << " vs " << vb.sum().item<double>() << ", max |diff| "
                << (va - vb).abs().max().item<double>() << ", flipped-z max |diff| " << (va.flip({0}) - vb).abs().max().item<double>()
                << ", flipped-y " << (va.flip({1}) - vb).abs().max().item<double>() << ", flipped-x " << (va.flip({2}) - vb).abs().max().item<double>());
  CHECK(torch::allclose(va, vb, 1e-4, 1e-3));
}

std::string refusal(const std::vector<fs::path>& files) {
  try {
    dicom::loadSeries(files);
  } catch (const segnode::Error& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("a classic Siemens series equals dcm2niix's volume: grid, affine, intensities", "[series][data]") {
  auto dir = dicomData("siemens_prisma_gre_fieldmap_sag");
  if (segnode::test::missing(!dir.empty(), "../shared/data/dicom")) return;
  auto image = dicom::loadSeries(dicomFilesIn(dir / "dicom"));
  CHECK((image.geometry.size == engine::Size3{42, 64, 5}));  // 42 columns, 64 rows
  CHECK(image.sourceSopInstanceUids.size() == 5);
  auto ref = engine::readNifti(dir / "ref_dcm2niix" / "2_gre_field_mapping_PMUlog.nii");
  requireSameVolume(toVolume(image), ref);
}

TEST_CASE("the Philips MPRAGE becomes one oblique 1 mm volume of 170 sagittal slices", "[series][data]") {
  auto dir = dicomData("philips_ingenia_elitionx_t1_mprage_sag");
  if (segnode::test::missing(!dir.empty(), "../shared/data/dicom")) return;
  auto image = dicom::loadSeries(dicomFilesIn(dir / "dicom"));
  CHECK(image.geometry.size[2] == 170);
  CHECK(image.geometry.spacing[2] == Approx(1.0).margin(0.01));
  // Sagittal: slices stack along left-right.
  CHECK(std::fabs(image.geometry.direction[0][2]) > 0.95);
  CHECK(image.frameOfReferenceUid.size() > 0);
}

TEST_CASE("a multi-frame (legacy converted enhanced) CT equals its single-frame source", "[series][data]") {
  auto dir = segnode::test::sharedData("seg_examples/dcmqi/segmentations/23x38x3");
  if (segnode::test::missing(!dir.empty(), "../shared/data/dicom")) return;
  auto single = dicom::loadSeries(dicomFilesIn(dir / "image"));
  auto multi = dicom::loadSeries(dicomFilesIn(dir / "multiframe"));
  CHECK(multi.sourceFrameNumbers == std::vector<int>{1, 2, 3});
  requireSameVolume(toVolume(multi), toVolume(single));
}

TEST_CASE("mosaics, 4D series, gaps, mixed sizes and tilted stacks are refused with the reason", "[series][data]") {
  if (segnode::test::missing(!dicomData("siemens_trio_mosaic_epi_ax_asc35").empty(), "../shared/data/dicom")) return;
  CHECK_THAT(refusal(dicomFilesIn(dicomData("siemens_trio_mosaic_epi_ax_asc35"))), Catch::Contains("MOSAIC"));
  CHECK_THAT(refusal(dicomFilesIn(dicomData("philips_achieva_epi_fmri"))),
             Catch::Contains("27 images at 9 slice positions (4D"));
  auto gre = dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag") / "dicom");
  std::vector<fs::path> gap{gre[0], gre[1], gre[3], gre[4]};
  // gre is sorted by file name, which is not slice order: find the middle slice by position.
  auto full = dicom::loadSeries(gre);
  std::vector<fs::path> withoutMiddle;
  for (const auto& f : gre)
    if (segnode::test::sopInstanceUidOf(f) != full.sourceSopInstanceUids[2]) withoutMiddle.push_back(f);
  CHECK_THAT(refusal(withoutMiddle), Catch::Contains("non-uniform slice spacing"));
  auto mprage = dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag") / "dicom");
  CHECK_THAT(refusal({gre[0], gre[1], mprage[0]}), Catch::Contains("mixed image sizes"));

  // Tilt: shift each slice along its row direction in proportion to its position.
  TempDir tmp;
  std::vector<fs::path> tilted;
  for (size_t k = 0; k < 5; ++k) {
    auto uid = full.sourceSopInstanceUids[k];
    fs::path src;
    for (const auto& f : gre)
      if (segnode::test::sopInstanceUidOf(f) == uid) src = f;
    auto dst = tmp / ("t" + std::to_string(k) + ".dcm");
    fs::copy_file(src, dst);
    engine::Vec3 p = full.geometry.indexToWorld({0, 0, double(k)});
    for (int a = 0; a < 3; ++a) p[a] += full.geometry.direction[a][0] * 2.0 * double(k);  // 2 mm per slice
    std::string ipp = std::to_string(p[0]) + "\\" + std::to_string(p[1]) + "\\" + std::to_string(p[2]);
    REQUIRE(segnode::test::runCommand({"dcmodify", "-nb", "-m", "(0020,0032)=" + ipp, dst.string()}).exitCode == 0);
    tilted.push_back(dst);
  }
  CHECK_THAT(refusal(tilted), Catch::Contains("gantry tilt"));
  CHECK_THAT(refusal({}), Catch::Contains("no instances"));
}

TEST_CASE("a malformed pixel module is refused with the attribute that is wrong - nothing is read past a buffer",
          "[series][data]") {
  if (segnode::test::missing(!dicomData("philips_ingenia_elitionx_t1_mprage_sag").empty(), "../shared/data/dicom")) return;
  auto mprage = dicomFilesIn(dicomData("philips_ingenia_elitionx_t1_mprage_sag") / "dicom");
  TempDir tmp;
  auto modified = [&](const std::string& name, const std::string& tagValue) {
    std::vector<fs::path> out;
    for (size_t k = 0; k < 3; ++k) {
      auto dst = tmp / (name + std::to_string(k) + ".dcm");
      fs::copy_file(mprage[k], dst);
      REQUIRE(segnode::test::runCommand({"dcmodify", "-nb", "-m", tagValue, dst.string()}).exitCode == 0);
      out.push_back(dst);
    }
    return out;
  };
  CHECK_THAT(refusal(modified("bits24-", "(0028,0100)=24")), Catch::Contains("BitsAllocated 24"));
  CHECK_THAT(refusal(modified("bits0-", "(0028,0100)=0")), Catch::Contains("BitsAllocated 0"));
  CHECK_THAT(refusal(modified("rgb-", "(0028,0002)=3")), Catch::Contains("SamplesPerPixel 3"));
  CHECK_THAT(refusal(modified("rows0-", "(0028,0010)=0")), Catch::Contains("Rows or Columns is 0"));
}
