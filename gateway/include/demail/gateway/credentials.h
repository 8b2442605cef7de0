// The TLS client credentials the configuration asks for: the card's key through PKCS#11 (the
// product), or PEM files ([provider] client_key: lab set-ups and tests).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "demail/connector/transport/client_credentials.h"
#include "demail/gateway/config.h"
#include "demail/smartcard/pkcs11_key_source.h"

namespace demail::gateway {

// Adapts smartcard::Pkcs11KeySource to connector::ClientCredentials.
class CardCredentials final : public connector::ClientCredentials {
  public:
    explicit CardCredentials(smartcard::Pkcs11KeyConfig config);
    smartcard::KeyLoadResult load() {
        auto r = source_.load();
        lastKind_ = r.kind;
        return r;
    }
    smartcard::KeyErrorKind lastKind() const { return lastKind_; }
    X509* certificate() override { return source_.certificate(); }
    EVP_PKEY* privateKey() override { return source_.privateKey(); }
    std::string describe() const override;
    smartcard::Pkcs11KeySource& source() { return source_; }

  private:
    smartcard::Pkcs11KeySource source_;
    smartcard::KeyErrorKind lastKind_ = smartcard::KeyErrorKind::None;
};

struct CredentialsResult {
    std::unique_ptr<connector::ClientCredentials> credentials;
    CardCredentials* card = nullptr;  // set when the card is used (supervision, metrics)
    std::string error;                // one line
    int exitCode = 0;                 // DESIGN.md: 3 wrong PIN, 4 blocked, 5 no card, 2 config
    std::string notice;               // a weakness of the configuration worth a warning
};

// SHA-256 of the certificates the card may show before it gets the PIN: [provider] client_cert
// if set, else those in demail-certpromote's store; empty when neither has one.
std::vector<std::string> expectedCardCertificates(const Config& config);

CredentialsResult makeCredentials(const Config& config);

// HealthState's card condition for a failed key load: kConditionPinRejected for a PIN the
// operator must fix (wrong, previously rejected, blocked, last try), kConditionAbsent for no
// token, "wrong_card", else "login_failed".
const char* cardCondition(smartcard::KeyErrorKind kind);

// The certificate's notAfter; nothing without a certificate.
std::optional<std::chrono::system_clock::time_point> certificateNotAfter(X509* cert);

}  // namespace demail::gateway
