// sd_notify(3) for Type=notify: READY, STATUS lines an operator reads in `systemctl status`,
// WATCHDOG keep-alives and STOPPING. Does nothing when not started by systemd (NOTIFY_SOCKET
// unset).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace demail::gateway::systemd {

void ready(const std::string& status);
void status(const std::string& status);
void stopping(const std::string& status);
void reloading();
void watchdog();
// Half the WatchdogSec= of the unit, the interval to ping at; nothing when no watchdog is set.
std::optional<std::chrono::microseconds> watchdogInterval();

}  // namespace demail::gateway::systemd
