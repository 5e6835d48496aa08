#pragma once
// A stored series -> one 3D volume on its true grid (DESIGN §7), or a refusal with the reason.
// Slices are sorted by their position along the slice normal; one orientation, one size and
// uniform spacing are required; rescale slope/intercept are applied per slice; enhanced
// multi-frame objects are read frame by frame from their functional groups. Localizers, mosaics,
// 4D / multi-echo series, gantry tilt, gaps and mixed sizes are refused: never a wrong volume.
#include <filesystem>
#include <string>
#include <vector>

#include "engine/Geometry.h"

namespace segnode::dicom {

struct SeriesImage {
  engine::Geometry geometry;        // LPS, index (i = along a row, j = down the columns, k = slices)
  std::vector<float> voxels;        // [k][j][i], rescaled values (HU for CT)
  std::vector<std::string> sourceSopInstanceUids;  // per slice k (a multi-frame file repeats its UID)
  std::vector<int> sourceFrameNumbers;             // per slice k: 1-based frame in that instance
  std::string frameOfReferenceUid, studyUid, seriesUid, modality, sopClassUid;
};

// Throws segnode::Error(Unsupported) for series it refuses and Error(BadInput) for unreadable
// files; the message says which and why.
SeriesImage loadSeries(const std::vector<std::filesystem::path>& files);

}  // namespace segnode::dicom
