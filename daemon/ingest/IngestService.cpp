#include "daemon/ingest/IngestService.h"

#include <netdb.h>
#include <sys/socket.h>

#include "common/Error.h"
#include "common/Log.h"
#include "common/Metrics.h"
#include "common/Sha256.h"
#include "storage/Db.h"

namespace segnode::ingest {
namespace {
void removeSuperseded(const std::string& file) {
  if (file.empty()) return;
  std::error_code ec;
  std::filesystem::remove(file, ec);
  if (ec) SEGNODE_LOG(Warn, Dicom, "cannot remove the superseded copy " << file << ": " << ec.message() << " (recovery retries)");
}
}  // namespace

IngestService::IngestService(const config::NodeConfig& config, storage::Spool& spool, storage::Index& index,
                             routing::SeriesAssembler& assembler, Flusher flush)
    : config_(config),
      peers_(config.peers),
      acceptUnknownPeers_(config.acceptUnknownPeers),
      spool_(spool),
      index_(index),
      assembler_(assembler),
      flush_(std::move(flush)),
      rows_([this](std::vector<storage::InstanceRecord>& batch) {
        auto outcomes = index_.recordInstances(batch);
        // Files renamed into place and the rows just committed reach the disk together, before
        // any of these C-STOREs is acknowledged.
        flush_({spool_.root(), config_.database.parent_path().empty() ? "." : config_.database.parent_path()});
        // Only now may the copies the rows no longer name go (a crash before this line leaves
        // them to recovery, which removes a file whose SOP instance is indexed elsewhere).
        for (const auto& o : outcomes) removeSuperseded(o.supersededFile);
        return outcomes;
      }) {}

namespace {
// A configured peer host matches the caller's address as written (an IP address) or through any
// address the name resolves to now (a host name: resolved per association, so a DHCP or DNS
// change needs no restart).
bool sameHost(const std::string& configured, const std::string& peerAddress) {
  if (configured == peerAddress) return true;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(configured.c_str(), nullptr, &hints, &found) != 0) return false;
  bool match = false;
  for (addrinfo* a = found; a && !match; a = a->ai_next) {
    char text[NI_MAXHOST];
    match = getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) == 0 && peerAddress == text;
  }
  freeaddrinfo(found);
  return match;
}
}  // namespace

IngestService::PeerCheck IngestService::checkPeer(const dicom::Association& a, std::string& reason) const {
  if (a.calledAe != config_.aeTitle) {
    reason = "called AE title '" + a.calledAe + "' is not this node's ('" + config_.aeTitle + "')";
    return PeerCheck::WrongCalledAe;
  }
  std::lock_guard<std::mutex> lock(peersMutex_);
  if (acceptUnknownPeers_) return PeerCheck::Allowed;
  bool aeKnown = false;
  for (const auto& p : peers_) {
    if (p.aeTitle != a.callingAe) continue;
    aeKnown = true;
    if (sameHost(p.host, a.peerHost)) return PeerCheck::Allowed;
  }
  reason = aeKnown ? "calling AE '" + a.callingAe + "' is not allowed from host " + a.peerHost
                   : "calling AE '" + a.callingAe + "' is not in dicom.peers";
  return aeKnown ? PeerCheck::WrongHost : PeerCheck::UnknownCallingAe;
}

void IngestService::setPeers(std::vector<config::Peer> peers, bool acceptUnknownPeers) {
  std::lock_guard<std::mutex> lock(peersMutex_);
  peers_ = std::move(peers);
  acceptUnknownPeers_ = acceptUnknownPeers;
}

bool IngestService::hasRoomFor(uint64_t receivedBytes, std::string& reason) const {
  if (receivedBytes > config_.maxDatasetBytes) {
    reason = "data set larger than storage.max_dataset_mb (" + std::to_string(config_.maxDatasetBytes >> 20) + " MiB)";
    return false;
  }
  uint64_t free = spool_.freeBytes();
  if (free >= config_.minFreeBytes) return true;
  reason = "free space in " + spool_.root().string() + " is " + std::to_string(free >> 20) +
           " MiB, below the storage.min_free_mb watermark of " + std::to_string(config_.minFreeBytes >> 20) + " MiB";
  return false;
}

namespace {

const char* metricName(dicom::StoreHandler::Refusal kind) {
  using R = dicom::StoreHandler::Refusal;
  switch (kind) {
    case R::CalledAe: return "called_ae";
    case R::CallingAe: return "calling_ae";
    case R::Host: return "host";
    case R::NoRoom: return "no_room";
    case R::Aborted: return "aborted";
    case R::Unreadable: return "unreadable";
    case R::Invalid: return "invalid";
    case R::StoreFailed: break;
  }
  return "store_failed";
}

}  // namespace

void IngestService::refuse(const dicom::Association& a, const std::string& sop, Refusal kind, const std::string& reason) {
  SEGNODE_LOG(Warn, Dicom, a.callingAe << "@" << a.peerHost << (sop.empty() ? "" : " " + sop) << ": " << reason);
  metrics::add(sop.empty() ? metrics::Family::AssociationsRefused : metrics::Family::InstancesRefused, {metricName(kind)});
  try {
    index_.recordRefusal(a.callingAe, a.peerHost, sop, reason);
    if (sop.empty()) index_.recordAssociation(a.callingAe, a.peerHost, false, reason);
  } catch (const std::exception& e) {
    SEGNODE_LOG(Error, Db, "cannot record refusal: " << e.what());
  }
}

void IngestService::accepted(const dicom::Association& a) {
  metrics::add(metrics::Family::AssociationsAccepted);
  try {
    index_.recordAssociation(a.callingAe, a.peerHost, true, "");
  } catch (const std::exception& e) {  // the audit row is lost, the association goes on
    SEGNODE_LOG(Error, Db, "cannot record the association of " << a.callingAe << "@" << a.peerHost << ": " << e.what());
  }
}

dicom::StoreStatus IngestService::store(const dicom::Association& a, dicom::ReceivedInstance in,
                                        const std::filesystem::path& tmp) {
  using namespace dicom;  // the status codes
  storage::InstanceRecord r;
  static_cast<InstanceHeader&>(r) = std::move(in.header);
  auto fail = [&](uint16_t code, const std::string& why, Refusal kind = Refusal::Invalid) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    refuse(a, in.commandSopInstanceUid, kind, why);
    return StoreStatus{code, why};
  };
  // Instances without study or series (seen in anonymised data) would be stored under an empty
  // key and never form a series: refused, never guessed.
  log::Scope scope{{"peer", a.callingAe + "@" + a.peerHost}, {"series", r.seriesUid}};
  if (r.studyUid.empty()) return fail(kCannotUnderstand, "StudyInstanceUID (0020,000D) is missing or empty");
  if (r.seriesUid.empty()) return fail(kCannotUnderstand, "SeriesInstanceUID (0020,000E) is missing or empty");
  if (r.sopInstanceUid != in.commandSopInstanceUid)
    return fail(kDataSetDoesNotMatchSopClass, "SOPInstanceUID in the data set (" + r.sopInstanceUid +
                                                  ") differs from the C-STORE request (" + in.commandSopInstanceUid + ")");
  std::filesystem::path final;
  try {
    r.sha256 = sha256File(tmp);
    final = spool_.pathFor(r.studyUid, r.seriesUid, r.sopInstanceUid, r.sha256);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::BadInput) return fail(kCannotUnderstand, e.what());
    return fail(kOutOfResources, e.what(), Refusal::StoreFailed);
  }
  try {
    r.fileSize = int64_t(std::filesystem::file_size(tmp));
    r.filePath = final.string();
    r.callingAe = a.callingAe;
    r.peerHost = a.peerHost;
    r.receivedMs = storage::nowMs();
    // An identical resend renames the same bytes over the same file; the index's transaction
    // recognises it (same path) and only counts it. Any other copy gets a file of its own.
    spool_.commit(tmp, final);
    storage::StoreOutcome outcome = rows_.submit(r).outcome;
    if (outcome != storage::StoreOutcome::Duplicate) assembler_.noteActivity(r.seriesUid);
    metrics::add(metrics::Family::InstancesReceived);
    metrics::add(metrics::Family::BytesReceived, {}, double(r.fileSize));
    SEGNODE_LOG(Debug, Dicom, "stored " << r.sopInstanceUid << " (series " << r.seriesUid << ", "
                                        << (outcome == storage::StoreOutcome::New        ? "new"
                                            : outcome == storage::StoreOutcome::Replaced ? "replaced"
                                                                                         : "duplicate")
                                        << ")");
    return {};
  } catch (const std::exception& e) {
    SEGNODE_LOG(Error, Dicom, "storing " << r.sopInstanceUid << " failed: " << e.what());
    return fail(kOutOfResources, std::string("could not store durably: ") + e.what(), Refusal::StoreFailed);
  }
}

}  // namespace segnode::ingest
