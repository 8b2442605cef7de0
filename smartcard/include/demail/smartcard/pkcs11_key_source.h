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
// PIN rule (DESIGN.md "The card"): a PIN the token rejected is never sent again, by this process
// or any other: the rejection is persisted (PinRejectionStore, `rejectionFile`) and load()
// answers PinPreviouslyRejected without sending anything until the PIN file holds another PIN.
// Before every C_Login, load() also checks, without sending a PIN:
//   - the PIN's retry counter, when the token is a known card in a PC/SC reader (an empty VERIFY,
//     free): a blocked PIN, a sealed card and a PIN with one try left get no PIN (the last try
//     belongs to the operator, `demail-card ... --force`);
//   - the token's certificate against `expectedCertificates`, so that the PIN never goes to a
//     token that is not the configured card (e.g. a faked reader over USB/IP).
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
    // The persisted record of rejected PINs (pin_rejection.h); empty: this process only.
    std::string rejectionFile = {};
    // SHA-256 (lowercase hex) of the certificates the token may show for the key; the PIN goes
    // only to a token whose certificate is one of them. Empty: no check.
    std::vector<std::string> expectedCertificates = {};
    // Read the retry counter (and the certificate) over PC/SC before logging in, when the token
    // sits in a PC/SC reader with a card this module knows.
    bool checkCardOverPcsc = true;
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
    PinLastTry,  // one try left: not spent automatically
    WrongCard,   // the token's certificate is not the expected one: the PIN is not sent
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
    // The operator reloaded the service (SIGHUP): the next load() starts the PKCS#11 module
    // afresh. A rejected PIN stays rejected: only a different PIN in the PIN file is tried.
    void resetAfterConfigChange();
    // The operator promoted another card's certificates or changed client_cert (reload).
    void setExpectedCertificates(std::vector<std::string> sha256Hex);
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
    // A rejection seen by this process: token serial and a salted hash of the PIN, for when no
    // rejectionFile is configured or it could not be written.
    struct Rejection {
        std::string serial, pinHash;
        KeyLoadResult result;
    };
    std::optional<Rejection> rejected_;
    // The next load() finalises and initialises the module first (after a reload, or when the
    // module lost a token it had just listed).
    bool restartModule_ = false;
};

}  // namespace demail::smartcard
