#include "demail/gateway/credentials.h"

#include "demail/gateway/health.h"

#include <dirent.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <cstdio>
#include <stdexcept>

namespace demail::gateway {

CardCredentials::CardCredentials(smartcard::Pkcs11KeyConfig config) : source_(std::move(config)) {}

std::string CardCredentials::describe() const {
    return "card key " + source_.config().keyUri;
}

namespace {

std::string fingerprintOf(const std::string& pemFile) {
    FILE* fp = std::fopen(pemFile.c_str(), "r");
    if (!fp)
        return "";
    X509* cert = PEM_read_X509(fp, nullptr, nullptr, nullptr);
    std::fclose(fp);
    if (!cert)
        return "";
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert, &der);
    X509_free(cert);
    if (len <= 0)
        return "";
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(der, static_cast<std::size_t>(len), md);
    OPENSSL_free(der);
    static const char* digits = "0123456789abcdef";
    std::string hex;
    for (unsigned char b : md) {
        hex += digits[b >> 4];
        hex += digits[b & 15];
    }
    return hex;
}

}  // namespace

std::vector<std::string> expectedCardCertificates(const Config& config) {
    std::vector<std::string> out;
    if (!config.provider.clientCert.empty()) {
        if (auto fp = fingerprintOf(config.provider.clientCert); !fp.empty())
            out.push_back(fp);
        return out;
    }
    // demail-certpromote's store: <sha256>.pem per certificate of the card (and of earlier cards
    // unless pruned). Fingerprints are computed from the content, not taken from the names.
    if (DIR* d = opendir(config.certpromote.store.c_str())) {
        while (const dirent* e = readdir(d)) {
            const std::string name = e->d_name;
            if (name.size() > 4 && name.substr(name.size() - 4) == ".pem")
                if (auto fp = fingerprintOf(config.certpromote.store + "/" + name); !fp.empty())
                    out.push_back(fp);
        }
        closedir(d);
    }
    return out;
}

CredentialsResult makeCredentials(const Config& config) {
    CredentialsResult r;
    if (!config.provider.clientKey.empty()) {
        if (config.provider.clientCert.empty()) {
            r.error = "[provider] client_key needs client_cert";
            r.exitCode = 2;
            return r;
        }
        try {
            r.credentials = std::make_unique<connector::PemClientCredentials>(
                config.provider.clientCert, config.provider.clientKey);
        } catch (const std::exception& e) {
            r.error = e.what();
            r.exitCode = 2;
        }
        return r;
    }
    if (config.card.keyUri.empty()) {
        r.error = "[card] key_uri is not set (or set [provider] client_cert and client_key)";
        r.exitCode = 2;
        return r;
    }
    smartcard::Pkcs11KeyConfig keyConfig{config.card.pkcs11Module, config.card.keyUri,
                                         config.card.pinFile, config.provider.clientCert};
    keyConfig.rejectionFile = pinRejectionPath(config);
    keyConfig.expectedCertificates = expectedCardCertificates(config);
    if (keyConfig.expectedCertificates.empty())
        r.notice = "no expected card certificate ([provider] client_cert or a certificate in " +
                   config.certpromote.store +
                   "): the PIN goes to any token that matches [card] key_uri; run "
                   "demail-certpromote or set client_cert";
    auto card = std::make_unique<CardCredentials>(std::move(keyConfig));
    const auto loaded = card->load();
    if (!loaded.ok()) {
        r.error = loaded.message;
        switch (loaded.kind) {
            case smartcard::KeyErrorKind::WrongPin:
            case smartcard::KeyErrorKind::PinPreviouslyRejected:
                r.exitCode = 3;
                break;
            case smartcard::KeyErrorKind::PinLocked:
            case smartcard::KeyErrorKind::PinLastTry:  // the service treats it as blocked
                r.exitCode = 4;
                break;
            case smartcard::KeyErrorKind::TokenAbsent:
            case smartcard::KeyErrorKind::WrongCard:  // the configured card is not there
                r.exitCode = 5;
                break;
            case smartcard::KeyErrorKind::PinFileUnreadable:
            case smartcard::KeyErrorKind::ModuleLoadFailed:
                r.exitCode = 2;
                break;
            default:
                r.exitCode = 1;
        }
    }
    r.card = card.get();
    r.credentials = std::move(card);
    return r;
}

const char* cardCondition(smartcard::KeyErrorKind kind) {
    switch (kind) {
        case smartcard::KeyErrorKind::WrongPin:
        case smartcard::KeyErrorKind::PinPreviouslyRejected:
        case smartcard::KeyErrorKind::PinLocked:
        case smartcard::KeyErrorKind::PinLastTry:
            return kConditionPinRejected;
        case smartcard::KeyErrorKind::TokenAbsent:
            return kConditionAbsent;
        case smartcard::KeyErrorKind::WrongCard:
            return "wrong_card";
        default:
            return "login_failed";
    }
}

std::optional<std::chrono::system_clock::time_point> certificateNotAfter(X509* cert) {
    if (!cert)
        return std::nullopt;
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert)) != 1)
        return std::nullopt;
    return std::chrono::system_clock::now() + std::chrono::hours(24) * days +
           std::chrono::seconds(secs);
}

}  // namespace demail::gateway
