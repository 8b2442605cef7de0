// PKCS#11 directly (p11-kit's pkcs11.h), and an OpenSSL RSA_METHOD that forwards the private
// operation to C_Sign. RSA_METHOD is deprecated in OpenSSL 3 but is still how an external key
// works with libssl 3.0 without writing a provider; it is confined to this file.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "demail/smartcard/pkcs11_key_source.h"

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>

#include <atomic>
#include <cstring>
#include <map>
#include <shared_mutex>
#include <sstream>

#include "demail/smartcard/card_profile.h"
#include "demail/smartcard/pcsc.h"
#include "demail/smartcard/pin_rejection.h"
#include "demail/smartcard/secret.h"
#include "demail/smartcard/tcos.h"

namespace demail::smartcard {
namespace {

// A loaded module stays loaded and initialised for the life of the process. It is finalised and
// initialised again only by restartModule(): OpenSC keeps its reader and card state inside, and
// once that state is stale (a login answering CKR_DEVICE_REMOVED although the token is listed)
// nothing short of a fresh C_Initialize clears it.
struct Module {
    void* handle = nullptr;
    CK_FUNCTION_LIST_PTR f = nullptr;
    // Every call on a session holds this shared; restartModule() holds it alone, so C_Finalize
    // never runs while another thread is inside the module.
    std::shared_mutex calls;
    // Bumped by each restart: sessions opened before it are gone, and their handle numbers may
    // belong to new sessions, so they are never used or closed again.
    std::atomic<std::uint64_t> generation{0};
};

CK_RV initialize(Module& m) {
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    const CK_RV rv = m.f->C_Initialize(&args);
    return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

Module* moduleFor(const std::string& path, std::string& error) {
    static std::mutex mutex;
    static std::map<std::string, Module> modules;
    std::lock_guard lock(mutex);
    auto [it, inserted] = modules.try_emplace(path);
    Module& m = it->second;
    if (!inserted)
        return &m;
    m.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    auto getList =
        m.handle ? reinterpret_cast<CK_C_GetFunctionList>(dlsym(m.handle, "C_GetFunctionList"))
                 : nullptr;
    CK_RV rv = CKR_OK;
    if (!m.handle)
        error = "cannot load PKCS#11 module " + path + ": " + dlerror();
    else if (!getList || getList(&m.f) != CKR_OK || !m.f)
        error = path + " is not a PKCS#11 module";
    else if ((rv = initialize(m)) != CKR_OK)
        error = "PKCS#11 module " + path + " failed to initialise (CKR " + std::to_string(rv) + ")";
    if (error.empty())
        return &m;
    if (m.handle)
        dlclose(m.handle);
    modules.erase(it);
    return nullptr;
}

// Finalises and initialises the module again; every session of every user is gone after it.
CK_RV restartModule(Module& m) {
    std::unique_lock lock(m.calls);
    m.f->C_Finalize(nullptr);
    ++m.generation;
    return initialize(m);
}

std::string trimmed(const unsigned char* text, std::size_t n) {
    std::string s(reinterpret_cast<const char*>(text), n);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0'))
        s.pop_back();
    return s;
}

bool lostToken(CK_RV rv) {
    return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_ERROR ||
           rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_TOKEN_NOT_RECOGNIZED;
}

std::string sha256Hex(const unsigned char* p, std::size_t n) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (unsigned char b : md) {
        s += digits[b >> 4];
        s += digits[b & 15];
    }
    return s;
}

// This process's salt for remembering a rejected PIN in memory (never the PIN itself).
std::string processPinHash(const Secret& pin) {
    static const std::string salt = [] {
        std::string s(32, '\0');
        RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(s.size()));
        return s;
    }();
    std::string data = salt + pin.reveal();
    std::string h = sha256Hex(reinterpret_cast<const unsigned char*>(data.data()), data.size());
    Secret::cleanse(data);
    return h;
}

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// What the card itself says before it gets a PIN, read over PC/SC without one: the retry
// counter of the TLS key's PIN (EF_PWDD and an empty VERIFY, which cost no try) and, if wanted,
// the key's certificate. OpenSC names the slot after the PC/SC reader (truncated to 64
// characters), and the token serial is part of the card's ICCSN (EF.GDO; OpenSC keeps the last
// 16 of its first 19 hex digits), so the card read here is the token the PIN would go to.
struct CardFacts {
    bool onPcsc = false;  // the token is a known card in a PC/SC reader
    std::string reader;
    PinStatus pin;
    Bytes certificate;    // DER; empty when not asked for or not on the card
    std::string refusal;  // the token is on PC/SC but could not be checked: no PIN
    CardErrorKind refusalKind = CardErrorKind::Protocol;
};

CardFacts readCardFacts(const std::string& slotDescription, const std::string& tokenSerial,
                        const std::vector<unsigned char>& keyId, bool wantCertificate) {
    CardFacts f;
    PcscContext ctx;
    auto readers = ctx.readers();
    if (!readers.ok() || slotDescription.empty())
        return f;  // no PC/SC: a software token (SoftHSM); OpenSC could not reach a card either
    struct Candidate {
        std::string reader;
        std::unique_ptr<PcscCard> card;
        const CardProfile* profile;
    };
    std::vector<Candidate> found;
    for (const auto& name : readers.value()) {
        if (name.rfind(slotDescription, 0) != 0)
            continue;
        auto card = PcscCard::connect(ctx, name);
        if (!card.ok())
            continue;  // no card in it: not the token's reader
        const CardProfile* profile = profileForAtr(card.value()->atr());
        if (!profile) {
            f.onPcsc = true;
            f.refusal = "the card in reader '" + name +
                        "' is of a type this gateway does not know; the PIN is not sent to it";
            return f;
        }
        TcosCard tcos(*card.value(), *profile);
        auto serial = tcos.serial();
        if (!serial.ok()) {
            f.onPcsc = true;
            f.refusalKind = serial.error().kind;
            f.refusal = "cannot read the serial of the card in '" + name +
                        "' before sending the PIN: " + serial.error().message;
            return f;
        }
        if (!tokenSerial.empty() &&
            lower(serial.value()).find(lower(tokenSerial)) == std::string::npos)
            continue;  // another card
        found.push_back({name, std::move(card.value()), profile});
    }
    if (found.empty())
        return f;
    f.onPcsc = true;
    if (found.size() > 1) {
        f.refusal = "several readers hold a card that matches the token; the PIN is not sent";
        return f;
    }
    Candidate& c = found.front();
    f.reader = c.reader;
    TcosCard tcos(*c.card, *c.profile);
    // The TLS key's PIN: the token the gateway logs in to is the one of the authentication key.
    auto st = tcos.pinStatus(c.profile->authPinRef);
    if (!st.ok()) {
        f.refusalKind = st.error().kind;
        f.refusal =
            "cannot read the PIN retry counter before sending the PIN: " + st.error().message;
        return f;
    }
    f.pin = st.value();
    if (wantCertificate && keyId.size() == 1) {
        for (const auto& spec : c.profile->certificates) {
            if (spec.pkcs15Id != keyId[0])
                continue;
            auto der = tcos.readCertificate(spec.fid);
            if (der.ok()) {
                f.certificate = der.value();
                break;
            }
        }
    }
    return f;
}

// The RSA's ex_data holds a heap-allocated shared_ptr<Impl>; freeing the RSA drops it.
void releaseImplRef(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*);

int rsaIndex() {
    static const int index = RSA_get_ex_new_index(0, nullptr, nullptr, nullptr, &releaseImplRef);
    return index;
}

}  // namespace

struct Pkcs11KeySource::Impl {
    Module* module = nullptr;
    std::uint64_t generation = 0;  // the module's when the session was opened
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    std::mutex signMutex;  // one operation at a time on the session
    std::atomic<std::uint64_t> signatures{0};
    std::atomic<bool> lost{false};
    RSA_METHOD* method = nullptr;

    ~Impl() {
        closeSession();
        if (method)
            RSA_meth_free(method);
    }
    void closeSession() {
        if (module && session != CK_INVALID_HANDLE) {
            std::shared_lock calls(module->calls);
            if (module->generation == generation)
                module->f->C_CloseSession(session);
        }
        session = CK_INVALID_HANDLE;
        key = CK_INVALID_HANDLE;
    }
    // RSA private "encrypt" = sign: PKCS#1 v1.5 (DigestInfo in, the token pads) or raw.
    int sign(int flen, const unsigned char* from, unsigned char* to, int padding, int modLen) {
        CK_MECHANISM mech{padding == RSA_PKCS1_PADDING ? CKM_RSA_PKCS : CKM_RSA_X_509, nullptr, 0};
        if (padding != RSA_PKCS1_PADDING && padding != RSA_NO_PADDING)
            return -1;
        std::lock_guard lock(signMutex);
        std::shared_lock calls(module->calls);
        if (module->generation != generation)
            lost = true;  // the module was restarted under this session
        if (session == CK_INVALID_HANDLE || lost)
            return -1;
        CK_ULONG outLen = static_cast<CK_ULONG>(modLen);
        CK_RV rv = module->f->C_SignInit(session, &mech, key);
        if (rv == CKR_OK)
            rv = module->f->C_Sign(session, const_cast<unsigned char*>(from),
                                   static_cast<CK_ULONG>(flen), to, &outLen);
        if (rv != CKR_OK) {
            if (lostToken(rv))
                lost = true;
            return -1;
        }
        ++signatures;
        return static_cast<int>(outLen);
    }
};

namespace {
using ImplRef = std::shared_ptr<Pkcs11KeySource::Impl>;

void releaseImplRef(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<ImplRef*>(ptr);
}

int forwardPrivEnc(int flen, const unsigned char* from, unsigned char* to, RSA* rsa, int padding) {
    auto* impl = static_cast<ImplRef*>(RSA_get_ex_data(rsa, rsaIndex()));
    return impl && *impl ? (*impl)->sign(flen, from, to, padding, RSA_size(rsa)) : -1;
}
}  // namespace

const char* toString(KeyErrorKind k) {
    switch (k) {
        case KeyErrorKind::None:
            return "ok";
        case KeyErrorKind::PinFileUnreadable:
            return "PIN file unreadable";
        case KeyErrorKind::ModuleLoadFailed:
            return "PKCS#11 module not loadable";
        case KeyErrorKind::TokenAbsent:
            return "token absent";
        case KeyErrorKind::KeyNotFound:
            return "key not found";
        case KeyErrorKind::WrongPin:
            return "wrong PIN";
        case KeyErrorKind::PinLocked:
            return "PIN locked";
        case KeyErrorKind::PinPreviouslyRejected:
            return "PIN rejected earlier";
        case KeyErrorKind::PinLastTry:
            return "PIN has one try left";
        case KeyErrorKind::WrongCard:
            return "not the configured card";
        case KeyErrorKind::Other:
            return "error";
    }
    return "?";
}

Pkcs11KeySource::Uri Pkcs11KeySource::parseUri(const std::string& uri) {
    Uri u;
    if (uri.rfind("pkcs11:", 0) != 0) {
        u.error = "not a pkcs11: URI";
        return u;
    }
    const std::string path =
        uri.substr(7, uri.find('?') == std::string::npos ? std::string::npos : uri.find('?') - 7);
    auto decode = [&u](const std::string& s) {
        std::string out;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '%') {
                if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
                    !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
                    u.error = "bad percent-encoding";
                    return out;
                }
                out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
                i += 2;
            } else {
                out += s[i];
            }
        }
        return out;
    };
    std::istringstream parts(path);
    std::string part;
    while (std::getline(parts, part, ';')) {
        const auto eq = part.find('=');
        if (eq == std::string::npos)
            continue;
        const std::string name = part.substr(0, eq);
        const std::string value = decode(part.substr(eq + 1));
        if (name == "token")
            u.token = value;
        else if (name == "serial")
            u.serial = value;
        else if (name == "manufacturer")
            u.manufacturer = value;
        else if (name == "model")
            u.model = value;
        else if (name == "object")
            u.object = value;
        else if (name == "id")
            u.id.assign(value.begin(), value.end());
        // type, slot-*, library-*: not needed to find the key
    }
    if (u.error.empty() && u.id.empty() && u.object.empty())
        u.error = "the URI names no key (id= or object=)";
    u.valid = u.error.empty();
    return u;
}

Pkcs11KeySource::Pkcs11KeySource(Pkcs11KeyConfig config) : config_(std::move(config)) {}

Pkcs11KeySource::~Pkcs11KeySource() {
    std::lock_guard lock(mutex_);
    release();
}

void Pkcs11KeySource::release() {
    EVP_PKEY_free(key_);  // other holders of the key keep the session (impl) alive
    key_ = nullptr;
    X509_free(cert_);
    cert_ = nullptr;
    impl_.reset();
}

EVP_PKEY* Pkcs11KeySource::privateKey() const {
    std::lock_guard lock(mutex_);
    return key_;
}

X509* Pkcs11KeySource::certificate() const {
    std::lock_guard lock(mutex_);
    return cert_;
}

std::uint64_t Pkcs11KeySource::signatureCount() const {
    std::lock_guard lock(mutex_);
    return impl_ ? impl_->signatures.load() : 0;
}

bool Pkcs11KeySource::tokenLost() const {
    std::lock_guard lock(mutex_);
    return impl_ && impl_->lost.load();
}

void Pkcs11KeySource::resetAfterConfigChange() {
    std::lock_guard lock(mutex_);
    restartModule_ = true;  // an operator's reload starts the module afresh
}

void Pkcs11KeySource::setExpectedCertificates(std::vector<std::string> sha256Hex) {
    std::lock_guard lock(mutex_);
    config_.expectedCertificates = std::move(sha256Hex);
}

KeyLoadResult Pkcs11KeySource::load() {
    std::lock_guard lock(mutex_);
    const std::uint64_t carried = impl_ ? impl_->signatures.load() : 0;
    release();

    const Uri uri = parseUri(config_.keyUri);
    if (!uri.valid)
        return {KeyErrorKind::Other, "[card] key_uri " + config_.keyUri + ": " + uri.error};
    std::string error;
    Secret pin = readSecretFile(config_.pinFile, error);
    if (!error.empty())
        return {KeyErrorKind::PinFileUnreadable, error};
    Module* module = moduleFor(config_.modulePath, error);
    if (!module)
        return {KeyErrorKind::ModuleLoadFailed, error};
    if (restartModule_) {
        restartModule_ = false;
        if (const CK_RV rv = restartModule(*module); rv != CKR_OK)
            return {KeyErrorKind::ModuleLoadFailed, "PKCS#11 module " + config_.modulePath +
                                                        " failed to initialise again (CKR " +
                                                        std::to_string(rv) + ")"};
    }
    // No shared hold of module->calls here: load() runs under mutex_, so no restart can start
    // during it, and an early return's ~Impl takes that lock itself (a shared_mutex must not be
    // held twice by one thread). One key source per module and process, as in gatewayd.
    CK_FUNCTION_LIST_PTR f = module->f;

    // The token, as the module sees it now.
    CK_ULONG n = 0;
    if (f->C_GetSlotList(CK_TRUE, nullptr, &n) != CKR_OK)
        return {KeyErrorKind::Other, "the PKCS#11 module cannot list its slots"};
    std::vector<CK_SLOT_ID> slots(n);
    if (n > 0 && f->C_GetSlotList(CK_TRUE, slots.data(), &n) != CKR_OK)
        return {KeyErrorKind::Other, "the PKCS#11 module cannot list its slots"};
    std::vector<CK_SLOT_ID> matching;
    CK_TOKEN_INFO token{};
    for (CK_ULONG i = 0; i < n; ++i) {
        CK_TOKEN_INFO info;
        if (f->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        if ((!uri.token.empty() && trimmed(info.label, sizeof info.label) != uri.token) ||
            (!uri.serial.empty() &&
             trimmed(info.serialNumber, sizeof info.serialNumber) != uri.serial) ||
            (!uri.manufacturer.empty() &&
             trimmed(info.manufacturerID, sizeof info.manufacturerID) != uri.manufacturer) ||
            (!uri.model.empty() && trimmed(info.model, sizeof info.model) != uri.model))
            continue;
        matching.push_back(slots[i]);
        token = info;
    }
    if (matching.empty())
        return {KeyErrorKind::TokenAbsent,
                "no token " + (uri.token.empty() ? std::string() : "'" + uri.token + "' ") +
                    "in any reader: is the card inserted and the reader connected?"};
    if (matching.size() > 1)
        return {KeyErrorKind::Other, "the key URI matches " + std::to_string(matching.size()) +
                                         " tokens; add token= or serial= to [card] key_uri"};
    const std::string serial = trimmed(token.serialNumber, sizeof token.serialNumber);

    // Never the same rejected PIN again: this process's memory, then the persisted record that
    // every process (the daemon, its restarts, demailctl) shares.
    const std::string pinHash = processPinHash(pin);
    if (rejected_ && rejected_->serial == serial && rejected_->pinHash == pinHash) {
        KeyLoadResult r = rejected_->result;
        r.kind = KeyErrorKind::PinPreviouslyRejected;
        return r;
    }
    if (!config_.rejectionFile.empty()) {
        const auto seen = PinRejectionStore(config_.rejectionFile).check(serial, pin);
        if (!seen.error.empty())
            return {KeyErrorKind::Other, seen.error + "; the PIN is not sent"};
        if (seen.rejected)
            return {KeyErrorKind::PinPreviouslyRejected,
                    "the card " + serial + " rejected the PIN in " + config_.pinFile +
                        (seen.entry.kind == "blocked" ? " (the PIN is blocked)" : "") +
                        " before; it is not tried again, by any process, until that file holds "
                        "another PIN (then reload the service)",
                    seen.entry.kind == "blocked" ? 0 : seen.entry.triesLeft};
    }
    if (token.flags & CKF_USER_PIN_LOCKED)
        return {KeyErrorKind::PinLocked,
                "the PIN is blocked; unblock it with the PUK (demail-card pin unblock)", 0};
    if (token.flags & CKF_USER_PIN_FINAL_TRY)
        return {KeyErrorKind::PinLastTry,
                "the PIN has one try left; the service does not spend it. Verify the PIN by hand "
                "(demail-card pin change --force), then reload the service",
                1};

    // The card itself, over PC/SC and without a PIN: its retry counter and its certificate.
    CK_SLOT_INFO slotInfo{};
    const std::string slotDescription =
        f->C_GetSlotInfo(matching[0], &slotInfo) == CKR_OK
            ? trimmed(slotInfo.slotDescription, sizeof slotInfo.slotDescription)
            : std::string();
    CardFacts facts;
    if (config_.checkCardOverPcsc)
        facts =
            readCardFacts(slotDescription, serial, uri.id, !config_.expectedCertificates.empty());
    if (!facts.refusal.empty())
        return {facts.refusalKind == CardErrorKind::CardRemoved ||
                        facts.refusalKind == CardErrorKind::NoCard
                    ? KeyErrorKind::TokenAbsent
                    : KeyErrorKind::Other,
                facts.refusal};
    if (facts.onPcsc) {
        const PinStatus& st = facts.pin;
        if (st.state == PinState::Blocked)
            return {KeyErrorKind::PinLocked,
                    "the PIN is blocked; unblock it with the PUK (demail-card pin unblock)", 0};
        if (st.state == PinState::Sealed)
            return {KeyErrorKind::Other,
                    "the card's PIN is not set yet (sealed card): set it with demail-card pin "
                    "init, put it into " +
                        config_.pinFile + " and reload the service"};
        if (st.triesLeft < 0)
            return {KeyErrorKind::Other,
                    "the card does not tell its PIN retry counter; the PIN is not sent"};
        if (st.triesLeft <= 1)
            return {KeyErrorKind::PinLastTry,
                    "the PIN has one try left; the service does not spend it. Check the PIN, "
                    "verify it by hand (demail-card pin change --force, or pin unblock with the "
                    "PUK), then reload the service",
                    st.triesLeft};
    }

    auto impl = std::make_shared<Impl>();
    impl->module = module;
    impl->generation = module->generation;
    impl->signatures = carried;
    const CK_RV opened =
        f->C_OpenSession(matching[0], CKF_SERIAL_SESSION, nullptr, nullptr, &impl->session);
    if (opened != CKR_OK) {
        impl->session = CK_INVALID_HANDLE;
        restartModule_ = lostToken(opened);
        return {KeyErrorKind::TokenAbsent, "cannot open a session on the token"};
    }

    // Objects by id (and label if given). Certificates are public: found before the login too.
    auto findOne = [&](CK_OBJECT_CLASS cls) -> CK_OBJECT_HANDLE {
        std::vector<CK_ATTRIBUTE> tmpl = {{CKA_CLASS, &cls, sizeof cls}};
        if (!uri.id.empty())
            tmpl.push_back({CKA_ID, const_cast<unsigned char*>(uri.id.data()), uri.id.size()});
        if (!uri.object.empty())
            tmpl.push_back({CKA_LABEL, const_cast<char*>(uri.object.data()), uri.object.size()});
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        CK_ULONG found = 0;
        if (f->C_FindObjectsInit(impl->session, tmpl.data(), tmpl.size()) != CKR_OK)
            return CK_INVALID_HANDLE;
        f->C_FindObjects(impl->session, &h, 1, &found);
        f->C_FindObjectsFinal(impl->session);
        return found ? h : CK_INVALID_HANDLE;
    };
    Bytes tokenCert;
    if (const CK_OBJECT_HANDLE certObj = findOne(CKO_CERTIFICATE); certObj != CK_INVALID_HANDLE) {
        CK_ATTRIBUTE value{CKA_VALUE, nullptr, 0};
        if (f->C_GetAttributeValue(impl->session, certObj, &value, 1) == CKR_OK) {
            tokenCert.resize(value.ulValueLen);
            value.pValue = tokenCert.data();
            if (f->C_GetAttributeValue(impl->session, certObj, &value, 1) != CKR_OK)
                tokenCert.clear();
        }
    }

    // The PIN goes only to the configured card: its certificate must be an expected one (the
    // card read over PC/SC when it is one, else what the token shows).
    // A token outside PC/SC that shows no certificate (a SoftHSM key imported alone) cannot be
    // checked before the login; it is local software, not a card a network could fake.
    const Bytes& shown = !facts.certificate.empty() ? facts.certificate : tokenCert;
    if (!config_.expectedCertificates.empty() && (facts.onPcsc || !shown.empty())) {
        if (shown.empty())
            return {KeyErrorKind::WrongCard,
                    "the token shows no certificate for the key, so it cannot be checked against "
                    "the configured one; the PIN is not sent"};
        const std::string fp = sha256Hex(shown.data(), shown.size());
        bool known = false;
        for (const auto& want : config_.expectedCertificates)
            known = known || lower(want) == fp;
        if (!known)
            return {KeyErrorKind::WrongCard,
                    "the card" + (facts.reader.empty() ? "" : " in '" + facts.reader + "'") +
                        " shows certificate SHA-256 " + fp +
                        ", not the configured one ([provider] client_cert or the certificate "
                        "store); the PIN is not sent to it"};
    }

    const CK_RV login =
        f->C_Login(impl->session, CKU_USER,
                   reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.reveal().data())),
                   static_cast<CK_ULONG>(pin.size()));
    if (login == CKR_PIN_INCORRECT || login == CKR_PIN_LOCKED) {
        const bool locked = login == CKR_PIN_LOCKED;
        KeyLoadResult r{locked ? KeyErrorKind::PinLocked : KeyErrorKind::WrongPin,
                        locked ? "the PIN is blocked; unblock it with the PUK (demail-card pin "
                                 "unblock)"
                               : "the card rejected the PIN from " + config_.pinFile +
                                     "; it will not be tried again until the PIN file is changed"};
        if (locked) {
            r.triesLeft = 0;
        } else if (facts.onPcsc && facts.pin.triesLeft > 0) {
            r.triesLeft = facts.pin.triesLeft - 1;
        } else {
            CK_TOKEN_INFO info;
            if (f->C_GetTokenInfo(matching[0], &info) == CKR_OK) {
                if (info.flags & CKF_USER_PIN_LOCKED)
                    r.triesLeft = 0;
                else if (info.flags & CKF_USER_PIN_FINAL_TRY)
                    r.triesLeft = 1;
            }
        }
        rejected_ = Rejection{serial, pinHash, r};
        if (!config_.rejectionFile.empty()) {
            const std::string e =
                PinRejectionStore(config_.rejectionFile)
                    .record({serial, locked ? "blocked" : "wrong", r.triesLeft}, pin);
            if (!e.empty())
                r.message +=
                    " (WARNING: the rejection could not be recorded for other processes: " + e +
                    ")";
        }
        pin.wipe();
        return r;
    }
    pin.wipe();
    if (login != CKR_OK && login != CKR_USER_ALREADY_LOGGED_IN) {
        // The module listed the token a moment ago; if it now says the token is gone, its view
        // of the reader may be stale (seen with OpenSC after a pull and re-insert): the next
        // load() starts it afresh.
        restartModule_ = lostToken(login);
        return {KeyErrorKind::Other, "login on the token failed (CKR " + std::to_string(login) +
                                         ")" + (lostToken(login) ? ": the card went away" : "")};
    }

    impl->key = findOne(CKO_PRIVATE_KEY);
    if (impl->key == CK_INVALID_HANDLE)
        return {KeyErrorKind::KeyNotFound, "no private key matches " + config_.keyUri};

    // Its certificate: from the token, else from the configured file.
    X509* cert = nullptr;
    if (!tokenCert.empty()) {
        const unsigned char* p = tokenCert.data();
        cert = d2i_X509(nullptr, &p, static_cast<long>(tokenCert.size()));
    }
    if (!cert && !config_.certificateFile.empty()) {
        if (FILE* fp = std::fopen(config_.certificateFile.c_str(), "r")) {
            cert = PEM_read_X509(fp, nullptr, nullptr, nullptr);
            std::fclose(fp);
        }
    }
    if (!cert)
        return {KeyErrorKind::KeyNotFound,
                "the token shows no certificate for the key and none is configured (Debian 12's "
                "OpenSC hides plain-DER TCOS certificates: run demail-certpromote)"};

    // An RSA key with the certificate's public half whose private operation is C_Sign.
    EVP_PKEY* pub = X509_get0_pubkey(cert);
    const RSA* pubRsa = pub ? EVP_PKEY_get0_RSA(pub) : nullptr;
    if (!pubRsa) {
        X509_free(cert);
        return {KeyErrorKind::Other, "the certificate's key is not RSA"};
    }
    impl->method = RSA_meth_dup(RSA_get_default_method());
    RSA_meth_set1_name(impl->method, "demail PKCS#11 key");
    RSA_meth_set_priv_enc(impl->method, &forwardPrivEnc);
    RSA* rsa = RSA_new();
    RSA_set0_key(rsa, BN_dup(RSA_get0_n(pubRsa)), BN_dup(RSA_get0_e(pubRsa)), nullptr);
    RSA_set_method(rsa, impl->method);
    RSA_set_ex_data(rsa, rsaIndex(), new ImplRef(impl));
    EVP_PKEY* key = EVP_PKEY_new();
    EVP_PKEY_assign_RSA(key, rsa);

    impl_ = std::move(impl);  // shared with the RSA
    key_ = key;
    cert_ = cert;
    return {};
}

}  // namespace demail::smartcard
