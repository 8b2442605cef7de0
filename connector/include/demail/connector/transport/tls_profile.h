// The enforced TLS profile for the provider connection (BSI TR-02102-2 / TR-03116-4 conformant):
// TLS 1.2 only, ECDHE-RSA-AES256-SHA384 only, group P-521 only, client signature algorithms
// RSA PKCS#1 v1.5 (the TCOS card does not do PSS), server certificate verified against the
// configured CA and server name by OpenSSL itself (X509_VERIFY_PARAM_set1_host, partial
// wildcards off). Poco's own name check is switched off because it falls back to DNS lookups of
// the certificate's names and would accept a wrong name that resolves to the same address.
#pragma once

#include <Poco/Net/Context.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "demail/connector/transport/client_credentials.h"
#include "demail/connector/transport/provider_endpoint.h"

namespace demail::connector {

namespace tls_profile {
inline constexpr const char* kProtocol = "TLSv1.2";
inline constexpr const char* kCipher = "ECDHE-RSA-AES256-SHA384";
inline constexpr const char* kGroup = "P-521";
inline constexpr const char* kClientSigalgs = "RSA+SHA256:RSA+SHA384:RSA+SHA512";
}  // namespace tls_profile

// A TLS policy a provider profile selects (provider_endpoint.h): exactly one protocol, suite and
// group, enforced when the context is built and checked again after every handshake. Today there
// is one, the BSI profile above; a provider that demanded another would get a second entry in
// tls_profile.cpp, not a change to the client.
struct TlsPolicy {
    std::string name;
    std::string protocol;  // "TLSv1.2": the only protocol the client builds contexts for
    std::string cipher;    // one TLS 1.2 suite (OpenSSL name)
    std::string group;     // one key-exchange group (NIST name)
    std::string clientSigalgs;
};
const TlsPolicy& bsiTlsPolicy();  // "bsi-tr-03116-4": the tls_profile constants
const TlsPolicy* findTlsPolicy(const std::string& name);

// Counters for metrics. cardSignatures counts CertificateVerify messages the client wrote, i.e.
// private-key operations on the card; fullHandshakes/resumedHandshakes count completed handshakes.
struct TlsCounters {
    std::atomic<std::uint64_t> cardSignatures{0};
    std::atomic<std::uint64_t> fullHandshakes{0};
    std::atomic<std::uint64_t> resumedHandshakes{0};
    std::atomic<std::uint64_t> profileViolations{0};
    std::atomic<std::uint64_t> verifyFailures{0};
};

// What the last handshake on this thread negotiated (filled by the OpenSSL info callback).
struct HandshakeInfo {
    bool completed = false;
    bool resumed = false;
    std::string protocol;
    std::string cipher;
    std::string group;
    std::string serverSubject;
    std::string clientSignature;     // "rsaEncryption" (PKCS#1 v1.5) or "RSASSA-PSS"; full only
    int verifyError = 0;             // X509_V_OK or the first verification error
    std::string verifyErrorSubject;  // certificate the error is about
};

// Resets and returns this thread's record of the current handshake.
void resetThreadHandshakeInfo();
const HandshakeInfo& threadHandshakeInfo();

// Returns nullopt if the negotiated parameters match the profile, else the refusal reason.
std::optional<std::string> checkNegotiated(const HandshakeInfo& info,
                                           const TlsPolicy& policy = bsiTlsPolicy());

// Builds a client context with the profile, the endpoint's CA and server name, and the client
// credentials (raw SSL_CTX_use_PrivateKey, so ENGINE keys work). Throws std::runtime_error with a
// one-line reason on bad CA file or credentials. The counters must outlive the context.
Poco::Net::Context::Ptr makeClientContext(const ProviderEndpoint& endpoint,
                                          ClientCredentials& credentials, TlsCounters& counters,
                                          const TlsPolicy& policy = bsiTlsPolicy());

// One-line human reason for a failed handshake, from the thread's handshake record and the
// OpenSSL/Poco error text (e.g. "server certificate name mismatch: expected X").
std::string describeHandshakeFailure(const ProviderEndpoint& endpoint, const std::string& errorText,
                                     const TlsPolicy& policy = bsiTlsPolicy());

}  // namespace demail::connector
