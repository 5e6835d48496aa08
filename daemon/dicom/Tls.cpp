#include "daemon/dicom/Tls.h"

#include <dcmtk/dcmtls/tlslayer.h>
#include <openssl/ssl.h>

#include <filesystem>

#include "common/Error.h"

namespace segnode::dicom {

std::shared_ptr<DcmTransportLayer> makeTlsLayer(const TlsOptions& o, bool accepting) {
  auto layer = std::make_shared<DcmTLSTransportLayer>(accepting ? NET_ACCEPTOR : NET_REQUESTOR, nullptr, OFTrue);
  auto check = [](OFCondition c, const std::string& what) {
    if (c.bad()) throw Error(ErrorCode::BadConfig, what + ": " + c.text());
  };
  if (!o.certificate.empty() || !o.privateKey.empty()) {
    check(layer->setPrivateKeyFile(o.privateKey.c_str(), DCF_Filetype_PEM), "TLS private key " + o.privateKey);
    check(layer->setCertificateFile(o.certificate.c_str(), DCF_Filetype_PEM), "TLS certificate " + o.certificate);
    if (!layer->checkPrivateKeyMatchesCertificate())
      throw Error(ErrorCode::BadConfig, "TLS private key " + o.privateKey + " does not match certificate " + o.certificate);
  }
  for (const auto& t : o.trusted) {
    check(std::filesystem::is_directory(t) ? layer->addTrustedCertificateDir(t.c_str(), DCF_Filetype_PEM)
                                           : layer->addTrustedCertificateFile(t.c_str(), DCF_Filetype_PEM),
          "TLS trusted certificates " + t);
  }
  // A sender always verifies the PACS; a listener verifies clients unless told not to ask.
  layer->setCertificateVerification(!accepting || o.requirePeerCertificate ? DCV_requireCertificate : DCV_ignoreCertificate);
  check(layer->setTLSProfile(TSP_Profile_BCP195_ND), "TLS profile BCP 195 (non-downgrading)");
  check(layer->activateCipherSuites(), "TLS cipher suites");
  if (o.minVersion == "1.3" &&
      SSL_CTX_set_min_proto_version(layer->getNativeHandle(), TLS1_3_VERSION) != 1)
    throw Error(ErrorCode::Io, "OpenSSL refuses a minimum of TLS 1.3");
  return layer;
}

}  // namespace segnode::dicom
