#include "demail/config/value.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace demail::config {

std::string HostPort::toString() const {
    if (host.find(':') != std::string::npos)
        return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::optional<std::uint64_t> parseUnsigned(std::string_view s) {
    std::uint64_t v = 0;
    if (s.empty())
        return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size())
        return std::nullopt;
    return v;
}

std::optional<HostPort> parseHostPort(const std::string& text) {
    std::string host;
    std::string port;
    if (!text.empty() && text[0] == '[') {  // [v6]:port
        const auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon)
            return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    const auto p = parseUnsigned(port);
    if (host.empty() || !p || *p == 0 || *p > 65535)
        return std::nullopt;
    for (char ch : host) {
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':' ||
              ch == '_'))
            return std::nullopt;
    }
    return HostPort{host, static_cast<std::uint16_t>(*p)};
}

std::optional<std::chrono::seconds> parseDuration(const std::string& text) {
    if (text.empty())
        return std::nullopt;
    std::uint64_t mult = 1;
    std::string_view digits(text);
    switch (text.back()) {
        case 's':
            mult = 1;
            digits.remove_suffix(1);
            break;
        case 'm':
            mult = 60;
            digits.remove_suffix(1);
            break;
        case 'h':
            mult = 3600;
            digits.remove_suffix(1);
            break;
        case 'd':
            mult = 86400;
            digits.remove_suffix(1);
            break;
        default:
            break;
    }
    const auto n = parseUnsigned(digits);
    if (!n || *n > 365ULL * 86400)
        return std::nullopt;
    return std::chrono::seconds(static_cast<std::int64_t>(*n * mult));
}

std::optional<std::uint64_t> parseSize(const std::string& text) {
    if (text.empty())
        return std::nullopt;
    std::uint64_t mult = 1;
    std::string_view digits(text);
    switch (std::toupper(static_cast<unsigned char>(text.back()))) {
        case 'K':
            mult = 1ULL << 10;
            digits.remove_suffix(1);
            break;
        case 'M':
            mult = 1ULL << 20;
            digits.remove_suffix(1);
            break;
        case 'G':
            mult = 1ULL << 30;
            digits.remove_suffix(1);
            break;
        default:
            break;
    }
    const auto n = parseUnsigned(digits);
    if (!n || *n > (1ULL << 40) / mult)
        return std::nullopt;
    return *n * mult;
}

std::optional<bool> parseBool(const std::string& text) {
    std::string l = text;
    std::transform(l.begin(), l.end(), l.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (l == "true" || l == "yes" || l == "on" || l == "1")
        return true;
    if (l == "false" || l == "no" || l == "off" || l == "0")
        return false;
    return std::nullopt;
}

bool isValidCidr(const std::string& text) {
    const auto slash = text.find('/');
    if (slash == std::string::npos)
        return false;
    const std::string addr = text.substr(0, slash);
    const auto bits = parseUnsigned(std::string_view(text).substr(slash + 1));
    unsigned char buf[16];
    if (::inet_pton(AF_INET, addr.c_str(), buf) == 1)
        return bits && *bits <= 32;
    if (::inet_pton(AF_INET6, addr.c_str(), buf) == 1)
        return bits && *bits <= 128;
    return false;
}

std::vector<std::string> splitList(std::string_view text) {
    std::vector<std::string> items;
    std::string item;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == ',' ||
            std::isspace(static_cast<unsigned char>(text[i]))) {
            if (!item.empty())
                items.push_back(std::move(item));
            item.clear();
        } else {
            item += text[i];
        }
    }
    return items;
}

std::string formatDuration(std::chrono::seconds d) {
    const auto s = d.count();
    // Whole days from two days up (24h reads better than 1d), then hours, minutes up from an
    // hour's worth (60s reads better than 1m), seconds.
    if (s >= 2 * 86400 && s % 86400 == 0)
        return std::to_string(s / 86400) + "d";
    if (s >= 3600 && s % 3600 == 0)
        return std::to_string(s / 3600) + "h";
    if (s > 60 && s % 60 == 0)
        return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

}  // namespace demail::config
