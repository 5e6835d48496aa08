#pragma once
// Reads a DICOM-SEG back into a label volume, to compare what the node sent with what it meant.
#include <cstdint>
#include <filesystem>
#include <vector>

#include "engine/BundleSpec.h"
#include "engine/Geometry.h"

namespace segnode::test {

// SEG -> label values on `grid` (the source series' grid, [k][j][i]): each frame placed by its
// ImagePositionPatient, each segment's pixels set to the value of the label `table` names as the
// segment's label. Throws std::runtime_error on a frame or segment it cannot place.
std::vector<uint16_t> decodeSeg(const std::filesystem::path& file, const engine::Geometry& grid,
                                const std::vector<engine::LabelInfo>& table);

}  // namespace segnode::test
