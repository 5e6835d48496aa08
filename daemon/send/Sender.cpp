#include "daemon/send/Sender.h"

#include <algorithm>

#include "common/Log.h"
#include "common/Metrics.h"
#include "daemon/dicom/StoreScu.h"
#include "daemon/dicom/Tls.h"
#include "storage/Db.h"

namespace segnode::send {

Sender::Sender(SenderOptions options, storage::Jobs& jobs) : options_(std::move(options)), jobs_(jobs) {}
Sender::~Sender() { stop(); }

std::vector<dicom::RemoteAe> Sender::remotesFor(const std::vector<config::Destination>& destinations) {
  std::vector<dicom::RemoteAe> remotes;
  for (const auto& d : destinations)
    remotes.push_back({d.aeTitle, d.host, d.port, d.tls ? dicom::makeTlsLayer(*d.tls, /*accepting=*/false) : nullptr});
  return remotes;
}

// A certificate that cannot be used stops the start (Error(BadConfig)).
void Sender::start() { startWith(remotesFor(options_.destinations)); }

void Sender::startWith(std::vector<dicom::RemoteAe> remotes) {
  std::vector<std::string> names;
  for (const auto& d : options_.destinations) names.push_back(d.name);
  try {
    if (int n = jobs_.deadLetterUnknown(names))
      SEGNODE_LOG(Warn, Send, n << " pending deliveries to destinations no longer configured: dead-lettered"
                                << " (segnode status shows them; segnode retry once the destination is back)");
  } catch (const std::exception& e) {  // they stay pending: the next start dead-letters them
    SEGNODE_LOG(Error, Send, "deliveries to destinations no longer configured: " << e.what());
  }
  running_ = true;
  for (size_t i = 0; i < remotes.size(); ++i)
    threads_.emplace_back([this, name = options_.destinations[i].name, remote = remotes[i]] { loop(name, remote); });
}

void Sender::wake() { wake_.notify(); }

void Sender::stop() {
  if (!running_.exchange(false)) return;
  wake();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Sender::restart(std::vector<config::Destination> destinations, config::RetryPolicy retry) {
  auto remotes = remotesFor(destinations);
  stop();
  options_.destinations = std::move(destinations);
  options_.retry = retry;
  startWith(std::move(remotes));
}

void Sender::loop(const std::string& destination, const dicom::RemoteAe& remote) {
  log::Scope scope{{"destination", destination}};
  while (running_) {
    uint64_t ticket = wake_.ticket();
    bool pause = false;  // the database failed, or memory: the row comes round again after a pause
    try {
      auto item = jobs_.nextDue(destination, storage::nowMs());
      if (item && deliver(destination, remote, *item)) continue;
      pause = item.has_value();
    } catch (const std::exception& e) {  // this destination's thread goes on
      SEGNODE_LOG(Error, Send, destination << ": " << e.what());
      pause = true;
    }
    if (pause) {
      wake_.wait(ticket, std::chrono::seconds(5), [&] { return !running_; });
      continue;
    }
    // Sleep until the next row is due or new work arrives. The wait is capped so that rows
    // re-queued by `segnode retry` (another process) are seen within a few seconds.
    int64_t waitMs = 5000;
    try {
      if (auto next = jobs_.nextAttemptMs(destination)) waitMs = std::clamp<int64_t>(*next - storage::nowMs(), 0, 5000);
    } catch (const std::exception&) {
    }
    wake_.wait(ticket, std::chrono::milliseconds(waitMs), [&] { return !running_; });
  }
}

bool Sender::deliver(const std::string& destination, const dicom::RemoteAe& remote, const storage::OutboxItem& item) {
  log::Scope jobScope{{"job", std::to_string(item.jobId)}};
  auto r = dicom::storeFile(remote, options_.callingAe, item.segPath, options_.timeoutSeconds);
  int attempt = item.attempts + 1;
  bool dead = !r.ok && attempt >= options_.retry.maxAttempts;
  metrics::add(metrics::Family::SendAttempts, {destination});
  if (!r.ok) metrics::add(metrics::Family::SendFailures, {destination});
  if (dead) metrics::add(metrics::Family::DeadLetters, {destination});
  int64_t next = storage::nowMs() + int64_t(options_.retry.delaySeconds(attempt) * 1000);
  std::string error;
  if (!storage::recordWithRetry([&] { r.ok ? jobs_.markSent(item.id) : jobs_.markFailed(item.id, r.message, next, dead); },
                                error)) {
    // Not recorded: the row stays pending and is sent again (a PACS takes a SEG it has twice).
    SEGNODE_LOG(Error, Send, "job " << item.jobId << " -> " << destination << ": the delivery's outcome could not be "
                                    << "recorded: " << error);
    return false;
  }
  if (r.ok)
    SEGNODE_LOG(Info, Send, "job " << item.jobId << " -> " << destination << ": sent (attempt " << attempt << ")");
  else
    SEGNODE_LOG(Warn, Send, "job " << item.jobId << " -> " << destination << ": attempt " << attempt << " failed: "
                                   << r.message << (dead ? "; dead-lettered (segnode retry re-queues it)" : ""));
  return true;
}

}  // namespace segnode::send
