#pragma once
// Series assembly, routing's input: a series with no new instance for the quiet period becomes ready
// exactly once per generation. Driven by Asio timers (one per receiving series), never by
// polling; the database decides, so a restart picks up where it stopped.
#include <boost/asio.hpp>

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
  void arm(const std::string& seriesUid, int64_t delayMs);
  void check(const std::string& seriesUid);

  boost::asio::io_context& io_;
  storage::Index& index_;
  int64_t quietMs_;
  ReadyFn onReady_;
  std::map<std::string, std::unique_ptr<boost::asio::steady_timer>> timers_;  // touched on io_'s thread only
};

}  // namespace segnode::routing
