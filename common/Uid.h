#pragma once
// New DICOM UIDs. Without a root: "2.25." followed by a random (version 4) UUID as one decimal
// integer (PS3.5 B.2), needing no registration. Under an organisation's root (dicom.uid_root):
// "<root>." followed by as many random decimal digits as fit in 64 characters (a root of at most
// 40 characters leaves 23 or more, over 76 random bits). Any part may make one; no DICOM toolkit
// is needed for it.
#include <string>

namespace segnode {

inline constexpr size_t kMaxUidRootLength = 40;
std::string newDicomUid(const std::string& root = "");

}  // namespace segnode
