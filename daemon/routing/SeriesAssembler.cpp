#include "daemon/routing/SeriesAssembler.h"

#include <algorithm>

#include "common/Log.h"
#include "storage/Db.h"

namespace segnode::routing {

SeriesAssembler::SeriesAssembler(boost::asio::io_context& io, storage::Index& index, double quietSeconds, ReadyFn onReady)
    : io_(io), index_(index), quietMs_(int64_t(quietSeconds * 1000)), onReady_(std::move(onReady)), resumeTimer_(io) {}

void SeriesAssembler::noteActivity(const std::string& seriesUid) {
  {
    std::lock_guard<std::mutex> lock(activityMutex_);
    lastActivity_[seriesUid] = std::chrono::steady_clock::now();
  }
  boost::asio::post(io_, [this, seriesUid] { arm(seriesUid, quietMs_); });
}

void SeriesAssembler::resumeReceiving() {
  boost::asio::post(io_, [this] { resume(); });
}

// A series left receiving by the last run has no timer until this read succeeds: a failed read
// is retried rather than thrown, or the series would wait for an instance that may never come.
void SeriesAssembler::resume() {
  std::vector<storage::SeriesInfo> receiving;
  try {
    receiving = index_.seriesInState(storage::SeriesState::Receiving);
  } catch (const std::exception& e) {
    SEGNODE_LOG(Error, Db, "the series still receiving before the restart could not be listed: " << e.what() << "; retrying");
    resumeTimer_.expires_after(std::chrono::seconds(1));
    resumeTimer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) resume();
    });
    return;
  }
  for (const auto& s : receiving) {
    int64_t elapsed = std::clamp<int64_t>(storage::nowMs() - s.lastReceivedMs, 0, quietMs_);
    {
      std::lock_guard<std::mutex> lock(activityMutex_);
      lastActivity_.emplace(s.uid, std::chrono::steady_clock::now() - std::chrono::milliseconds(elapsed));
    }
    arm(s.uid, quietMs_ - elapsed);
  }
}

// Milliseconds of quiet still to wait for (0: quiet now).
int64_t SeriesAssembler::quietLeftMs(const std::string& seriesUid) {
  std::lock_guard<std::mutex> lock(activityMutex_);
  auto it = lastActivity_.find(seriesUid);
  if (it == lastActivity_.end()) return 0;
  auto quietFor = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - it->second);
  return std::max<int64_t>(0, quietMs_ - quietFor.count());
}

void SeriesAssembler::arm(const std::string& seriesUid, int64_t delayMs) {
  auto& timer = timers_[seriesUid];
  if (!timer) timer = std::make_unique<boost::asio::steady_timer>(io_);
  timer->expires_after(std::chrono::milliseconds(delayMs));
  timer->async_wait([this, seriesUid](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted) return;  // re-armed by a newer instance
    check(seriesUid);
  });
}

void SeriesAssembler::check(const std::string& seriesUid) {
  if (int64_t left = quietLeftMs(seriesUid); left > 0) return arm(seriesUid, left);  // an instance arrived meanwhile
  try {
    if (index_.markReady(seriesUid)) {
      auto s = index_.series(seriesUid);
      if (s) {
        SEGNODE_LOG(Info, Route, "series " << seriesUid << " ready (generation " << s->generation << ", "
                                           << s->instanceCount << " instances)");
        if (onReady_) onReady_(*s);
      }
    }
  } catch (const std::exception& e) {
    SEGNODE_LOG(Error, Db, "series " << seriesUid << ": readiness check failed: " << e.what() << "; retrying");
    return arm(seriesUid, 1000);
  }
  timers_.erase(seriesUid);
  std::lock_guard<std::mutex> lock(activityMutex_);
  lastActivity_.erase(seriesUid);
}

}  // namespace segnode::routing
