#pragma once
// Series assembly, routing's input: a series with no new instance for the quiet period becomes ready
// exactly once per generation. Driven by Asio timers (one per receiving series), never by
// polling. Quiet is measured on the monotonic clock from the last noted activity, so an NTP step
// makes no series ready early or late; after a restart the stored receive times (wall clock, the
// only clock that outlives the process) start the count, clamped to one quiet period.
#include <boost/asio.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "storage/Index.h"

namespace segnode::routing {

class SeriesAssembler {
 public:
  using ReadyFn = std::function<void(const storage::SeriesInfo&)>;
  SeriesAssembler(boost::asio::io_context& io, storage::Index& index, double quietSeconds, ReadyFn onReady);

  void noteActivity(const std::string& seriesUid);  // thread-safe; (re)starts the quiet period
  void resumeReceiving();                           // after a restart: arm timers for every receiving series

 private:
  void resume();  // on io_'s thread; a failed read of the receiving series is retried after a second
  void arm(const std::string& seriesUid, int64_t delayMs);
  void check(const std::string& seriesUid);
  int64_t quietLeftMs(const std::string& seriesUid);

  boost::asio::io_context& io_;
  storage::Index& index_;
  int64_t quietMs_;
  ReadyFn onReady_;
  std::map<std::string, std::unique_ptr<boost::asio::steady_timer>> timers_;  // touched on io_'s thread only
  boost::asio::steady_timer resumeTimer_;
  std::mutex activityMutex_;
  std::map<std::string, std::chrono::steady_clock::time_point> lastActivity_;
};

}  // namespace segnode::routing
