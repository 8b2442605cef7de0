// The TLS client key on a PKCS#11 token (OpenSC for the card; SoftHSM2 in tests), found by an
// RFC 7512 URI, logged in with the PIN from a file, and offered to OpenSSL as an EVP_PKEY whose
// private operation is C_Sign on the token.
//
// Why not the OpenSSL pkcs11 engine (libp11 0.4.12, Debian 12): it cannot recover in-process
// from a card that was pulled and put back: the old session stays cached (C_Sign answers
// CKR_DEVICE_REMOVED) and its RE_ENUMERATE control crashes (reproduced here, see README); and it
// cannot build a key whose certificate OpenSC did not read (Debian's plain-DER TCOS quirk, no
// CKA_MODULUS). Talking PKCS#11 directly (p11-kit's pkcs11.h) gives us the session lifecycle we
// need: load() opens a fresh session on the token as it is now.
//
// PIN rule (DESIGN.md "The card"): a PIN the token rejected is never sent again. After a
// rejection load() answers PinPreviouslyRejected without touching the token, until
// resetAfterConfigChange() says the operator put a new PIN in place.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace demail::smartcard {

struct Pkcs11KeyConfig {
    std::string modulePath;  // e.g. /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
    std::string keyUri;      // pkcs11:token=...;id=%47;type=private
    std::string pinFile;
    // PEM certificate of the key, for tokens that do not show it (Debian's OpenSC with plain-DER
    // TCOS certificates): the machine store of demail-certpromote, or the card read over PC/SC.
    std::string certificateFile = {};
};

enum class KeyErrorKind {
    None,
    PinFileUnreadable,
    ModuleLoadFailed,
    TokenAbsent,
    KeyNotFound,
    WrongPin,
    PinLocked,
    PinPreviouslyRejected,
    Other
};
const char* toString(KeyErrorKind k);

struct KeyLoadResult {
    KeyErrorKind kind = KeyErrorKind::None;
    std::string message;  // one line, operator-readable; never contains the PIN
    int triesLeft = -1;   // when known
    bool ok() const { return kind == KeyErrorKind::None; }
};

class Pkcs11KeySource {
  public:
    explicit Pkcs11KeySource(Pkcs11KeyConfig config);
    ~Pkcs11KeySource();
    Pkcs11KeySource(const Pkcs11KeySource&) = delete;
    Pkcs11KeySource& operator=(const Pkcs11KeySource&) = delete;

    // (Re)loads: finds the token as it is now, opens a new session and logs in. Call it again
    // after the card came back.
    KeyLoadResult load();
    EVP_PKEY* privateKey() const;  // borrowed; valid until the next load(); nullptr if none
    X509* certificate() const;     // the matching certificate if the token has it, else nullptr
    // The operator changed the configuration (SIGHUP): a rejected PIN may be tried again, and the
    // next load() starts the PKCS#11 module afresh.
    void resetAfterConfigChange();
    const Pkcs11KeyConfig& config() const { return config_; }

    // Private-key operations done on the token (TLS handshakes that signed), across reloads.
    std::uint64_t signatureCount() const;
    // Set when a signature failed because the token went away; load() clears it.
    bool tokenLost() const;

    struct Uri {
        std::string token, serial, manufacturer, model, object;
        std::vector<unsigned char> id;
        bool valid = false;
        std::string error;
    };
    static Uri parseUri(const std::string& uri);  // the RFC 7512 attributes we match on

    struct Impl;  // the module, session and RSA method; pkcs11_key_source.cpp

  private:
    void release();
    Pkcs11KeyConfig config_;
    mutable std::mutex mutex_;
    // Shared with every RSA handed out: an EVP_PKEY held elsewhere (an SSL_CTX, a session) keeps
    // the session and the RSA method alive after this source has moved on to a new key.
    std::shared_ptr<Impl> impl_;
    EVP_PKEY* key_ = nullptr;
    X509* cert_ = nullptr;
    std::optional<KeyLoadResult> rejected_;
    // The next load() finalises and initialises the module first (after a reload, or when the
    // module lost a token it had just listed).
    bool restartModule_ = false;
};

}  // namespace demail::smartcard
