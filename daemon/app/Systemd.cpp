#include "daemon/app/Systemd.h"

#include <systemd/sd-daemon.h>

namespace segnode::app {
namespace {
void notify(const std::string& state) { sd_notify(0, state.c_str()); }
}  // namespace

void notifyReady(const std::string& status) { notify("READY=1\nSTATUS=" + status); }
void notifyStatus(const std::string& status) { notify("STATUS=" + status); }
void notifyReloading() { notify("RELOADING=1\nSTATUS=reloading the configuration"); }
void notifyStopping() { notify("STOPPING=1\nSTATUS=stopping: finishing associations and the running job"); }
void notifyWatchdog() { notify("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdogInterval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec);
  return std::nullopt;
}

}  // namespace segnode::app
