#pragma once
// Label volume -> DICOM Segmentation (BINARY) on the source series' grid (DESIGN §7): one segment
// per label present, coded category/type and recommended display colour from the bundle's label
// table, algorithm AUTOMATIC named after the model, same study and frame of reference, per-frame
// derivation/source image references, empty frames skipped.
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/dicom/SeriesLoader.h"
#include "engine/BundleSpec.h"

namespace segnode::dicom {

struct SegOutput {
  std::string seriesInstanceUid, sopInstanceUid;  // fixed when the job is created: a resend is the same instance
  int seriesNumber = 1000;
  std::string seriesDescription;                  // default: "<model> <version> segmentation"
  std::string modelName, modelVersion;
  std::string uidRoot;  // for the UIDs made here (Dimension Organization); "" = 2.25 UUID-based
  // A warning for the reader (issue 16), e.g. "IMPLAUSIBLE" or "LOW CONFIDENCE": it leads the
  // SeriesDescription and the ContentDescription, where a viewer shows it; `note` follows it in
  // the ContentDescription (what was measured).
  std::string flag, note;
  // Per entry of the label table (the network's classes): its mean probability over the voxels
  // it labels (engine::Confidence), written as each segment's SegmentDescription; empty = none.
  std::vector<double> segmentConfidence;
};

// labels: one value per voxel of `source` ([k][j][i]), values from `table` (0 = background).
// `referenceFile`: any instance of the source series (patient and study are copied from it).
// Returns the number of segments written. Throws segnode::Error(BadInput/Io).
int writeSegmentation(const SeriesImage& source, const std::vector<uint16_t>& labels,
                      const std::vector<engine::LabelInfo>& table, const std::filesystem::path& referenceFile,
                      const SegOutput& out, const std::filesystem::path& file);

}  // namespace segnode::dicom
