// DICOM-SEG writing (issue 5 groundwork): dciodvfy-valid, and decoding it gives back the labels.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>

#include "NodeHarness.h"
#include "SegDecode.h"
#include "daemon/dicom/SegWriter.h"
#include "daemon/dicom/SeriesLoader.h"

using namespace segnode;
namespace fs = std::filesystem;

TEST_CASE("a DICOM-SEG of a real series passes dciodvfy and decodes to the labels written", "[seg][data]") {
  auto dir = test::dicomData("philips_ingenia_elitionx_t1_mprage_sag");
  if (test::missing(!dir.empty(), "../shared/data/dicom")) return;
  auto files = test::dicomFilesIn(dir / "dicom");
  auto src = dicom::loadSeries(files);
  // Labels from intensity bands, so every label has a real shape; label 3 is never present.
  std::vector<engine::LabelInfo> table(4);
  table[0] = {0, "background", {0, 0, 0}, {}, {}, {}};
  table[1] = {2, "left cerebral white matter", {245, 245, 245}, {"SCT", "91723000", "Anatomical Structure"},
              {"SCT", "68523003", "Cerebral white matter"}, {2}, {"SCT", "7771000", "Left"}};
  table[2] = {3, "left cerebral cortex", {205, 62, 78}, {}, {}, {3}};
  table[3] = {41, "never present", {1, 2, 3}, {}, {}, {}};
  std::vector<uint16_t> labels(src.voxels.size());
  float maxValue = 0;
  for (float v : src.voxels) maxValue = std::max(maxValue, v);
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = src.voxels[i] > 0.5f * maxValue ? 2 : src.voxels[i] > 0.25f * maxValue ? 3 : 0;

  test::TempDir tmp;
  dicom::SegOutput out{"1.2.826.0.1.3680043.8.498.1001", "1.2.826.0.1.3680043.8.498.1002", 1301, "", "brain-mr-student-w4", "1.0.0"};
  out.segmentConfidence = {0, 0.934, 0.5, 0.7};  // per table entry; the absent label writes no segment
  int segments = dicom::writeSegmentation(src, labels, table, files.front(), out, tmp / "seg.dcm");
  CHECK(segments == 2);

  std::string report;
  int errors = test::dciodvfyErrors(tmp / "seg.dcm", report);
  INFO(report);
  CHECK(errors == 0);

  CHECK(test::decodeSeg(tmp / "seg.dcm", src.geometry, table) == labels);
  // Same study and frame of reference as the source; the series says which model made it.
  auto dump = test::runCommand({"dcmdump", "+P", "StudyInstanceUID", "+P", "FrameOfReferenceUID", "+P", "SeriesDescription",
                                "+P", "SegmentAlgorithmName", "+P", "CodeValue",
                                (tmp / "seg.dcm").string()});
  CHECK_THAT(dump.output, Catch::Contains("7771000"));  // laterality of the left structure
  CHECK_THAT(dump.output, Catch::Contains(src.studyUid));
  CHECK_THAT(dump.output, Catch::Contains(src.frameOfReferenceUid));
  CHECK_THAT(dump.output, Catch::Contains("brain-mr-student-w4 1.0.0"));
  // Each segment says how sure the network was of it (issue 16), in its SegmentDescription.
  auto descriptions = test::runCommand({"dcmdump", "+P", "SegmentDescription", (tmp / "seg.dcm").string()}).output;
  CHECK_THAT(descriptions, Catch::Contains("confidence 0.93 (mean probability of its voxels)"));
  CHECK_THAT(descriptions, Catch::Contains("confidence 0.50"));
  CHECK_THAT(descriptions, !Catch::Contains("confidence 0.70"));
}
