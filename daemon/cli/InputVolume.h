#pragma once
// What the offline commands accept as an image: a NIfTI file, or a folder holding one DICOM
// series (converted exactly as the daemon converts a received series, refusals included).
#include <string>

#include "engine/Volume.h"

namespace segnode::cli {

engine::Volume readInputVolume(const std::string& path);

}  // namespace segnode::cli
