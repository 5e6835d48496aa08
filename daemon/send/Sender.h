#pragma once
// One sending thread per destination (DESIGN §8: a destination that is down never delays the
// others). Each takes its due outbox rows oldest first; a failure is retried with exponential
// backoff (retry.base_s doubling up to retry.cap_s) and dead-lettered after retry.max_attempts.
#include <atomic>
#include <thread>
#include <vector>

#include "common/WakeSignal.h"
#include "daemon/config/Config.h"
#include "daemon/dicom/StoreScu.h"
#include "storage/Jobs.h"

namespace segnode::send {

// What the senders need of the node's configuration.
struct SenderOptions {
  std::string callingAe;
  int timeoutSeconds = 60;
  config::RetryPolicy retry;
  std::vector<config::Destination> destinations;
};

class Sender {
 public:
  // start() dead-letters pending deliveries to destinations that are no longer configured.
  Sender(SenderOptions options, storage::Jobs& jobs);
  ~Sender();
  void start();
  void wake();  // new outbox rows
  void stop();   // after the C-STOREs in progress
  // SIGHUP: take the new destinations and retry policy, stop, start again. Their TLS layers are
  // made first: a certificate that cannot be used throws before anything stops.
  void restart(std::vector<config::Destination> destinations, config::RetryPolicy retry);
  // The destinations as the senders reach them, TLS layers made (dicom/Tls.h); throws
  // Error(BadConfig) naming the file that cannot be used (app::Node::checkCertificates).
  static std::vector<dicom::RemoteAe> remotesFor(const std::vector<config::Destination>& destinations);

 private:
  void startWith(std::vector<dicom::RemoteAe> remotes);
  void loop(const std::string& destination, const dicom::RemoteAe& remote);
  // One C-STORE of a due row and its outcome recorded; false when the outcome could not be.
  bool deliver(const std::string& destination, const dicom::RemoteAe& remote, const storage::OutboxItem& item);
  SenderOptions options_;
  storage::Jobs& jobs_;
  std::vector<std::thread> threads_;
  WakeSignal wake_;
  std::atomic<bool> running_{false};
};

}  // namespace segnode::send
