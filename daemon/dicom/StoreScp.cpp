#include "daemon/dicom/StoreScp.h"

#include <atomic>
#include <list>
#include <system_error>
#include <thread>

#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/assoc.h>
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

// The accept loop and one thread per association, owned here rather than by DCMTK's DcmSCPPool.
// Its worker deletes itself when its association ends, while OFThread::start() may still be
// writing the new thread's id into it (a C-ECHO that ends before pthread_create returns to the
// listener, likelier with every core busy segmenting: heap corruption), and it never joins the
// threads it ends, so each association kept its stack. Here every thread is joined: the finished
// ones before each association is accepted, the rest at stop().
struct StoreScp::Listener {
  Listener(const ScpOptions& options, StoreHandler& h) : handler(h), maxSessions(size_t(options.maxAssociations)) {}

  struct Running {
    Session session;
    std::thread thread;
    std::atomic<bool> done{false};
    explicit Running(StoreHandler& h) : session(h) {}
  };

  // Hands an accepted association to a new thread, or refuses it (the sender may retry) when
  // maxSessions run or no thread can be started.
  void hand(T_ASC_Association* assoc, const DcmSharedSCPConfig& shared) {
    if (sessions.size() >= maxSessions) {
      SEGNODE_LOG(Warn, Dicom, "association refused: " << maxSessions << " associations already running (dicom.max_associations)");
      return refuse(assoc, ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED);
    }
    auto& r = sessions.emplace_back(handler);
    r.session.setSharedConfig(shared);
    try {
      r.thread = std::thread([&r, assoc] {
        try {
          r.session.run(assoc);
        } catch (const std::exception& e) {
          SEGNODE_LOG(Error, Dicom, "association ended by an error: " << e.what());
        }
        r.done = true;
      });
    } catch (const std::system_error& e) {  // EAGAIN: out of threads or memory; the node stays up
      sessions.pop_back();
      SEGNODE_LOG(Error, Dicom, "association refused: no thread to run it: " << e.what());
      refuse(assoc, ASC_REASON_SP_PRES_TEMPORARYCONGESTION);
    }
  }

  // Joins the sessions whose association has ended (all of them: waits for the running ones).
  void reap(bool all) {
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (!all && !it->done) {
        ++it;
        continue;
      }
      it->thread.join();
      it = sessions.erase(it);
    }
  }

  static void refuse(T_ASC_Association* assoc, T_ASC_RejectParametersReason reason) {
    T_ASC_RejectParameters rej{ASC_RESULT_REJECTEDTRANSIENT, ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED, reason};
    ASC_rejectAssociation(assoc, &rej);
    ASC_dropAssociation(assoc);
    ASC_destroyAssociation(&assoc);
  }

  StoreHandler& handler;
  const size_t maxSessions;
  DcmSCPConfig config;
  std::list<Running> sessions;  // a list: a running thread holds a reference to its element
  std::atomic<bool> stopping{false};
};

StoreScp::StoreScp(const ScpOptions& c, StoreHandler& handler) : listener_(std::make_unique<Listener>(c, handler)) {
  DcmSCPConfig& cfg = listener_->config;
  cfg.setAETitle(c.aeTitle.c_str());
  cfg.setPort(c.port);
  cfg.setMaxReceivePDULength(c.maxPdu);
  cfg.setACSETimeout(Uint32(c.acseTimeoutSeconds));
  cfg.setDIMSETimeout(Uint32(c.dimseTimeoutSeconds));
  cfg.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
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
  Listener& l = *listener_;
  T_ASC_Network* network = nullptr;
  OFCondition c = ASC_initializeNetwork(NET_ACCEPTOR, int(l.config.getPort()), int(l.config.getACSETimeout()), &network);
  if (c.good() && tls_) c = ASC_setTransportLayer(network, tls_.get(), /*takeoverOwnership=*/0);
  if (c.bad()) {
    ASC_dropNetwork(&network);
    throw Error(ErrorCode::Io, "DICOM listener on port " + std::to_string(l.config.getPort()) + ": " + c.text());
  }
  const DcmSharedSCPConfig shared(l.config);
  while (!l.stopping) {
    l.reap(false);
    T_ASC_Association* assoc = nullptr;
    // Wakes up every second while idle, so that stop() is noticed.
    c = ASC_receiveAssociation(network, &assoc, long(l.config.getMaxReceivePDULength()), nullptr, nullptr,
                               OFBool(tls_ != nullptr), DUL_NOBLOCK, 1);
    if (c.good()) {
      l.hand(assoc, shared);
      continue;
    }
    if (c != DUL_NOASSOCIATIONREQUEST) {  // a connection that broke before it was an association
      SEGNODE_LOG(Warn, Dicom, "receiving an association failed: " << c.text());
      if (assoc) ASC_dropAssociation(assoc);
    }
    ASC_destroyAssociation(&assoc);
  }
  l.reap(true);
  ASC_dropNetwork(&network);
}

void StoreScp::stop() { listener_->stopping = true; }

}  // namespace segnode::dicom
