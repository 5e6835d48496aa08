#pragma once
// Sends one file to a destination with C-STORE (DCMTK's DcmSCU), proposing the file's SOP class
// (Segmentation Storage for our output) in explicit and implicit little endian.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

class DcmTransportLayer;

namespace segnode::dicom {

struct RemoteAe {
  std::string aeTitle, host;
  uint16_t port = 104;
  std::shared_ptr<DcmTransportLayer> tls;  // set: the association is made over TLS (dicom/Tls.h)
};

struct SendResult {
  bool ok = false;
  std::string message;  // why not, for the outbox row and the log
};

SendResult storeFile(const RemoteAe& to, const std::string& callingAe, const std::filesystem::path& file,
                     int timeoutSeconds);

}  // namespace segnode::dicom
