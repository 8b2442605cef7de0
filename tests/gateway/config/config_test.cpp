#include "demail/gateway/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace demail::gateway;

namespace {

class ConfigFile : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/demail-config-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        std::ofstream(dir_ / "ca.pem") << "x";
        std::ofstream(dir_ / "cert.pem") << "x";
        std::ofstream(dir_ / "key.pem") << "x";
    }
    void TearDown() override { fs::remove_all(dir_); }

    ConfigResult load(const std::string& text, Sections use = Sections::all()) {
        const auto path = dir_ / "gateway.ini";
        std::ofstream(path) << text;
        return loadConfig(path.string(), use);
    }
    std::string minimal() const {
        return "[smtp]\nrequire_tls = false\n[provider]\nurl = https://provider.example:8443/api\n"
               "ca_file = " +
               (dir_ / "ca.pem").string() +
               "\n[card]\n"
               "key_uri = pkcs11:token=NetKey%20V3%20Card%20(NetKey%20PIN2);id=%47;type=private\n";
    }
    fs::path dir_;
};

TEST_F(ConfigFile, MinimalFileGetsDocumentedDefaults) {
    auto r = load(minimal());
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.config->smtp.listen.toString(), "127.0.0.1:2525");
    EXPECT_EQ(r.config->health.listen.toString(), "127.0.0.1:8025");
    EXPECT_EQ(r.config->queue.maxAge, std::chrono::hours(24));
    EXPECT_EQ(r.config->smtp.maxMessageSize, 31457280u);
    EXPECT_EQ(r.config->smtp.maxNetSize, 20971520u);
    EXPECT_EQ(r.config->provider.profile, "mentana");
    EXPECT_EQ(r.config->delivery.tls, DeliveryTls::Required);
    EXPECT_EQ(r.config->provider.connections, 4u);
    EXPECT_EQ(r.config->smtp.maxConnections, 1000u);
    EXPECT_EQ(r.config->smtp.maxConnectionsPerClient, 50u);
    // Recipients (docs/configuration.md says why): the provider's domains count, the address is
    // checked at RCPT, and what cannot be checked is deferred, never accepted unchecked.
    EXPECT_TRUE(r.config->provider.deMailDomainsFromProvider);
    EXPECT_TRUE(r.config->provider.addressCheck);
    EXPECT_EQ(r.config->provider.addressCheckTimeout, std::chrono::seconds(5));
    EXPECT_EQ(r.config->provider.addressCheckUnavailable, ProviderConfig::Unavailable::Defer);
}

TEST_F(ConfigFile, InlineCommentsAreStrippedButUriSemicolonsKept) {
    auto r = load(minimal() + "[queue]\nmax_age = 30s   ; shortened for a test\n");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.config->queue.maxAge, std::chrono::seconds(30));
    EXPECT_EQ(r.config->card.keyUri,
              "pkcs11:token=NetKey%20V3%20Card%20(NetKey%20PIN2);id=%47;type=private");
}

TEST_F(ConfigFile, UnknownKeyIsNamed) {
    auto r = load(minimal() + "[smtp]\nlisten_port = 25\n");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error, "[smtp] listen_port: unknown key (see docs/configuration.md)");
}

TEST_F(ConfigFile, UnknownSectionIsNamed) {
    auto r = load(minimal() + "[smpt]\nlisten = 127.0.0.1:25\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error.find("[smpt]: unknown section"), std::string::npos) << r.error;
}

TEST_F(ConfigFile, BadValuesNameTheKeyAndTheValue) {
    struct Case {
        std::string text;
        std::string error;
    };
    const Case cases[] = {
        {"[smtp]\nlisten = localhost\n", "[smtp] listen: expected HOST:PORT, got 'localhost'"},
        {"[smtp]\nlisten = 127.0.0.1:70000\n",
         "[smtp] listen: expected HOST:PORT, got '127.0.0.1:70000'"},
        {"[smtp]\nrelay_networks = 10.0.0.0/8, 300.1.1.1/8\n",
         "[smtp] relay_networks: expected CIDRs such as 10.0.0.0/8, got '300.1.1.1/8'"},
        {"[queue]\nmax_age = soon\n",
         "[queue] max_age: expected a positive duration such as 90s, 30m, 24h, 2d, got 'soon'"},
        {"[delivery]\ntls = maybe\n",
         "[delivery] tls: expected required or opportunistic, got 'maybe'"},
        {"[provider]\nprofile = Acme Corp\n",
         "[provider] profile: expected a profile name (mentana, telekom, t-systems), got 'Acme "
         "Corp'"},
        {"[provider]\nproxy = proxy.lan\n",
         "[provider] proxy: expected HOST:PORT of an HTTP proxy, or empty, got 'proxy.lan'"},
        {"[provider]\nproxy_user = a:b\n",
         "[provider] proxy_user: expected a user name without ':', got 'a:b'"},
        {"[smtp]\nrequire_tls = perhaps\n",
         "[smtp] require_tls: expected true or false, got 'perhaps'"},
        {"[smtp]\nmax_connections_per_client = many\n",
         "[smtp] max_connections_per_client: expected a number between 1 and 20000, got 'many'"},
        {"[provider]\nconnections = 0\n",
         "[provider] connections: expected a number between 1 and 32, got '0'"},
        {"[provider]\nconnections = 33\n",
         "[provider] connections: expected a number between 1 and 32, got '33'"},
        {"[provider]\naddress_check_timeout = 2m\n",
         "[provider] address_check_timeout: expected a duration between 1s and 60s, got '2m'"},
        {"[provider]\naddress_check_unavailable = bounce\n",
         "[provider] address_check_unavailable: expected defer or accept, got 'bounce'"},
        {"[provider]\naddress_cache_size = 10\n",
         "[provider] address_cache_size: expected a number between 100 and 1000000, got '10'"},
        {"[smtp]\ntls_cert = /nonexistent/cert.pem\n",
         "[smtp] tls_cert: cannot read file '/nonexistent/cert.pem'"},
    };
    for (const auto& c : cases) {
        auto r = load(minimal() + c.text);
        ASSERT_FALSE(r.ok()) << c.text;
        EXPECT_EQ(r.error, c.error);
    }
}

TEST_F(ConfigFile, RequireTlsNeedsACertificate) {
    auto r = load("[provider]\nurl = https://p.example/\n[card]\nkey_uri = pkcs11:id=%47\n");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error, "[smtp] require_tls: true needs tls_cert and tls_key for STARTTLS");
}

TEST_F(ConfigFile, ProviderUrlMustBeHttps) {
    auto r = load("[smtp]\nrequire_tls=false\n[provider]\nurl = http://p.example/\n");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error, "[provider] url: expected an https:// URL, got 'http://p.example/'");
}

TEST_F(ConfigFile, PinRejectionFileDefaultsToTheQueueDirAndMustBeAbsolute) {
    auto r = load(minimal() + "[queue]\ndir = " + dir_.string() + "\n");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(pinRejectionPath(*r.config), dir_.string() + "/card-pin-rejected");
    r = load(minimal() + "pin_rejection_file = /var/lib/demail-gateway/pin-rejected\n");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(pinRejectionPath(*r.config), "/var/lib/demail-gateway/pin-rejected");
    r = load(minimal() + "pin_rejection_file = pin-rejected\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error.find("[card] pin_rejection_file"), std::string::npos) << r.error;
}

// What demailctl provider probe reads: [card], [provider], [queue] (the PIN-rejection record)
// and [certpromote] (the store's certificates). An [smtp] the daemon refuses does not stop it; an
// unknown name in any section does, and its own sections are checked in full.
TEST_F(ConfigFile, ACommandChecksInFullOnlyTheSectionsItReads) {
    const Sections probe{.card = true, .provider = true, .queue = true, .certpromote = true};
    const std::string base =
        "[provider]\nurl = https://p.example/\n[card]\nkey_uri = pkcs11:id=%47\n";
    // No [smtp] at all: require_tls defaults to true and there is no certificate.
    EXPECT_EQ(load(base).error, "[smtp] require_tls: true needs tls_cert and tls_key for STARTTLS");
    auto r = load(base, probe);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.config->provider.url, "https://p.example/");
    EXPECT_EQ(r.config->card.keyUri, "pkcs11:id=%47");

    const std::string badSmtp = base + "[smtp]\nlisten = localhost\n[delivery]\ntls = maybe\n";
    EXPECT_EQ(load(badSmtp).error, "[smtp] listen: expected HOST:PORT, got 'localhost'");
    r = load(badSmtp, probe);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.config->smtp.listen.toString(), "127.0.0.1:2525") << "unread: the default";

    EXPECT_EQ(load(base + "[smtp]\nlisten_port = 25\n", probe).error,
              "[smtp] listen_port: unknown key (see docs/configuration.md)");
    EXPECT_NE(load(base + "[smpt]\nlisten = 127.0.0.1:25\n", probe).error.find("unknown section"),
              std::string::npos);
    EXPECT_EQ(load(base + "[queue]\ndir = spool\n", probe).error,
              "[queue] dir: expected an absolute directory path, got 'spool'");
    EXPECT_EQ(load("[provider]\nurl = https://p.example/\n", probe).error,
              "[card] key_uri: missing (the card key's pkcs11: URI)");
    EXPECT_EQ(load(base + "[certpromote]\nread_users = a;b\n", probe).error,
              "[certpromote] read_users: expected user or group names separated by commas, got "
              "'a;b'");

    // demailctl queue reads [queue] only: no provider URL needed.
    r = load("[queue]\ndir = " + dir_.string() + "\n", Sections{.queue = true});
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.config->queue.dir, dir_.string());
}

TEST_F(ConfigFile, MissingFileIsAClearError) {
    auto r = loadConfig("/nonexistent/gateway.ini");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error, "cannot read configuration file '/nonexistent/gateway.ini'");
}

}  // namespace

TEST_F(ConfigFile, InboundHygieneKeys) {
    auto r = load(minimal());
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_FALSE(r.config->delivery.stripHeaders) << "unset: the documented default list";
    EXPECT_EQ(r.config->delivery.inboundMaxAttempts, 5u);
    r = load(minimal() +
             "[delivery]\nstrip_headers = X-Spam-*, Authentication-Results X-Foo\n"
             "inbound_max_attempts = 3\n");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(*r.config->delivery.stripHeaders,
              (std::vector<std::string>{"X-Spam-*", "Authentication-Results", "X-Foo"}));
    EXPECT_EQ(r.config->delivery.inboundMaxAttempts, 3u);
    r = load(minimal() + "[delivery]\nstrip_headers =\n");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_TRUE(r.config->delivery.stripHeaders->empty());
    EXPECT_FALSE(load(minimal() + "[delivery]\nstrip_headers = X-*-Foo\n").ok());
    EXPECT_FALSE(load(minimal() + "[delivery]\ninbound_max_attempts = 0\n").ok());
}

TEST_F(ConfigFile, ProxyKeysAndTheirPasswordFile) {
    auto r = load(minimal() + "[provider]\nproxy = 127.0.0.1:3128\n");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.config->provider.proxy.host, "127.0.0.1");
    EXPECT_EQ(r.config->provider.proxy.port, 3128);
    r = load(minimal() + "[provider]\nproxy = 127.0.0.1:3128\nproxy_user = gw\n");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error, "[provider] proxy_password_file: needed when proxy_user is set");
    r = load(minimal() + "[provider]\nproxy_user = gw\nproxy_password_file = /etc/hostname\n");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error, "[provider] proxy_user: set without proxy");
    // A password is never a key of the INI: only the file that holds it.
    r = load(minimal() + "[provider]\nproxy_password = secret\n");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error.find("unknown key"), std::string::npos) << r.error;
}
