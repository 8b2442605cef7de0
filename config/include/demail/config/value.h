// The value forms of gateway.ini (docs/configuration.md "Value forms"), parsed the same way for
// every section and every binary: HOST:PORT, durations, sizes, booleans, CIDRs and lists.
// Each parser answers a value or nothing; the caller names the key in its error.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace demail::config {

struct HostPort {
    std::string host;
    std::uint16_t port = 0;
    std::string toString() const;  // "[v6]:port" for IPv6 hosts
    bool operator==(const HostPort&) const = default;
};

std::optional<HostPort> parseHostPort(const std::string& text);              // host:25, [::1]:25
std::optional<std::chrono::seconds> parseDuration(const std::string& text);  // 90s, 30m, 24h, 2d
std::optional<std::uint64_t> parseSize(const std::string& text);             // 20971520, 20M, 1G
std::optional<bool> parseBool(const std::string& text);             // true/false/yes/no/on/off/1/0
std::optional<std::uint64_t> parseUnsigned(std::string_view text);  // digits only
bool isValidCidr(const std::string& text);                          // IPv4 or IPv6 CIDR

// Items separated by commas and/or white space; empty items are dropped.
std::vector<std::string> splitList(std::string_view text);

// The written form of a duration, as the documentation writes defaults: 2d, 24h, 30m, 90s.
std::string formatDuration(std::chrono::seconds d);

}  // namespace demail::config
