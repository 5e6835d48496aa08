#pragma once
// What the daemon knows about itself for systemd and /readyz, without asking the threads:
// - Heartbeats: each long-lived thread (the io loop, every worker) beats while it makes progress
//   (a worker on every inference tile); a busy thread whose beat is older than the limit is stuck,
//   and the watchdog ping is withheld so that systemd restarts the node. A thread waiting for
//   work says so (idle) and is never stuck.
// - listeningOn(port): whether this process holds a listening TCP socket on the port (from
//   /proc, so no probe connection reaches the DICOM listener).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace segnode {

class Heartbeats {
 public:
  int add(std::string name);  // returns the id to beat with
  void beat(int id);               // making progress (and busy)
  void idle(int id, bool waiting);  // waiting for work: not stuck however long it waits
  std::vector<std::string> staleSince(std::chrono::steady_clock::duration limit) const;  // names older than limit

 private:
  struct Entry {
    std::string name;
    std::atomic<int64_t> lastNs{0};
    std::atomic<bool> waiting{false};
  };
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;  // deque: atomics cannot move
};

bool listeningOn(uint16_t port);

}  // namespace segnode
