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
// A reload starts: systemd shows the unit "reloading" until reloaded() (READY=1), and
// `systemctl reload` waits for that. Every reloading() must be followed by reloaded(), also
// when the reload failed and the old settings are kept.
void reloading();
void reloaded(const std::string& status);
void watchdog();
// Half the WatchdogSec= of the unit, the interval to ping at; nothing when no watchdog is set.
std::optional<std::chrono::microseconds> watchdogInterval();

}  // namespace demail::gateway::systemd
