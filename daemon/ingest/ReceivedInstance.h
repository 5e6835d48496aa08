#pragma once
// What the DICOM layer tells the ingest service about one received instance, in plain types:
// DCMTK stays inside daemon/dicom/.
#include <cstdint>
#include <string>

#include "storage/Index.h"

namespace segnode::ingest {

// DIMSE status codes for C-STORE responses (PS3.4 B.2.3, PS3.7 C).
enum StoreStatusCode : uint16_t {
  kSuccess = 0x0000,
  kOutOfResources = 0xA700,
  kDataSetDoesNotMatchSopClass = 0xA900,
  kCannotUnderstand = 0xC000,
  kProcessingFailure = 0x0110,
};

struct StoreStatus {
  uint16_t code = kSuccess;
  std::string comment;  // sent as Error Comment and logged; empty on success
};

struct Association {
  std::string callingAe, calledAe, peerHost;
};

// Header attributes of a received file. instance.filePath/sha256/fileSize are filled by ingest.
struct ReceivedInstance {
  storage::InstanceRecord record;
  std::string commandSopInstanceUid;  // from the C-STORE request, checked against the dataset
  std::string commandSopClassUid;
};

}  // namespace segnode::ingest
