#include "daemon/routing/SeriesAssembler.h"

#include "common/Log.h"
#include "storage/Db.h"

namespace segnode::routing {

SeriesAssembler::SeriesAssembler(boost::asio::io_context& io, storage::Index& index, double quietSeconds, ReadyFn onReady)
    : io_(io), index_(index), quietMs_(int64_t(quietSeconds * 1000)), onReady_(std::move(onReady)) {}

void SeriesAssembler::noteActivity(const std::string& seriesUid) {
  boost::asio::post(io_, [this, seriesUid] { arm(seriesUid, quietMs_); });
}

void SeriesAssembler::resumeReceiving() {
  boost::asio::post(io_, [this] {
    for (const auto& s : index_.seriesInState(storage::SeriesState::Receiving)) {
      int64_t left = std::max<int64_t>(0, quietMs_ - (storage::nowMs() - s.lastReceivedMs));
      arm(s.uid, left);
    }
  });
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
  int64_t waitMs = 0;
  try {
    if (index_.markReadyIfQuiet(seriesUid, quietMs_, storage::nowMs(), &waitMs)) {
      timers_.erase(seriesUid);
      auto s = index_.series(seriesUid);
      if (s) {
        SEGNODE_LOG(Info, Route, "series " << seriesUid << " ready (generation " << s->generation << ", "
                                           << s->instanceCount << " instances)");
        if (onReady_) onReady_(*s);
      }
      return;
    }
  } catch (const std::exception& e) {
    SEGNODE_LOG(Error, Db, "series " << seriesUid << ": readiness check failed: " << e.what() << "; retrying");
    waitMs = 1000;
  }
  if (waitMs > 0) arm(seriesUid, waitMs);  // an instance arrived while the timer ran
  else timers_.erase(seriesUid);
}

}  // namespace segnode::routing
