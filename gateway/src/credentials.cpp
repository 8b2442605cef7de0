#include "demail/gateway/credentials.h"

#include <stdexcept>

namespace demail::gateway {

CardCredentials::CardCredentials(smartcard::Pkcs11KeyConfig config) : source_(std::move(config)) {}

std::string CardCredentials::describe() const {
    return "card key " + source_.config().keyUri;
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
    auto card = std::make_unique<CardCredentials>(
        smartcard::Pkcs11KeyConfig{config.card.pkcs11Module, config.card.keyUri,
                                   config.card.pinFile, config.provider.clientCert});
    const auto loaded = card->load();
    if (!loaded.ok()) {
        r.error = loaded.message;
        switch (loaded.kind) {
            case smartcard::KeyErrorKind::WrongPin:
            case smartcard::KeyErrorKind::PinPreviouslyRejected:
                r.exitCode = 3;
                break;
            case smartcard::KeyErrorKind::PinLocked:
                r.exitCode = 4;
                break;
            case smartcard::KeyErrorKind::TokenAbsent:
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

}  // namespace demail::gateway
