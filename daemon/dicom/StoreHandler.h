#pragma once
// The seam between the DICOM listener and whoever stores what it receives (Orthanc's shape): the
// SCP negotiates, receives into a temporary file and reads the header; the handler decides who may
// send, whether there is room, and stores durably before the SCP acknowledges. Plain types only:
// DCMTK stays inside daemon/dicom/.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/InstanceHeader.h"
#include "common/TlsOptions.h"

namespace segnode::dicom {

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

struct ReceivedInstance {
  InstanceHeader header;
  std::string commandSopInstanceUid;  // from the C-STORE request, checked against the data set
  std::string commandSopClassUid;
};

class StoreHandler {
 public:
  virtual ~StoreHandler() = default;
  // Each association hook refuses only for its own reason, so the sender is told the right one.
  enum class PeerCheck { Allowed, WrongCalledAe, UnknownCallingAe, WrongHost };
  virtual PeerCheck checkPeer(const Association& a, std::string& reason) const = 0;
  // Whether a data set of which `receivedBytes` have arrived may go on: asked before it is received
  // (0; false answers the C-STORE "out of resources" and writes nothing) and again as each PDV
  // arrives (false aborts the association, the only way to stop a data set mid-stream).
  virtual bool hasRoomFor(uint64_t receivedBytes, std::string& reason) const = 0;
  virtual std::filesystem::path newTempPath() = 0;  // where the next data set is received
  // `tempFile` holds the received data set; success only once it is durable.
  virtual StoreStatus store(const Association& a, ReceivedInstance instance, const std::filesystem::path& tempFile) = 0;
  // Why a refusal happened, as a small fixed set (the metrics' reason label); the text says the rest.
  enum class Refusal { CalledAe, CallingAe, Host, NoRoom, Aborted, Unreadable, Invalid, StoreFailed };
  // An empty sopInstanceUid refuses the association itself (CalledAe, CallingAe, Host).
  virtual void refuse(const Association& a, const std::string& sopInstanceUid, Refusal kind, const std::string& reason) = 0;
  virtual void accepted(const Association& a) = 0;  // the association was acknowledged (audit trail)
};

// What the listener needs of the configuration.
struct ScpOptions {
  std::string aeTitle;
  uint16_t port = 11112;
  int maxAssociations = 8;
  uint32_t maxPdu = 131072;
  int acseTimeoutSeconds = 30, dimseTimeoutSeconds = 60;
  std::vector<std::string> sopClasses;  // UIDs accepted for C-STORE
  std::optional<TlsOptions> tls;        // set: the port speaks TLS only
};

}  // namespace segnode::dicom
