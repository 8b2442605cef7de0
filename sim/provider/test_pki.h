// A throw-away test PKI for `demail-sim provider --state DIR` without --cert: CA, server
// certificate (names sim.provider.test, localhost, 127.0.0.1) and one client certificate.
#pragma once

#include <optional>
#include <string>

namespace demail::sim::provider {

struct TestPkiPaths {
    std::string caCert, caKey, serverCert, serverKey, clientCert, clientKey;
};

inline constexpr const char* kTestServerName = "sim.provider.test";
inline constexpr const char* kTestClientSubject = "CN=demail-gateway-test,O=Simulated Firma";

// Creates the files in dir unless they exist already (a restart keeps the same PKI).
// Returns an error text on failure.
std::optional<std::string> ensureTestPki(const std::string& dir, TestPkiPaths& out);

// RFC 2253 subject and SHA-256 fingerprint (lower-case hex) of a PEM certificate file.
std::optional<std::pair<std::string, std::string>> certificateIdentity(const std::string& pem);

}  // namespace demail::sim::provider
