#pragma once
// The node's one Asio thread runs the series assembler's quiet periods, retention, the SIGHUP and
// SIGTERM handlers, the heartbeat tick and the HTTP endpoints. An exception that escapes one of
// their handlers would leave io_context::run() and, uncaught in that thread, terminate the
// process: every association in flight would be cut for one failed handler. Asio lets run() be
// called again after a handler threw (the rest of the queue is intact), so the loop reports the
// failure and goes on. A handler that re-arms itself (the tick) and threw is not re-armed: its
// heartbeat goes stale and the watchdog (/readyz, systemd's WatchdogSec) says so.
#include <boost/asio/io_context.hpp>
#include <exception>
#include <functional>

namespace segnode::app {

// Runs `io` until it runs out of work or is stopped; `failed` is told of each handler that threw.
inline void runIoLoop(boost::asio::io_context& io, const std::function<void(const char* what)>& failed) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      failed(e.what());
    } catch (...) {
      failed("an exception of unknown type");
    }
  }
}

}  // namespace segnode::app
