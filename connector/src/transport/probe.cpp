// Provider probe: one connection with the enforced profile, then GET /v1/accounts. When the
// profile handshake fails without a certificate error, a few diagnostic handshakes (no client
// key, no verification, one profile dimension relaxed each) find out which setting the server
// does not support, so the operator gets "server does not support group P-521", not an
// OpenSSL error code.
#include "demail/connector/transport/probe.h"

#include <Poco/Exception.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <openssl/ec.h>
#include <openssl/ssl.h>

#include <memory>
#include <set>
#include <sstream>

#include "demail/connector/transport/provider_binding.h"

namespace demail::connector {
namespace {

struct Negotiated {
    std::string protocol, cipher, group;
};

// Handshake without client key or verification; reports what the server chose, if anything.
std::optional<Negotiated> diagnosticHandshake(const ParsedUrl& url, const std::string& sni,
                                              int maxVersion, const char* cipherList,
                                              const char* groups) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return std::nullopt;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, maxVersion);
    SSL_CTX_set_cipher_list(ctx, cipherList);
    SSL_CTX_set1_groups_list(ctx, groups);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    std::optional<Negotiated> out;
    try {
        Poco::Net::StreamSocket sock;
        sock.connect(Poco::Net::SocketAddress(url.host, url.port), Poco::Timespan(5, 0));
        sock.setReceiveTimeout(Poco::Timespan(5, 0));
        sock.setSendTimeout(Poco::Timespan(5, 0));
        SSL* ssl = SSL_new(ctx);
        SSL_set_fd(ssl, static_cast<int>(sock.impl()->sockfd()));
        if (Poco::Net::IPAddress ip; !Poco::Net::IPAddress::tryParse(sni, ip))
            SSL_set_tlsext_host_name(ssl, sni.c_str());
        SSL_connect(ssl);  // may fail later (no client certificate): ServerHello is what counts
        const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
        if (c) {
            Negotiated n;
            n.protocol = SSL_get_version(ssl);
            n.cipher = SSL_CIPHER_get_name(c);
            if (n.protocol != "TLSv1.3") {
                EVP_PKEY* tmp = nullptr;
                if (SSL_get_peer_tmp_key(ssl, &tmp) && tmp) {
                    char name[80] = {0};
                    size_t len = 0;
                    if (EVP_PKEY_get_group_name(tmp, name, sizeof name, &len) == 1) {
                        int nid = OBJ_sn2nid(name);
                        const char* nist = nid != NID_undef ? EC_curve_nid2nist(nid) : nullptr;
                        n.group = nist ? nist : name;
                    }
                    EVP_PKEY_free(tmp);
                }
            }
            out = n;
        }
        SSL_free(ssl);
    } catch (const Poco::Exception&) {
    }
    SSL_CTX_free(ctx);
    return out;
}

std::optional<std::string> diagnoseProfileMismatch(const ProviderEndpoint& endpoint,
                                                   const TlsPolicy& policy) {
    auto url = parseHttpsUrl(endpoint.url);
    if (!url)
        return std::nullopt;
    const char* kProtocol = policy.protocol.c_str();
    const char* kCipher = policy.cipher.c_str();
    const char* kGroup = policy.group.c_str();
    const std::string sni = effectiveServerName(endpoint);
    const char* allGroups = "P-521:P-384:P-256:X25519:X448";
    // Does the server speak TLS 1.2 at all?
    if (auto n = diagnosticHandshake(*url, sni, TLS1_3_VERSION, "ALL", allGroups);
        n && n->protocol != kProtocol &&
        !diagnosticHandshake(*url, sni, TLS1_2_VERSION, "ALL", allGroups))
        return "server negotiated " + n->protocol + ", profile requires " + kProtocol;
    // The suite, with any group.
    if (!diagnosticHandshake(*url, sni, TLS1_2_VERSION, kCipher, allGroups)) {
        auto n = diagnosticHandshake(*url, sni, TLS1_2_VERSION, "ALL", allGroups);
        return std::string("server offers no ") + kCipher +
               (n ? " (it chose " + n->cipher + ")" : std::string{});
    }
    // The group, with the suite.
    if (!diagnosticHandshake(*url, sni, TLS1_2_VERSION, kCipher, kGroup)) {
        auto n = diagnosticHandshake(*url, sni, TLS1_2_VERSION, kCipher, allGroups);
        return std::string("server does not support group ") + kGroup +
               (n && !n->group.empty() ? " (it chose " + n->group + ")" : std::string{});
    }
    return std::nullopt;
}

}  // namespace

ProbeReport probe(const ProviderEndpoint& endpointIn, ClientCredentials& credentials) {
    ProbeReport report;
    ProviderEndpoint endpoint = endpointIn;
    report.clientSubject = certificateSubject(credentials.certificate());
    if (!endpoint.proxy.host.empty())
        report.proxy = endpoint.proxy.host + ":" + std::to_string(endpoint.proxy.port);
    std::unique_ptr<ProviderConnection> transport;
    try {
        TransportTimeouts timeouts;
        timeouts.connect = Poco::Timespan(10, 0);
        timeouts.io = Poco::Timespan(15, 0);
        report.binding = bindingFor(endpoint).name;
        transport = connectProvider(endpoint, credentials, timeouts);
    } catch (const std::exception& e) {
        report.reason = e.what();
        return report;
    }
    auto accounts = transport->listAccounts();
    HandshakeInfo hs = transport->lastHandshake();
    report.protocol = hs.protocol;
    report.cipher = hs.cipher;
    report.group = hs.group;
    report.serverSubject = hs.serverSubject;
    if (!accounts) {
        report.reason = accounts.error().reason;
        // The diagnostic handshakes connect directly: through a proxy they are not run.
        if (accounts.error().code == "tls_handshake" && endpoint.proxy.host.empty()) {
            completeEndpoint(endpoint);
            const auto profile = findProviderProfile(endpoint.profile);
            const TlsPolicy* policy = profile ? findTlsPolicy(profile->tlsPolicy) : nullptr;
            if (auto why = diagnoseProfileMismatch(endpoint, policy ? *policy : bsiTlsPolicy()))
                report.reason = *why;
        }
        return report;
    }
    // The provider's De-Mail domains and those of our accounts (docs/provider-api.md).
    std::set<std::string> domains(accounts.value().domains.begin(), accounts.value().domains.end());
    for (const auto& a : accounts.value().accounts)
        domains.insert(a.domain);
    report.accounts = static_cast<int>(accounts.value().accounts.size());
    report.domains = static_cast<int>(domains.size());
    report.ok = true;
    return report;
}

std::string formatProbeReport(const ProbeReport& r) {
    std::ostringstream out;
    if (!r.ok) {
        out << "provider probe failed: " << r.reason;
        return out.str();
    }
    out << "protocol=" << r.protocol << " cipher=" << r.cipher << " group=" << r.group
        << " server=\"" << r.serverSubject << "\" client=\"" << r.clientSubject
        << "\" domains=" << r.domains << " accounts=" << r.accounts << " binding=" << r.binding;
    if (!r.proxy.empty())
        out << " proxy=" << r.proxy;
    return out.str();
}

}  // namespace demail::connector
