#include "daemon/dicom/Uids.h"

#include <dcmtk/dcmdata/dcuid.h>

namespace segnode::dicom {

std::string newUid() {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

}  // namespace segnode::dicom
