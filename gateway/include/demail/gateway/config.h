// The gateway's configuration: one INI file (DESIGN.md "Configuration"), every key checked at
// load time. A bad value yields one line naming the section and key, e.g.
//   "[smtp] listen: expected HOST:PORT, got 'localhost'"
// Secrets never live here: the card PIN comes from [card] pin_file, passwords from users_file.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace demail::gateway {

struct HostPort {
    std::string host;
    std::uint16_t port = 0;
    std::string toString() const;
};

struct SmtpConfig {
    HostPort listen{"127.0.0.1", 2525};
    std::optional<HostPort> submissionListen;  // AUTH submission port; empty: off
    std::string tlsCert;
    std::string tlsKey;
    bool requireTls = true;
    std::vector<std::string> relayNetworks{"127.0.0.0/8"};  // validated CIDRs
    std::string usersFile;
    std::uint64_t maxMessageSize = 20971520;
    std::size_t maxConnections = 1000;         // sessions at once (one thread each)
    std::size_t maxConnectionsPerClient = 50;  // from one address, like Postfix's default
    std::size_t maxConcurrentData = 32;        // sessions in DATA at once (0: no limit)
    std::string hostname;  // EHLO/Received name; default: the machine's host name
};

struct CardConfig {
    std::string reader;  // substring of the PC/SC reader name; empty: first reader with a card
    std::string pkcs11Module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
    std::string keyUri;
    std::string pinFile = "/etc/demail-gateway/card.pin";
    // OpenSC configuration for the daemon: turns OpenSC's PIN cache off (deploy/opensc.conf).
    std::string openscConf = "/usr/share/demail-gateway/opensc.conf";
};

struct ProviderConfig {
    std::string profile = "mentana";  // mentana | telekom | t-systems
    std::string url;
    std::string caFile;
    std::string serverName;  // empty: host of url
    // PEM client certificate. Empty: the certificate that matches the card key (from the card).
    std::string clientCert;
    // PEM client key instead of the card. For tests and lab set-ups only; production uses the card.
    std::string clientKey;
    // Which internal senders send as which De-Mail account: lines "<address or @domain> <account>".
    // Empty: a sender must use the account address itself.
    std::string accountsFile;
    // Recipient domains that count as De-Mail (and everything below them), besides the domains
    // of our own accounts. All De-Mail domains are below de-mail.de (TR ACM_FU §2.1.2).
    std::vector<std::string> deMailDomains{"de-mail.de"};
    std::chrono::seconds pollInterval{60};  // how often the provider inbox is fetched
    // Keep-alive HTTPS connections to the provider, and so messages submitted at the same time.
    // Each new connection costs one card signature.
    std::size_t connections = 4;
};

enum class DeliveryTls { Required, Opportunistic };

struct DeliveryConfig {
    HostPort relay{"127.0.0.1", 25};
    DeliveryTls tls = DeliveryTls::Required;
    // CA bundle to verify the relay's certificate. Empty: encrypt without verifying, as
    // Postfix's smtp_tls_security_level=encrypt does inside an organisation.
    std::string caFile;
    // Who gets inbound mail the internal server refuses for good (it cannot go back to De-Mail).
    std::string postmaster;
    // Header names (a trailing '*' = prefix) removed from inbound mail because internal systems
    // trust them; unset: connector::defaultInternalTrustHeaders() (docs/configuration.md).
    std::optional<std::vector<std::string>> stripHeaders;
    // Failures of one inbound item (crash, exception, refusal by relay and postmaster) before it
    // is quarantined and acknowledged.
    std::size_t inboundMaxAttempts = 5;
};

struct QueueConfig {
    std::string dir = "/var/spool/demail-gateway";
    std::chrono::seconds maxAge{24 * 3600};
    std::chrono::seconds delayWarning{4 * 3600};
    // Backoff between submission attempts after a retryable failure: starts at retryMin, doubles,
    // capped at retryMax, with jitter (gateway/retry_policy.h).
    std::chrono::seconds retryMin{60};
    std::chrono::seconds retryMax{1800};
};

struct CertPromoteConfig {
    std::string store = "/var/lib/demail-gateway/certs";
    std::string group = "demail-gateway";  // owning group of the store files
    std::vector<std::string> readUsers;    // extra users granted read by ACL
    std::vector<std::string> readGroups;   // extra groups granted read by ACL
    std::string caFile;                    // chain check; empty: none
};

struct HealthConfig {
    HostPort listen{"127.0.0.1", 8025};
};

struct Config {
    std::string path;  // the file it came from
    SmtpConfig smtp;
    CardConfig card;
    ProviderConfig provider;
    DeliveryConfig delivery;
    QueueConfig queue;
    HealthConfig health;
    CertPromoteConfig certpromote;
};

struct ConfigResult {
    std::optional<Config> config;
    std::string error;  // one line naming the key; empty when config is set
    bool ok() const { return config.has_value(); }
};

inline constexpr const char* kDefaultConfigPath = "/etc/demail-gateway/gateway.ini";

// Loads and validates the file. Unknown sections or keys are errors (a typo must not silently
// fall back to a default).
ConfigResult loadConfig(const std::string& path);

// The parsers the loader uses, exposed for tests and for other modules' option parsing.
std::optional<HostPort> parseHostPort(const std::string& text);
std::optional<std::chrono::seconds> parseDuration(const std::string& text);  // 90s, 30m, 24h, 2d
std::optional<std::uint64_t> parseSize(const std::string& text);             // 20971520, 20M, 1G
bool isValidCidr(const std::string& text);                                   // IPv4 or IPv6 CIDR

}  // namespace demail::gateway
