#include "demail/gateway/systemd_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdint>

namespace demail::gateway::systemd {
namespace {
void notify(const std::string& text) {
    sd_notify(0, text.c_str());
}
std::string oneLine(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r')
            c = ' ';
    return s;
}
}  // namespace

void ready(const std::string& s) {
    notify("READY=1\nSTATUS=" + oneLine(s));
}
void status(const std::string& s) {
    notify("STATUS=" + oneLine(s));
}
void stopping(const std::string& s) {
    notify("STOPPING=1\nSTATUS=" + oneLine(s));
}
void reloading() {
    // MONOTONIC_USEC: systemd 253 and later match the reload to this message with it.
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1000000u +
                      static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
    notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}
void reloaded(const std::string& s) {
    notify("READY=1\nSTATUS=" + oneLine(s));
}
void watchdog() {
    notify("WATCHDOG=1");
}
std::optional<std::chrono::microseconds> watchdogInterval() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        return std::chrono::microseconds(usec / 2);
    return std::nullopt;
}

}  // namespace demail::gateway::systemd
