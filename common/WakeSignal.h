#pragma once
// Wakes threads that sleep until there is new work. Take a ticket *before* looking for work,
// then wait with it: a notify that lands between the look and the wait is not lost.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace segnode {

class WakeSignal {
 public:
  uint64_t ticket() {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }
  void notify() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++count_;
    cv_.notify_all();
  }
  // Returns when notify() was called after `ticket` was taken, `stop()` holds, or `max` passed.
  void wait(uint64_t ticket, std::chrono::milliseconds max, const std::function<bool()>& stop) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, max, [&] { return count_ != ticket || stop(); });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t count_ = 0;
};

}  // namespace segnode
