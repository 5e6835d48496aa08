#include "daemon/dicom/Toolkit.h"

#include <dcmtk/oflog/oflog.h>

#include <cstdlib>

namespace segnode::dicom {

void configureToolkit(bool verbose) {
  setenv("TCP_NODELAY", "1", 1);
  OFLog::configure(verbose ? OFLogger::INFO_LOG_LEVEL : OFLogger::WARN_LOG_LEVEL);
}

}  // namespace segnode::dicom
