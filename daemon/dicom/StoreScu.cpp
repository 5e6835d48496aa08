#include "daemon/dicom/StoreScu.h"

#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scu.h>

namespace segnode::dicom {
namespace {
// DCMTK 3.6.7 keeps DcmSCU::useSecureConnection protected (DcmTLSSCU would build its own layer
// from files at every send; ours is built once per destination).
class Scu : public DcmSCU {
 public:
  using DcmSCU::useSecureConnection;
};
}  // namespace

SendResult storeFile(const RemoteAe& to, const std::string& callingAe, const std::filesystem::path& file,
                     int timeoutSeconds) {
  DcmFileFormat ff;
  if (ff.loadFile(file.c_str()).bad()) return {false, file.string() + ": cannot read"};
  OFString sopClass;
  ff.getDataset()->findAndGetOFString(DCM_SOPClassUID, sopClass);
  Scu scu;
  scu.setAETitle(callingAe.c_str());
  scu.setPeerHostName(to.host.c_str());
  scu.setPeerPort(to.port);
  scu.setPeerAETitle(to.aeTitle.c_str());
  scu.setACSETimeout(Uint32(timeoutSeconds));
  scu.setDIMSETimeout(Uint32(timeoutSeconds));
  scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  scu.setConnectionTimeout(Sint32(timeoutSeconds));
  OFList<OFString> syntaxes;
  syntaxes.push_back(UID_LittleEndianExplicitTransferSyntax);
  syntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
  scu.addPresentationContext(sopClass, syntaxes);
  OFCondition c = scu.initNetwork();
  if (c.good() && to.tls) c = scu.useSecureConnection(to.tls.get());  // needs the network initNetwork made
  if (c.good()) c = scu.negotiateAssociation();
  if (c.bad()) return {false, std::string("association with ") + to.aeTitle + "@" + to.host + ":" + std::to_string(to.port) +
                                  " failed: " + c.text()};
  T_ASC_PresentationContextID pc = scu.findPresentationContextID(sopClass, "");
  if (pc == 0) {
    scu.releaseAssociation();
    return {false, to.aeTitle + " accepted no presentation context for SOP class " + std::string(sopClass.c_str())};
  }
  Uint16 status = 0xFFFF;
  c = scu.sendSTORERequest(pc, file.c_str(), nullptr, status);
  scu.releaseAssociation();
  if (c.bad()) return {false, std::string("C-STORE failed: ") + c.text()};
  // Success, or a warning (0xB000, 0xB007, 0xB006): the instance was stored.
  if (status == 0 || (status & 0xF000) == 0xB000) return {true, ""};
  char buf[64];
  std::snprintf(buf, sizeof buf, "C-STORE status 0x%04x (%s)", status, DU_cstoreStatusString(status));
  return {false, buf};
}

}  // namespace segnode::dicom
