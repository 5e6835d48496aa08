#pragma once
// NIfTI-1 single-file reader/writer (.nii and .nii.gz). The header's sform is preferred, then the
// qform, then plain pixdim scaling; RAS is converted to the engine's LPS at this boundary.
// Voxel types: uint8, int8, int16, uint16 (read as int32), int32, float32, float64.
// Any unreadable file raises Error(BadInput/Unsupported) naming the file and the problem.
#include <filesystem>

#include "engine/Volume.h"

namespace segnode::engine {

struct NiftiReadOptions {
  // Apply scl_slope/scl_inter when the header sets them (the result becomes float32).
  bool applyScaling = true;
};

Volume readNifti(const std::filesystem::path& path, const NiftiReadOptions& options = {});

// Writes sform and qform (both code 1, scanner) from the geometry. dtype must be one of uint8,
// int16, int32, float32, float64. ".gz" in the name selects gzip (level 1: fast, as nibabel).
void writeNifti(const std::filesystem::path& path, const Volume& volume);

}  // namespace segnode::engine
