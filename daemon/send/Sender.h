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
  // SIGHUP: stop, take the new destinations and retry policy, start again.
  void restart(std::vector<config::Destination> destinations, config::RetryPolicy retry);

 private:
  void loop(const std::string& destination, const dicom::RemoteAe& remote);
  SenderOptions options_;
  storage::Jobs& jobs_;
  std::vector<std::thread> threads_;
  WakeSignal wake_;
  std::atomic<bool> running_{false};
};

}  // namespace segnode::send
