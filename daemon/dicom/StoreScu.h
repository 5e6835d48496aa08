#pragma once
// Sends one file to a destination with C-STORE (DCMTK's DcmSCU), proposing the file's SOP class
// (Segmentation Storage for our output) in explicit and implicit little endian.
#include <filesystem>
#include <string>

#include "daemon/config/Config.h"

namespace segnode::dicom {

struct SendResult {
  bool ok = false;
  std::string message;  // why not, for the outbox row and the log
};

SendResult storeFile(const config::Destination& to, const std::string& callingAe, const std::filesystem::path& file,
                     int timeoutSeconds);

}  // namespace segnode::dicom
