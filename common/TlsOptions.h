#pragma once
// DICOM TLS settings (dicom.tls, destinations[i].tls) as the configuration gives them and the
// DICOM layer uses them (daemon/dicom/Tls.h): one struct for both, PEM file paths only.
#include <string>
#include <vector>

namespace segnode {

struct TlsOptions {
  std::string certificate, privateKey;  // ours: required to listen; to send, only if the peer asks
  std::vector<std::string> trusted;     // CA certificate files (PEM) or directories of them
  std::string minVersion = "1.2";       // "1.2" or "1.3"
  bool requirePeerCertificate = true;   // listening: refuse a client without a trusted certificate
};

}  // namespace segnode
