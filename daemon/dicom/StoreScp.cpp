#include "daemon/dicom/StoreScp.h"

#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scppool.h>
#include <dcmtk/dcmnet/scpthrd.h>

#include "common/Error.h"
#include "common/Log.h"
#include "daemon/dicom/InstanceReader.h"
#include "daemon/dicom/Tls.h"

namespace segnode::dicom {

const std::vector<std::string>& acceptedTransferSyntaxes() {
  static const std::vector<std::string> all = {
      UID_LittleEndianExplicitTransferSyntax,  UID_LittleEndianImplicitTransferSyntax,
      UID_BigEndianExplicitTransferSyntax,     UID_DeflatedExplicitVRLittleEndianTransferSyntax,
      UID_JPEGProcess14SV1TransferSyntax,      UID_JPEGProcess14TransferSyntax,
      UID_JPEGLSLosslessTransferSyntax,        UID_JPEGLSLossyTransferSyntax,
      UID_JPEG2000LosslessOnlyTransferSyntax,  UID_JPEG2000TransferSyntax,
      UID_RLELosslessTransferSyntax,           UID_JPEGProcess1TransferSyntax,
      UID_JPEGProcess2_4TransferSyntax,
  };
  return all;
}

namespace {

// One association. DCMTK calls the check* hooks while negotiating and handleIncomingCommand for
// each DIMSE message.
class Session : public DcmThreadSCP {
 public:
  explicit Session(StoreHandler& handler) : ingest_(handler) {}

 protected:
  Association association() {
    return {getPeerAETitle().c_str(), getCalledAETitle().c_str(), getPeerIP().c_str()};
  }

  // Each hook refuses only for its own reason, so the sender is told the right one.
  OFBool refuseIf(StoreHandler::PeerCheck failure) {
    std::string reason;
    auto a = association();
    if (ingest_.checkPeer(a, reason) != failure) return OFTrue;
    const auto kind = failure == StoreHandler::PeerCheck::WrongCalledAe      ? StoreHandler::Refusal::CalledAe
                      : failure == StoreHandler::PeerCheck::UnknownCallingAe ? StoreHandler::Refusal::CallingAe
                                                                             : StoreHandler::Refusal::Host;
    ingest_.refuse(a, "", kind, "association refused: " + reason);
    return OFFalse;
  }
  OFBool checkCalledAETitleAccepted(const OFString&) override { return refuseIf(StoreHandler::PeerCheck::WrongCalledAe); }
  OFBool checkCallingAETitleAccepted(const OFString&) override { return refuseIf(StoreHandler::PeerCheck::UnknownCallingAe); }
  OFBool checkCallingHostAccepted(const OFString&) override { return refuseIf(StoreHandler::PeerCheck::WrongHost); }
  void notifyAssociationAcknowledge() override {
    DcmThreadSCP::notifyAssociationAcknowledge();
    ingest_.accepted(association());
  }

  OFCondition handleIncomingCommand(T_DIMSE_Message* msg, const DcmPresentationContextInfo& info) override {
    if (msg->CommandField == DIMSE_C_STORE_RQ) return handleStore(msg->msg.CStoreRQ, info.presentationContextID);
    return DcmThreadSCP::handleIncomingCommand(msg, info);
  }

 private:
  OFCondition respond(T_ASC_PresentationContextID presId, const T_DIMSE_C_StoreRQ& req, const StoreStatus& st) {
    DcmDataset detail;
    DcmDataset* detailPtr = nullptr;
    if (!st.comment.empty()) {
      detail.putAndInsertString(DCM_ErrorComment, st.comment.substr(0, 64).c_str());
      detailPtr = &detail;
    }
    return sendSTOREResponse(presId, req.MessageID, req.AffectedSOPClassUID, req.AffectedSOPInstanceUID, st.code, detailPtr);
  }

  // Asked on every PDV of a data set being received: past the size bound, or below the disk
  // watermark, the association is aborted (DIMSE cannot refuse half a data set).
  void notifyRECEIVEProgress(const unsigned long byteCount) override {
    if (!receiving_ || !stopped_.empty()) return;
    if (std::string reason; !ingest_.hasRoomFor(byteCount, reason)) {
      stopped_ = reason;
      abortAssociation();
    }
  }

  OFCondition handleStore(T_DIMSE_C_StoreRQ& req, T_ASC_PresentationContextID presId) {
    auto a = association();
    std::string reason;
    if (!ingest_.hasRoomFor(0, reason)) {
      // The data follows the command whatever we answer: it is read and discarded (never held
      // in memory, never written to the short disk).
      OFCondition c = receiveSTORERequest(req, presId, OFString("/dev/null"));
      if (c.bad()) return c;
      ingest_.refuse(a, req.AffectedSOPInstanceUID, StoreHandler::Refusal::NoRoom, reason);
      return respond(presId, req, {kOutOfResources, reason});
    }
    std::filesystem::path tmp = ingest_.newTempPath();
    receiving_ = true, stopped_.clear();
    OFCondition c = receiveSTORERequest(req, presId, OFString(tmp.c_str()));
    receiving_ = false;
    if (c.bad()) {  // the association broke mid-transfer, or was aborted: no response can be sent
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      if (!stopped_.empty())
        ingest_.refuse(a, req.AffectedSOPInstanceUID, StoreHandler::Refusal::Aborted, stopped_ + "; association aborted");
      else
        SEGNODE_LOG(Warn, Dicom, a.callingAe << "@" << a.peerHost << ": receiving " << req.AffectedSOPInstanceUID
                                             << " failed: " << c.text());
      return c;
    }
    ReceivedInstance in;
    try {
      in.header = readInstanceHeader(tmp);
    } catch (const Error& e) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      ingest_.refuse(a, req.AffectedSOPInstanceUID, StoreHandler::Refusal::Unreadable, e.what());
      return respond(presId, req, {kCannotUnderstand, "data set is not readable DICOM"});
    }
    in.commandSopInstanceUid = req.AffectedSOPInstanceUID;
    in.commandSopClassUid = req.AffectedSOPClassUID;
    return respond(presId, req, ingest_.store(a, std::move(in), tmp));
  }

  StoreHandler& ingest_;
  bool receiving_ = false;  // into the spool (not while discarding)
  std::string stopped_;     // why the data set being received was stopped
};

}  // namespace

// DcmSCPPool default-constructs its workers; ours need the handler, so the pool is ours.
struct StoreScp::Pool : public DcmBaseSCPPool {
  struct Worker : public DcmBaseSCPPool::DcmBaseSCPWorker, public Session {
    Worker(Pool& pool) : DcmBaseSCPWorker(pool), Session(pool.handler) {}
    OFCondition setSharedConfig(const DcmSharedSCPConfig& config) override { return Session::setSharedConfig(config); }
    OFBool busy() override { return Session::isConnected(); }
    OFCondition workerListen(T_ASC_Association* const assoc) override { return Session::run(assoc); }
  };
  explicit Pool(StoreHandler& h) : handler(h) {}
  DcmBaseSCPWorker* createSCPWorker() override { return new Worker(*this); }
  StoreHandler& handler;
};

StoreScp::StoreScp(const ScpOptions& c, StoreHandler& handler) : pool_(std::make_unique<Pool>(handler)) {
  pool_->setMaxThreads(Uint16(c.maxAssociations));
  DcmSCPConfig& cfg = pool_->getConfig();
  cfg.setAETitle(c.aeTitle.c_str());
  cfg.setPort(c.port);
  cfg.setMaxReceivePDULength(c.maxPdu);
  cfg.setACSETimeout(Uint32(c.acseTimeoutSeconds));
  cfg.setDIMSETimeout(Uint32(c.dimseTimeoutSeconds));
  cfg.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  // Wake up every second while idle so that stop() is noticed.
  cfg.setConnectionBlockingMode(DUL_NOBLOCK);
  cfg.setConnectionTimeout(1);
  cfg.setHostLookupEnabled(OFFalse);
  if (c.tls) {
    tls_ = makeTlsLayer(*c.tls, /*accepting=*/true);
    cfg.setTransportLayer(tls_.get());
  }
  OFList<OFString> echoSyntaxes;
  echoSyntaxes.push_back(UID_LittleEndianExplicitTransferSyntax);
  echoSyntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
  echoSyntaxes.push_back(UID_BigEndianExplicitTransferSyntax);
  cfg.addPresentationContext(UID_VerificationSOPClass, echoSyntaxes);
  OFList<OFString> storeSyntaxes;
  for (const auto& ts : acceptedTransferSyntaxes()) storeSyntaxes.push_back(ts.c_str());
  for (const auto& sop : c.sopClasses) cfg.addPresentationContext(sop.c_str(), storeSyntaxes);
}

StoreScp::~StoreScp() = default;

void StoreScp::run() {
  OFCondition c = pool_->listen();
  if (c.bad()) throw Error(ErrorCode::Io, std::string("DICOM listener stopped: ") + c.text());
}

void StoreScp::stop() { pool_->stopAfterCurrentAssociations(); }

}  // namespace segnode::dicom
