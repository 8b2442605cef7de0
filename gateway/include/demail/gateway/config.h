// The gateway's configuration: the typed view of gateway.ini (DESIGN.md "Configuration") that
// the daemon and demailctl use. The file is read by the config module (demail/config/file.h);
// the sections the gateway owns ([smtp], [provider], [delivery], [queue], [health]) are declared
// in config.cpp, [card] by smartcard/ and [certpromote] by certpromote/. A bad value yields one
// line naming the section and key, e.g.
//   "[smtp] listen: expected HOST:PORT, got 'localhost'"
// Secrets never live here: the card PIN comes from [card] pin_file, passwords from users_file.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "demail/certpromote/config.h"
#include "demail/config/schema.h"
#include "demail/config/value.h"
#include "demail/smartcard/card_config.h"

namespace demail::gateway {

using HostPort = config::HostPort;
using CardConfig = smartcard::CardConfig;
using CertPromoteConfig = certpromote::CertPromoteConfig;

struct SmtpConfig {
    HostPort listen{"127.0.0.1", 2525};
    std::optional<HostPort> submissionListen;  // AUTH submission port; empty: off
    std::string tlsCert;
    std::string tlsKey;
    bool requireTls = true;
    std::vector<std::string> relayNetworks{"127.0.0.0/8"};  // validated CIDRs
    std::string usersFile;
    // Gross: the encoded message as SMTP carries it (SIZE=). High enough for the TR's net limit
    // (20 MiB of attachments are about 27 MiB in base64).
    std::uint64_t maxMessageSize = 31457280;
    // Net (TR PVD_FU §4.1): decoded text and attachments, checked at the end of DATA.
    std::uint64_t maxNetSize = 20971520;
    std::size_t maxConnections = 1000;         // sessions at once (one thread each)
    std::size_t maxConnectionsPerClient = 50;  // from one address, like Postfix's default
    std::size_t maxConcurrentData = 32;        // sessions in DATA at once (0: no limit)
    std::string hostname;  // EHLO/Received name; default: the machine's host name
    // While this gateway cannot submit (card absent, PIN rejected, provider unreachable): accept
    // and queue (one appliance), or refuse new mail with a 4xx at MAIL FROM, so that an internal
    // MTA with several gateways as next hops hands it to a peer (docs/operations.md, Redundancy).
    enum class WhenPaused { Queue, Refuse };
    WhenPaused whenPaused = WhenPaused::Queue;
};

struct ProviderConfig {
    std::string profile = "mentana";  // a connector profile: mentana | telekom | t-systems ...
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
    // The provider's signature trust anchor (PEM; the CA of the certificates it signs
    // confirmations and absenderbestätigt messages with) and, optionally, its CRL. Empty: the
    // signatures are checked against the certificates they carry only ("unverified").
    std::string signatureCa;
    std::string signatureCrl;
    // 64 hex digits shared by every gateway of the organisation: the internal sender goes sealed
    // into the private-id, so that a peer can route a confirmation it fetched (empty: off).
    std::string privateIdKeyFile;
    // Recipient domains that count as De-Mail (and everything below them). TR ACM_FU §2.1.2 gives
    // every provider de-mail.de and lets it have its own DMDA domain or a Sammeldomäne besides.
    std::vector<std::string> deMailDomains{"de-mail.de"};
    // The domains the provider lists (GET /v1/accounts "domains", our account domains) count too;
    // false pins the list to deMailDomains (docs/configuration.md says why the default is true).
    bool deMailDomainsFromProvider = true;
    // Ask the provider at RCPT whether a recipient exists (GET /v1/addresses/{address}), with a
    // cache; unknown or closed: 550 5.1.1; the provider cannot be asked: 451 4.4.3, unless
    // addressCheckUnavailable is Accept.
    bool addressCheck = true;
    std::chrono::seconds addressCheckTimeout{5};        // how long one RCPT waits for the answer
    std::chrono::seconds addressCacheTtl{3600};         // a known address is asked again after this
    std::chrono::seconds addressCacheNegativeTtl{300};  // an unknown one after this
    std::size_t addressCacheSize = 10000;               // addresses remembered at most
    enum class Unavailable { Defer, Accept };
    Unavailable addressCheckUnavailable = Unavailable::Defer;
    std::chrono::seconds pollInterval{60};  // how often the provider inbox is fetched
    // Keep-alive HTTPS connections to the provider, and so messages submitted at the same time.
    // Each new connection costs one card signature.
    std::size_t connections = 4;
    // Outbound HTTP proxy (CONNECT tunnel) to reach the provider; empty host: direct. The password
    // is only ever in proxyPasswordFile, never in the INI.
    HostPort proxy;
    std::string proxyUser;
    std::string proxyPasswordFile;
};

// Who may send as which account, with which options, how many a day (gateway/sending_policy.h).
struct SendingConfig {
    std::string policyFile;  // empty: the built-in policy (mapped senders, standard options)
    std::size_t senderDailyLimit = 0;   // per sender address a day; 0: no limit
    std::size_t accountDailyLimit = 0;  // per account a day; 0: none (level "normal": 100)
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
    // The gateway's working state, pruned while it runs (not the evidence archive): the sent
    // journal (queue id -> sender, for routing confirmations back) and the inbound ledger
    // (provider ids already delivered, against re-delivery of an item offered again).
    std::chrono::seconds sentRetention{120 * 24 * 3600};
    std::chrono::seconds inboundRetention{30 * 24 * 3600};
};

// The evidence archive (archive/README.md): what was submitted, answered and retrieved.
struct ArchiveConfig {
    std::string dir;  // empty: <[queue] dir>/archive
    // Whole months older than this are removed (and the removal recorded). Ten years: the longest
    // period German law asks business records to be kept (HGB §257, AO §147).
    std::chrono::seconds retention{3650LL * 24 * 3600};
    std::uint64_t minFree = 1ULL << 30;  // below this free space the archive is not ready
};

struct HealthConfig {
    HostPort listen{"127.0.0.1", 8025};
};

struct Config {
    std::string path;  // the file it came from
    SmtpConfig smtp;
    CardConfig card;
    ProviderConfig provider;
    SendingConfig sending;  // read with [smtp]: the intake applies it
    DeliveryConfig delivery;
    QueueConfig queue;
    ArchiveConfig archive;  // read with [queue]: it lives beside the spool by default
    HealthConfig health;
    CertPromoteConfig certpromote;
};

struct ConfigResult {
    std::optional<Config> config;
    std::string error;  // one line naming the key; empty when config is set
    bool ok() const { return config.has_value(); }
};

// The sections a command reads. Only these are checked in full (values, and the rules between
// keys that lie within them); the others keep their defaults. Every section and key name in the
// file is checked whatever a command reads (config::File).
struct Sections {
    bool smtp = false;
    bool card = false;
    bool provider = false;
    bool delivery = false;
    bool queue = false;
    bool health = false;
    bool certpromote = false;
    static constexpr Sections all() { return {true, true, true, true, true, true, true}; }
};

// Loads the file and checks the sections `use` names (the daemon: all of them).
ConfigResult loadConfig(const std::string& path, Sections use = Sections::all());

// The evidence archive's directory: [archive] dir, else <[queue] dir>/archive.
std::string archiveDir(const Config& config);

// Where processes that log in record a PIN the card rejected: [card] pin_rejection_file, else
// <[queue] dir>/card-pin-rejected.
std::string pinRejectionPath(const Config& config);

// Every section's keys with their value forms and defaults, for the documentation check.
std::vector<config::SectionInfo> configSchema();

}  // namespace demail::gateway
