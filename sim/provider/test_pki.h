// A throw-away test PKI for `demail-sim provider --state DIR` without --cert: CA, server
// certificate (names sim.provider.test, localhost, 127.0.0.1) and one client certificate.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <optional>
#include <string>

namespace demail::sim::provider {

struct TestPkiPaths {
    std::string caCert, caKey, serverCert, serverKey, clientCert, clientKey;
};

struct Deleter {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(X509* p) const { X509_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter>;
using CertPtr = std::unique_ptr<X509, Deleter>;

KeyPtr newRsaKey();  // RSA-2048
// A certificate for key, signed by issuerKey (self-signed when issuer is null); `ca` makes a CA,
// san and eku (OpenSSL config syntax) may be null.
CertPtr makeCert(EVP_PKEY* key, const std::string& cn, const std::string& org, X509* issuer,
                 EVP_PKEY* issuerKey, long serial, bool ca, const char* san, const char* eku);
bool writeCert(const std::string& path, X509* cert);
bool writeKey(const std::string& path, EVP_PKEY* key);  // mode 0600

inline constexpr const char* kTestServerName = "sim.provider.test";
inline constexpr const char* kTestClientSubject = "CN=demail-gateway-test,O=Simulated Firma";

// Creates the files in dir unless they exist already (a restart keeps the same PKI).
// Returns an error text on failure.
std::optional<std::string> ensureTestPki(const std::string& dir, TestPkiPaths& out);

// RFC 2253 subject and SHA-256 fingerprint (lower-case hex) of a PEM certificate file.
std::optional<std::pair<std::string, std::string>> certificateIdentity(const std::string& pem);

}  // namespace demail::sim::provider
