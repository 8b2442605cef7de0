#include "demail/gateway/config.h"

#include <Poco/Exception.h>
#include <Poco/URI.h>

#include <cctype>

#include "demail/config/file.h"
#include "demail/connector/message/inbound_prepare.h"
#include "demail/gateway/spool_layout.h"

namespace demail::gateway {

namespace {

// The schemas of the sections the gateway owns, Postfix-style parameter tables: every key with
// its value form and range. A key the file does not set keeps the default of the struct in
// config.h.

const config::Section<SmtpConfig>& smtpSection() {
    using C = SmtpConfig;
    static const config::Section<SmtpConfig> s{
        "smtp",
        {
            config::hostPort("listen", &C::listen),
            config::optionalHostPort("submission_listen", &C::submissionListen),
            config::readableFile("tls_cert", &C::tlsCert),
            config::readableFile("tls_key", &C::tlsKey),
            config::boolean("require_tls", &C::requireTls),
            config::cidrList("relay_networks", &C::relayNetworks),
            config::readableFile("users_file", &C::usersFile),
            config::size("max_message_size", &C::maxMessageSize, 1024, 1ULL << 31),
            config::size("max_net_size", &C::maxNetSize, 0, 1ULL << 31),
            config::count("max_connections", &C::maxConnections, 1, 20000),
            config::count("max_connections_per_client", &C::maxConnectionsPerClient, 1, 20000),
            config::count("max_concurrent_data", &C::maxConcurrentData, 0, 20000),
            config::text("hostname", &C::hostname, "the machine's name"),
            config::choice<C, SmtpConfig::WhenPaused>("when_paused", &C::whenPaused,
                                                      {{"queue", SmtpConfig::WhenPaused::Queue},
                                                       {"refuse", SmtpConfig::WhenPaused::Refuse}}),
        }};
    return s;
}

const config::Section<ProviderConfig>& providerSection() {
    using C = ProviderConfig;
    static const config::Section<ProviderConfig> s{
        "provider",
        {
            // The profiles are the connector's registry (provider_endpoint.h): a command that
            // talks to the provider refuses a name it does not know, with the list; here only the
            // form, so that a new profile needs no change in the gateway.
            {"profile", config::Kind::Text,
             [](C& c, const std::string& v) {
                 if (v.empty() || v.size() > 64 ||
                     v.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") !=
                         std::string::npos)
                     return config::expected("a profile name (mentana, telekom, t-systems)", v);
                 c.profile = v;
                 return std::string();
             },
             [](const C& c) { return c.profile; }, ""},
            {"proxy", config::Kind::HostPort,
             [](C& c, const std::string& v) {
                 if (v.empty()) {
                     c.proxy = config::HostPort{};
                     return std::string();
                 }
                 auto hp = config::parseHostPort(v);
                 if (!hp || hp->port == 0)
                     return config::expected("HOST:PORT of an HTTP proxy, or empty", v);
                 c.proxy = *hp;
                 return std::string();
             },
             [](const C& c) { return c.proxy.host.empty() ? std::string() : c.proxy.toString(); },
             ""},
            {"proxy_user", config::Kind::Text,
             [](C& c, const std::string& v) {
                 if (v.find(':') != std::string::npos)  // Basic credentials are user:password
                     return config::expected("a user name without ':'", v);
                 c.proxyUser = v;
                 return std::string();
             },
             [](const C& c) { return c.proxyUser; }, ""},
            config::readableFile("proxy_password_file", &C::proxyPasswordFile),
            {"url", config::Kind::Text,
             [](C& c, const std::string& v) {
                 try {
                     Poco::URI uri(v);
                     if (uri.getScheme() != "https" || uri.getHost().empty())
                         return config::expected("an https:// URL", v);
                 } catch (const Poco::Exception&) {
                     return config::expected("an https:// URL", v);
                 }
                 c.url = v;
                 return std::string();
             },
             [](const C& c) { return c.url; }, "(required)"},
            config::readableFile("ca_file", &C::caFile),
            config::text("server_name", &C::serverName, "host of `url`"),
            config::readableFile("client_cert", &C::clientCert),
            config::readableFile("client_key", &C::clientKey),
            config::readableFile("accounts_file", &C::accountsFile),
            config::readableFile("signature_ca", &C::signatureCa),
            config::readableFile("signature_crl", &C::signatureCrl),
            config::readableFile("private_id_key_file", &C::privateIdKeyFile),
            {"demail_domains", config::Kind::List,
             [](C& c, const std::string& v) {
                 std::vector<std::string> domains;
                 for (auto item : config::splitList(v)) {
                     for (auto& ch : item)
                         ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                     if (item.find('.') == std::string::npos || item.find('@') != std::string::npos)
                         return config::expected("domains such as de-mail.de", item);
                     domains.push_back(std::move(item));
                 }
                 if (domains.empty())
                     return config::expected("at least one domain such as de-mail.de", v);
                 c.deMailDomains = std::move(domains);
                 return std::string();
             },
             [](const C& c) { return config::joinList(c.deMailDomains); }, ""},
            config::boolean("demail_domains_from_provider", &C::deMailDomainsFromProvider),
            config::boolean("address_check", &C::addressCheck),
            {"address_check_timeout", config::Kind::Duration,
             [](C& c, const std::string& v) {
                 // The RCPT waits this long in the SMTP session: short, and below the 5 minutes
                 // RFC 5321 §4.5.3.2 gives a client for a RCPT reply.
                 auto d = config::parseDuration(v);
                 if (!d || d->count() < 1 || d->count() > 60)
                     return config::expected("a duration between 1s and 60s", v);
                 c.addressCheckTimeout = *d;
                 return std::string();
             },
             [](const C& c) { return config::formatDuration(c.addressCheckTimeout); }, ""},
            config::duration("address_cache_ttl", &C::addressCacheTtl),
            config::duration("address_cache_negative_ttl", &C::addressCacheNegativeTtl),
            config::count("address_cache_size", &C::addressCacheSize, 100, 1000000),
            config::choice<C, ProviderConfig::Unavailable>(
                "address_check_unavailable", &C::addressCheckUnavailable,
                {{"defer", ProviderConfig::Unavailable::Defer},
                 {"accept", ProviderConfig::Unavailable::Accept}}),
            config::count("connections", &C::connections, 1, 32),
            config::duration("poll_interval", &C::pollInterval),
        }};
    return s;
}

const config::Section<SendingConfig>& sendingSection() {
    using C = SendingConfig;
    static const config::Section<SendingConfig> s{
        "sending",
        {
            config::readableFile("policy_file", &C::policyFile),
            config::count("sender_daily_limit", &C::senderDailyLimit, 0, 10000000),
            config::count("account_daily_limit", &C::accountDailyLimit, 0, 10000000),
        }};
    return s;
}

const config::Section<DeliveryConfig>& deliverySection() {
    using C = DeliveryConfig;
    static const config::Section<DeliveryConfig> s{
        "delivery",
        {
            config::hostPort("relay", &C::relay),
            config::choice<C, DeliveryTls>("tls", &C::tls,
                                           {{"required", DeliveryTls::Required},
                                            {"opportunistic", DeliveryTls::Opportunistic}}),
            config::text("postmaster", &C::postmaster),
            {"strip_headers", config::Kind::List,
             [](C& c, const std::string& v) {
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
                         return config::expected(
                             "header names separated by commas, '*' only at the end", v);
                     }
                 }
                 c.stripHeaders = std::move(names);
                 return std::string();
             },
             // Unset: the connector's list, which the documentation spells out.
             [](const C& c) {
                 return config::joinList(c.stripHeaders ? *c.stripHeaders
                                                        : connector::defaultInternalTrustHeaders());
             },
             ""},
            config::count("inbound_max_attempts", &C::inboundMaxAttempts, 1, 100),
            config::readableFile("ca_file", &C::caFile),
        }};
    return s;
}

const config::Section<QueueConfig>& queueSection() {
    using C = QueueConfig;
    static const config::Section<QueueConfig> s{
        "queue",
        {
            config::absoluteDir("dir", &C::dir),
            config::duration("max_age", &C::maxAge),
            config::duration("delay_warning", &C::delayWarning),
            config::duration("retry_min", &C::retryMin),
            config::duration("retry_max", &C::retryMax),
            config::duration("sent_retention", &C::sentRetention),
            config::duration("inbound_retention", &C::inboundRetention),
        }};
    return s;
}

const config::Section<ArchiveConfig>& archiveSection() {
    using C = ArchiveConfig;
    static const config::Section<ArchiveConfig> s{
        "archive",
        {
            config::absolutePath("dir", &C::dir, "`<[queue] dir>/archive`"),
            config::duration("retention", &C::retention),
            config::size("min_free", &C::minFree, 0, 1ULL << 50),
        }};
    return s;
}

const config::Section<HealthConfig>& healthSection() {
    static const config::Section<HealthConfig> s{
        "health", {config::hostPort("listen", &HealthConfig::listen)}};
    return s;
}

// The rules between keys, each checked when the sections it spans are read. "" or the error.
std::string crossKeyRules(const Config& config, const Sections& use) {
    if (use.smtp) {
        if (config.smtp.tlsCert.empty() != config.smtp.tlsKey.empty())
            return "[smtp] tls_cert/tls_key: set both or neither";
        if (config.smtp.maxNetSize > config.smtp.maxMessageSize)
            return "[smtp] max_net_size: larger than max_message_size (the encoded message is "
                   "larger than its net content)";
        if (config.smtp.requireTls && config.smtp.tlsCert.empty())
            return "[smtp] require_tls: true needs tls_cert and tls_key for STARTTLS";
    }
    if (use.queue && config.queue.retryMin > config.queue.retryMax)
        return "[queue] retry_min: must not be larger than retry_max";
    if (use.smtp && config.smtp.submissionListen && config.smtp.usersFile.empty())
        return "[smtp] submission_listen: needs users_file for AUTH";
    if (use.provider && config.provider.url.empty())
        return "[provider] url: missing (the provider's https:// endpoint)";
    if (use.provider && use.card && config.provider.clientKey.empty() && config.card.keyUri.empty())
        return "[card] key_uri: missing (the card key's pkcs11: URI)";
    if (use.provider && !config.provider.clientKey.empty() && config.provider.clientCert.empty())
        return "[provider] client_cert: needed when client_key is set";
    if (use.provider && !config.provider.proxyUser.empty() &&
        config.provider.proxyPasswordFile.empty())
        return "[provider] proxy_password_file: needed when proxy_user is set";
    if (use.provider && !config.provider.proxyUser.empty() && config.provider.proxy.host.empty())
        return "[provider] proxy_user: set without proxy";
    if (use.provider && !config.provider.signatureCrl.empty() &&
        config.provider.signatureCa.empty())
        return "[provider] signature_crl: needs signature_ca (the CRL's issuer is the anchor)";
    return {};
}

}  // namespace

ConfigResult loadConfig(const std::string& path, Sections use) {
    ConfigResult result;
    auto file = config::File::read(path, result.error);
    if (!file)
        return result;
    Config config;
    config.path = path;
    std::string& err = result.error;
    if (use.smtp)
        err = file->apply(smtpSection(), config.smtp);
    if (err.empty() && use.smtp)
        err = file->apply(sendingSection(), config.sending);
    if (err.empty() && use.card)
        err = file->apply(smartcard::cardSection(), config.card);
    if (err.empty() && use.provider)
        err = file->apply(providerSection(), config.provider);
    if (err.empty() && use.delivery)
        err = file->apply(deliverySection(), config.delivery);
    if (err.empty() && use.queue)
        err = file->apply(queueSection(), config.queue);
    if (err.empty() && use.queue)
        err = file->apply(archiveSection(), config.archive);
    if (err.empty() && use.health)
        err = file->apply(healthSection(), config.health);
    if (err.empty() && use.certpromote)
        err = file->apply(certpromote::certpromoteSection(), config.certpromote);
    if (err.empty())
        err = crossKeyRules(config, use);
    if (err.empty())
        result.config = std::move(config);
    return result;
}

std::string archiveDir(const Config& config) {
    return config.archive.dir.empty() ? config.queue.dir + "/archive" : config.archive.dir;
}

std::string pinRejectionPath(const Config& config) {
    return config.card.pinRejectionFile.empty()
               ? spool_layout::path(config.queue.dir, spool_layout::kPinRejection)
               : config.card.pinRejectionFile;
}

std::vector<config::SectionInfo> configSchema() {
    return {smtpSection().describe(),
            smartcard::cardSection().describe(),
            providerSection().describe(),
            sendingSection().describe(),
            deliverySection().describe(),
            queueSection().describe(),
            archiveSection().describe(),
            healthSection().describe(),
            certpromote::certpromoteSection().describe()};
}

}  // namespace demail::gateway
