#include "demail/gateway/config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <Poco/AutoPtr.h>
#include <Poco/Exception.h>
#include <Poco/URI.h>
#include <Poco/Util/IniFileConfiguration.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <map>
#include <set>

namespace demail::gateway {

namespace {

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return std::string(s);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// Poco keeps everything after '=' as the value, so "listen = x ; comment" would include the
// comment. A ';' preceded by whitespace starts a comment; one inside a token (the ';' separators
// of a PKCS#11 URI) does not.
std::string stripInlineComment(const std::string& raw) {
    for (std::size_t i = 1; i < raw.size(); ++i) {
        if (raw[i] == ';' && std::isspace(static_cast<unsigned char>(raw[i - 1]))) {
            return trim(std::string_view(raw).substr(0, i));
        }
    }
    if (!raw.empty() && raw[0] == ';')
        return {};
    return trim(raw);
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

bool isReadableFile(const std::string& path) {
    return ::access(path.c_str(), R_OK) == 0;
}

// The schema: every key the gateway knows, with the function that checks and stores it.
// A missing key keeps the default of the struct in config.h.
using Setter = std::function<std::string(Config&, const std::string& value)>;

std::string expected(const std::string& what, const std::string& got) {
    return "expected " + what + ", got '" + got + "'";
}

Setter hostPort(HostPort* (*field)(Config&)) {
    return [field](Config& c, const std::string& v) -> std::string {
        auto hp = parseHostPort(v);
        if (!hp)
            return expected("HOST:PORT", v);
        *field(c) = *hp;
        return {};
    };
}

Setter text(std::string* (*field)(Config&)) {
    return [field](Config& c, const std::string& v) -> std::string {
        *field(c) = v;
        return {};
    };
}

Setter existingFile(std::string* (*field)(Config&)) {
    return [field](Config& c, const std::string& v) -> std::string {
        if (!v.empty() && !isReadableFile(v))
            return "cannot read file '" + v + "'";
        *field(c) = v;
        return {};
    };
}

Setter boolean(bool* (*field)(Config&)) {
    return [field](Config& c, const std::string& v) -> std::string {
        const std::string l = lower(v);
        if (l == "true" || l == "yes" || l == "on" || l == "1") {
            *field(c) = true;
        } else if (l == "false" || l == "no" || l == "off" || l == "0") {
            *field(c) = false;
        } else {
            return expected("true or false", v);
        }
        return {};
    };
}

// A key whose value must be one of a fixed set of words, each mapped to a field value.
template <typename T>
Setter oneOf(std::vector<std::pair<std::string, T>> choices, std::string wanted,
             T* (*field)(Config&)) {
    return [choices = std::move(choices), wanted = std::move(wanted), field](
               Config& c, const std::string& v) -> std::string {
        for (const auto& [word, value] : choices) {
            if (v == word) {
                *field(c) = value;
                return {};
            }
        }
        return expected(wanted, v);
    };
}

// Comma or space separated names (user and group names: letters, digits, '-', '_', '.').
Setter wordList(std::vector<std::string>* (*field)(Config&)) {
    return [field](Config& c, const std::string& v) -> std::string {
        std::vector<std::string> words;
        std::string w;
        for (std::size_t i = 0; i <= v.size(); ++i) {
            if (i == v.size() || v[i] == ',' || std::isspace(static_cast<unsigned char>(v[i]))) {
                if (!w.empty())
                    words.push_back(w);
                w.clear();
            } else if (std::isalnum(static_cast<unsigned char>(v[i])) || v[i] == '-' ||
                       v[i] == '_' || v[i] == '.') {
                w += v[i];
            } else {
                return expected("user or group names separated by commas", v);
            }
        }
        *field(c) = std::move(words);
        return {};
    };
}

Setter duration(std::chrono::seconds* (*field)(Config&)) {
    return [field](Config& c, const std::string& v) -> std::string {
        auto d = parseDuration(v);
        if (!d || d->count() <= 0)
            return expected("a positive duration such as 90s, 30m, 24h, 2d", v);
        *field(c) = *d;
        return {};
    };
}

Setter absoluteDir(std::string* (*field)(Config&)) {
    return [field](Config& c, const std::string& v) -> std::string {
        if (v.empty() || v[0] != '/')
            return expected("an absolute directory path", v);
        *field(c) = v;
        return {};
    };
}

Setter count(std::uint64_t min, std::uint64_t max, std::size_t* (*field)(Config&)) {
    return [=](Config& c, const std::string& v) -> std::string {
        const auto n = parseUnsigned(v);
        if (!n || *n < min || *n > max)
            return expected(
                "a number between " + std::to_string(min) + " and " + std::to_string(max), v);
        *field(c) = static_cast<std::size_t>(*n);
        return {};
    };
}

const std::map<std::string, Setter>& schema() {
    static const std::map<std::string, Setter> s = {
        {"smtp.listen", hostPort([](Config& c) { return &c.smtp.listen; })},
        {"smtp.submission_listen",
         [](Config& c, const std::string& v) -> std::string {
             if (v.empty()) {
                 c.smtp.submissionListen.reset();
                 return {};
             }
             auto hp = parseHostPort(v);
             if (!hp)
                 return expected("HOST:PORT or empty", v);
             c.smtp.submissionListen = *hp;
             return {};
         }},
        {"smtp.tls_cert", existingFile([](Config& c) { return &c.smtp.tlsCert; })},
        {"smtp.tls_key", existingFile([](Config& c) { return &c.smtp.tlsKey; })},
        {"smtp.require_tls", boolean([](Config& c) { return &c.smtp.requireTls; })},
        {"smtp.relay_networks",
         [](Config& c, const std::string& v) -> std::string {
             std::vector<std::string> nets;
             std::string item;
             for (std::size_t i = 0; i <= v.size(); ++i) {
                 if (i == v.size() || v[i] == ',' ||
                     std::isspace(static_cast<unsigned char>(v[i]))) {
                     if (!item.empty()) {
                         if (!isValidCidr(item))
                             return expected("CIDRs such as 10.0.0.0/8", item);
                         nets.push_back(item);
                         item.clear();
                     }
                 } else {
                     item += v[i];
                 }
             }
             c.smtp.relayNetworks = std::move(nets);
             return {};
         }},
        {"smtp.users_file", existingFile([](Config& c) { return &c.smtp.usersFile; })},
        {"smtp.max_message_size",
         [](Config& c, const std::string& v) -> std::string {
             auto n = parseSize(v);
             if (!n || *n < 1024 || *n > (1ULL << 31))
                 return expected("a size between 1K and 2G", v);
             c.smtp.maxMessageSize = *n;
             return {};
         }},
        {"smtp.max_connections", count(1, 20000, [](Config& c) { return &c.smtp.maxConnections; })},
        {"smtp.max_connections_per_client",
         count(1, 20000, [](Config& c) { return &c.smtp.maxConnectionsPerClient; })},
        {"smtp.max_concurrent_data",
         count(0, 20000, [](Config& c) { return &c.smtp.maxConcurrentData; })},
        {"smtp.hostname", text([](Config& c) { return &c.smtp.hostname; })},
        {"card.reader", text([](Config& c) { return &c.card.reader; })},
        {"card.pkcs11_module", existingFile([](Config& c) { return &c.card.pkcs11Module; })},
        {"card.key_uri",
         [](Config& c, const std::string& v) -> std::string {
             if (!v.empty() && v.rfind("pkcs11:", 0) != 0)
                 return expected("a pkcs11: URI (RFC 7512)", v);
             c.card.keyUri = v;
             return {};
         }},
        // Not checked for readability here: the service reads it through a systemd credential
        // or as its own user; the card layer reports an unreadable PIN file with its path.
        {"card.pin_file", text([](Config& c) { return &c.card.pinFile; })},
        {"card.opensc_conf", text([](Config& c) { return &c.card.openscConf; })},
        {"provider.profile",
         oneOf<std::string>(
             {{"mentana", "mentana"}, {"telekom", "telekom"}, {"t-systems", "t-systems"}},
             "mentana, telekom or t-systems", [](Config& c) { return &c.provider.profile; })},
        {"provider.url",
         [](Config& c, const std::string& v) -> std::string {
             try {
                 Poco::URI uri(v);
                 if (uri.getScheme() != "https" || uri.getHost().empty())
                     return expected("an https:// URL", v);
             } catch (const Poco::Exception&) {
                 return expected("an https:// URL", v);
             }
             c.provider.url = v;
             return {};
         }},
        {"provider.ca_file", existingFile([](Config& c) { return &c.provider.caFile; })},
        {"provider.server_name", text([](Config& c) { return &c.provider.serverName; })},
        {"provider.client_cert", existingFile([](Config& c) { return &c.provider.clientCert; })},
        {"provider.client_key", existingFile([](Config& c) { return &c.provider.clientKey; })},
        {"delivery.relay", hostPort([](Config& c) { return &c.delivery.relay; })},
        {"delivery.tls",
         oneOf<DeliveryTls>(
             {{"required", DeliveryTls::Required}, {"opportunistic", DeliveryTls::Opportunistic}},
             "required or opportunistic", [](Config& c) { return &c.delivery.tls; })},
        {"provider.accounts_file",
         existingFile([](Config& c) { return &c.provider.accountsFile; })},
        {"provider.demail_domains",
         [](Config& c, const std::string& v) -> std::string {
             std::vector<std::string> domains;
             std::string item;
             for (std::size_t i = 0; i <= v.size(); ++i) {
                 if (i == v.size() || v[i] == ',' ||
                     std::isspace(static_cast<unsigned char>(v[i]))) {
                     if (!item.empty()) {
                         if (item.find('.') == std::string::npos ||
                             item.find('@') != std::string::npos)
                             return expected("domains such as de-mail.de", item);
                         domains.push_back(item);
                         item.clear();
                     }
                 } else {
                     item += static_cast<char>(std::tolower(static_cast<unsigned char>(v[i])));
                 }
             }
             if (domains.empty())
                 return expected("at least one domain such as de-mail.de", v);
             c.provider.deMailDomains = std::move(domains);
             return {};
         }},
        {"provider.connections", count(1, 32, [](Config& c) { return &c.provider.connections; })},
        {"provider.poll_interval", duration([](Config& c) { return &c.provider.pollInterval; })},
        {"delivery.postmaster", text([](Config& c) { return &c.delivery.postmaster; })},
        {"delivery.strip_headers",
         [](Config& c, const std::string& v) -> std::string {
             std::vector<std::string> names;
             std::string w;
             for (std::size_t i = 0; i <= v.size(); ++i) {
                 const char ch = i < v.size() ? v[i] : ',';
                 if (ch == ',' || std::isspace(static_cast<unsigned char>(ch))) {
                     if (!w.empty())
                         names.push_back(w);
                     w.clear();
                 } else if (static_cast<unsigned char>(ch) > 32 &&
                            static_cast<unsigned char>(ch) < 127 && ch != ':' &&
                            (w.empty() || w.back() != '*')) {
                     w += ch;
                 } else {
                     return expected("header names separated by commas, '*' only at the end", v);
                 }
             }
             c.delivery.stripHeaders = std::move(names);
             return {};
         }},
        {"delivery.inbound_max_attempts",
         count(1, 100, [](Config& c) { return &c.delivery.inboundMaxAttempts; })},
        {"delivery.ca_file", existingFile([](Config& c) { return &c.delivery.caFile; })},
        {"queue.dir", absoluteDir([](Config& c) { return &c.queue.dir; })},
        {"queue.max_age", duration([](Config& c) { return &c.queue.maxAge; })},
        {"queue.delay_warning", duration([](Config& c) { return &c.queue.delayWarning; })},
        {"queue.retry_min", duration([](Config& c) { return &c.queue.retryMin; })},
        {"queue.retry_max", duration([](Config& c) { return &c.queue.retryMax; })},
        {"certpromote.store", absoluteDir([](Config& c) { return &c.certpromote.store; })},
        {"certpromote.group", text([](Config& c) { return &c.certpromote.group; })},
        {"certpromote.read_users", wordList([](Config& c) { return &c.certpromote.readUsers; })},
        {"certpromote.read_groups", wordList([](Config& c) { return &c.certpromote.readGroups; })},
        {"certpromote.ca_file", existingFile([](Config& c) { return &c.certpromote.caFile; })},
        {"health.listen", hostPort([](Config& c) { return &c.health.listen; })},
    };
    return s;
}

std::string sectionKey(const std::string& dotted) {
    const auto dot = dotted.find('.');
    return "[" + dotted.substr(0, dot) + "] " + dotted.substr(dot + 1);
}

}  // namespace

std::string HostPort::toString() const {
    if (host.find(':') != std::string::npos)
        return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
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

ConfigResult loadConfig(const std::string& path) {
    ConfigResult result;
    {
        std::ifstream probe(path);
        if (!probe) {
            result.error = "cannot read configuration file '" + path + "'";
            return result;
        }
    }
    Poco::AutoPtr<Poco::Util::IniFileConfiguration> ini;
    try {
        ini = new Poco::Util::IniFileConfiguration(path);
    } catch (const Poco::Exception& e) {
        result.error = "cannot parse configuration file '" + path + "': " + e.displayText();
        return result;
    }

    Config config;
    config.path = path;
    const auto& known = schema();
    static const std::set<std::string> sections = {"smtp",  "card",   "provider",   "delivery",
                                                   "queue", "health", "certpromote"};
    Poco::Util::AbstractConfiguration::Keys sectionNames;
    ini->keys(sectionNames);
    for (const auto& rawSection : sectionNames) {
        const std::string section = lower(rawSection);
        if (!sections.count(section)) {
            result.error = "[" + rawSection +
                           "]: unknown section (known: smtp, card, provider, "
                           "delivery, queue, health, certpromote)";
            return result;
        }
        Poco::Util::AbstractConfiguration::Keys keys;
        ini->keys(rawSection, keys);
        for (const auto& rawKey : keys) {
            const std::string dotted = section + "." + lower(rawKey);
            const auto it = known.find(dotted);
            if (it == known.end()) {
                result.error = sectionKey(dotted) + ": unknown key (see docs/configuration.md)";
                return result;
            }
            const std::string value =
                stripInlineComment(ini->getRawString(rawSection + "." + rawKey));
            if (std::string err = it->second(config, value); !err.empty()) {
                result.error = sectionKey(dotted) + ": " + err;
                return result;
            }
        }
    }

    // Cross-key rules.
    if (config.smtp.tlsCert.empty() != config.smtp.tlsKey.empty()) {
        result.error = "[smtp] tls_cert/tls_key: set both or neither";
        return result;
    }
    if (config.smtp.requireTls && config.smtp.tlsCert.empty()) {
        result.error = "[smtp] require_tls: true needs tls_cert and tls_key for STARTTLS";
        return result;
    }
    if (config.queue.retryMin > config.queue.retryMax) {
        result.error = "[queue] retry_min: must not be larger than retry_max";
        return result;
    }
    if (config.smtp.submissionListen && config.smtp.usersFile.empty()) {
        result.error = "[smtp] submission_listen: needs users_file for AUTH";
        return result;
    }
    if (config.provider.url.empty()) {
        result.error = "[provider] url: missing (the provider's https:// endpoint)";
        return result;
    }
    if (config.provider.clientKey.empty() && config.card.keyUri.empty()) {
        result.error = "[card] key_uri: missing (the card key's pkcs11: URI)";
        return result;
    }
    if (!config.provider.clientKey.empty() && config.provider.clientCert.empty()) {
        result.error = "[provider] client_cert: needed when client_key is set";
        return result;
    }
    result.config = std::move(config);
    return result;
}

}  // namespace demail::gateway
