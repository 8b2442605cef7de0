// The TLS client identity: certificate plus private key. The gateway adapts the smartcard
// module's PKCS#11 key source (an ENGINE key) to this interface; tests use PEM files.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>

namespace demail::connector {

class ClientCredentials {
  public:
    virtual ~ClientCredentials() = default;
    virtual X509* certificate() = 0;     // borrowed
    virtual EVP_PKEY* privateKey() = 0;  // borrowed; may be an ENGINE (pkcs11) key
    virtual std::string describe() const = 0;
};

// Certificate and key from PEM files (unencrypted key). Throws std::runtime_error on a file
// that cannot be read, so a misconfiguration fails at start-up, not at the first handshake.
class PemClientCredentials final : public ClientCredentials {
  public:
    PemClientCredentials(const std::string& certFile, const std::string& keyFile);
    ~PemClientCredentials() override;
    PemClientCredentials(const PemClientCredentials&) = delete;
    PemClientCredentials& operator=(const PemClientCredentials&) = delete;

    X509* certificate() override { return cert_; }
    EVP_PKEY* privateKey() override { return key_; }
    std::string describe() const override;

  private:
    std::string certFile_;
    X509* cert_ = nullptr;
    EVP_PKEY* key_ = nullptr;
};

// One-line subject of a certificate, RFC 2253 style ("CN=...,O=...").
std::string certificateSubject(X509* cert);

}  // namespace demail::connector
