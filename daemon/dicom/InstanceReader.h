#pragma once
// Reads the attributes the index needs from a DICOM file's header (not the pixel data).
#include <filesystem>

#include "common/InstanceHeader.h"

namespace segnode::dicom {

// Throws segnode::Error(BadInput) naming the file when it is not readable DICOM.
InstanceHeader readInstanceHeader(const std::filesystem::path& file);

}  // namespace segnode::dicom
