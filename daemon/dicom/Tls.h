#pragma once
// DICOM TLS (PS3.15 B.9, the BCP 195 non-downgrading profile) for the listener and for each
// destination, from PEM files: our certificate and key, and the CAs whose certificates we trust.
#include <memory>

#include "common/TlsOptions.h"

class DcmTransportLayer;

namespace segnode::dicom {

// A TLS layer for accepting (listener) or requesting (sender) associations. Throws
// Error(BadConfig) naming the file that cannot be used (unreadable, key not matching the
// certificate) and Error(Io) when OpenSSL cannot set up.
std::shared_ptr<DcmTransportLayer> makeTlsLayer(const TlsOptions& options, bool accepting);

}  // namespace segnode::dicom
