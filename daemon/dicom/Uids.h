#pragma once
#include <string>

namespace segnode::dicom {

// A new globally unique DICOM UID (DCMTK's generator under its site root).
std::string newUid();

}  // namespace segnode::dicom
