#pragma once
// systemd's service notifications (sd_notify(3)), for Type=notify: READY once the node takes
// images, STATUS lines, RELOADING/READY around a SIGHUP, STOPPING, and the watchdog ping. Outside
// systemd (no NOTIFY_SOCKET) every call is a no-op.
#include <chrono>
#include <optional>
#include <string>

namespace segnode::app {

void notifyReady(const std::string& status);
void notifyStatus(const std::string& status);
void notifyReloading();
void notifyStopping();
void notifyWatchdog();
// The unit's WatchdogSec, when systemd watches this process.
std::optional<std::chrono::microseconds> watchdogInterval();

}  // namespace segnode::app
