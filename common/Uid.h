#pragma once
// New DICOM UIDs without a registered root: "2.25." followed by a random (version 4) UUID as one
// decimal integer (PS3.5 B.2). Any part may make one; no DICOM toolkit is needed for it.
#include <string>

namespace segnode {

std::string newDicomUid();

}  // namespace segnode
