#pragma once
// The node's DICOM listener: C-ECHO and C-STORE, one thread per association (at most
// max_associations). Every DICOM detail stays in here; decisions are the StoreHandler's.
#include <memory>
#include <string>
#include <vector>

#include "daemon/dicom/StoreHandler.h"

class DcmTransportLayer;

namespace segnode::dicom {

// Transfer syntaxes the node accepts, in order of preference: what DCMTK here decodes, plus
// JPEG 2000 (decoded with OpenJPEG).
const std::vector<std::string>& acceptedTransferSyntaxes();

class StoreScp {
 public:
  StoreScp(const ScpOptions& options, StoreHandler& handler);
  ~StoreScp();
  // Listens until stop(); throws Error(Io) if the port cannot be opened.
  void run();
  void stop();  // from another thread: finish the running associations, then return from run()

  struct Listener;

 private:
  std::shared_ptr<DcmTransportLayer> tls_;  // outlives the listener that uses it
  std::unique_ptr<Listener> listener_;
};

}  // namespace segnode::dicom
