#include "demail/smartcard/tcos.h"

#include <openssl/crypto.h>

namespace demail::smartcard {
namespace {

constexpr std::size_t kMaxPinLength = 16;
constexpr std::size_t kMaxFileSize = 16384;  // certificates are ~1.5 KB; anything larger is wrong

Bytes pinBytes(const Secret& s) {
    return Bytes(s.reveal().begin(), s.reveal().end());
}

// Wipes APDU data that held a PIN once the command has been sent.
void wipe(CommandApdu& c) {
    if (!c.data.empty())
        OPENSSL_cleanse(c.data.data(), c.data.size());
}

}  // namespace

const char* toString(PinState s) {
    switch (s) {
        case PinState::Ready:
            return "set";
        case PinState::Verified:
            return "verified";
        case PinState::Blocked:
            return "blocked";
        case PinState::Sealed:
            return "not set (sealed, NullPIN)";
    }
    return "?";
}

TcosCard::TcosCard(CardChannel& channel, const CardProfile& profile)
    : channel_(channel), profile_(profile) {}

template <typename F>
auto TcosCard::locked(F&& body) -> decltype(body()) {
    auto lock = channel_.beginTransaction();
    if (!lock.ok())
        return lock.error();
    auto result = body();
    channel_.endTransaction();
    return result;
}

Result<ResponseApdu> TcosCard::run(const CommandApdu& c, const std::string& operation) {
    auto r = channel_.transmit(c);
    if (!r.ok()) {
        CardError e = r.error();
        e.message = operation + ": " + e.message;
        return e;
    }
    return r;
}

Result<Done> TcosCard::selectPath(const Bytes& pathFromMf, const std::string& operation) {
    auto r = run({0x00, 0xA4, 0x08, 0x0C, pathFromMf, std::nullopt}, operation);
    if (!r.ok())
        return r.error();
    if (!r.value().ok())
        return errorFor(r.value().sw, operation + " (select " + toHex(pathFromMf, 0) + ")");
    return Done{};
}

Result<Bytes> TcosCard::readWholeFile(const std::string& operation) {
    Bytes content;
    while (content.size() < kMaxFileSize) {
        const std::size_t off = content.size();
        auto r = run({0x00,
                      0xB0,
                      static_cast<std::uint8_t>(off >> 8),
                      static_cast<std::uint8_t>(off & 0xFF),
                      {},
                      256},
                     operation);
        if (!r.ok())
            return r.error();
        const auto& resp = r.value();
        if (resp.sw == 0x6B00 && off > 0)
            break;  // exactly at the end
        if (!resp.ok() && resp.sw != 0x6282)
            return errorFor(resp.sw, operation);
        content.insert(content.end(), resp.data.begin(), resp.data.end());
        if (resp.sw == 0x6282 || resp.data.size() < 256)
            break;
    }
    return content;
}

Result<std::string> TcosCard::serial() {
    return locked([&]() -> Result<std::string> {
        auto sel = selectPath({0x2F, 0x02}, "reading the serial number");
        if (!sel.ok())
            return sel.error();
        auto data = readWholeFile("reading EF.GDO");
        if (!data.ok())
            return data.error();
        auto tlvs = parseTlvs(data.value());
        const Tlv* sn = tlvs ? findTag(*tlvs, 0x5A) : nullptr;
        if (!sn)
            return cardError(CardErrorKind::Protocol, "EF.GDO holds no serial number (tag 5A)");
        return toHex(sn->value, 0);
    });
}

Result<Bytes> TcosCard::readCertificate(std::uint16_t fid) {
    const CertSpec* spec = profile_.certificate(fid);
    if (!spec)
        return cardError(
            CardErrorKind::NotFound,
            "this card type has no certificate file " +
                toHex({static_cast<std::uint8_t>(fid >> 8), static_cast<std::uint8_t>(fid)}, 0));
    const std::string op = "reading the " + spec->name + " certificate";
    return locked([&]() -> Result<Bytes> {
        auto sel = selectPath(spec->path, op);
        if (!sel.ok())
            return sel.error();
        auto file = readWholeFile(op);
        if (!file.ok())
            return file.error();
        const Bytes& f = file.value();
        // Plain DER: 30 82 LL LL 30 82 ... TeleSec form: 30 82 LL LL 06 nn <OID> 30 82 LL LL ...
        // (pkcs15-tcos.c insert_cert). Both end where the certificate's own length says.
        if (f.size() < 4 || f[0] != 0x30 || f[1] != 0x82)
            return cardError(CardErrorKind::NotFound, op + ": the file holds no certificate");
        std::size_t start = 0;
        if (f.size() > 10 && f[4] == 0x06 && f[5] < 10 && f.size() > 8u + f[5] &&
            f[6 + f[5]] == 0x30 && f[7 + f[5]] == 0x82)
            start = 6 + f[5];
        const std::size_t len = ((std::size_t{f[start + 2]} << 8) | f[start + 3]) + 4;
        if (start + len > f.size())
            return cardError(CardErrorKind::Protocol, op + ": the certificate is truncated");
        return Bytes(f.begin() + static_cast<long>(start),
                     f.begin() + static_cast<long>(start + len));
    });
}

Result<PinStatus> TcosCard::pinStatus(std::uint8_t ref) {
    const PinSpec* spec = profile_.pin(ref);
    if (!spec)
        return cardError(CardErrorKind::NotFound,
                         "this card type has no PIN reference " + toHex({ref}, 0));
    const std::string op = "reading the state of the " + spec->name;
    return locked([&]() -> Result<PinStatus> {
        PinStatus st;
        st.ref = ref;
        st.name = spec->name;
        auto sel = selectPath(spec->pwddPath, op);
        if (!sel.ok())
            return sel.error();
        // EF_PWDD records: A0 { 83 01 ref, 90 nn .. counter }, counter = last byte of tag 90.
        for (std::uint8_t rec = 1; rec < 32; ++rec) {
            auto r = run({0x00, 0xB2, rec, 0x04, {}, 256}, op);
            if (!r.ok())
                return r.error();
            if (r.value().sw == 0x6A83)
                break;
            if (!r.value().ok())
                return errorFor(r.value().sw, op);
            auto outer = parseTlvs(r.value().data);
            const Tlv* a0 = outer ? findTag(*outer, 0xA0) : nullptr;
            auto inner = a0 ? parseTlvs(a0->value) : std::nullopt;
            if (!inner)
                continue;
            const Tlv* r83 = findTag(*inner, 0x83);
            const Tlv* fbz = findTag(*inner, 0x90);
            if (r83 && r83->value.size() == 1 && r83->value[0] == ref && fbz &&
                !fbz->value.empty()) {
                st.triesLeft = fbz->value.back();
                if (fbz->value.size() >= 2)
                    st.maxTries = fbz->value[fbz->value.size() - 2];
                break;
            }
        }
        // An empty VERIFY tells verified / not verified / blocked / sealed without a try.
        auto v = run({0x00, 0x20, 0x00, ref, {}, std::nullopt}, op);
        if (!v.ok())
            return v.error();
        const std::uint16_t sw = v.value().sw;
        if (sw == 0x9000)
            st.state = PinState::Verified;
        else if (sw == 0x6983)
            st.state = PinState::Blocked;
        else if (sw == 0x6985)
            st.state = PinState::Sealed;
        else if ((sw & 0xFFF0) == 0x63C0) {
            st.state = PinState::Ready;
            if (st.triesLeft < 0)
                st.triesLeft = sw & 0x0F;
        } else
            st.state = st.triesLeft == 0 ? PinState::Blocked : PinState::Ready;
        if (st.state == PinState::Blocked)
            st.triesLeft = 0;
        return st;
    });
}

Result<Done> TcosCard::checkPinLength(std::uint8_t ref, const Secret& pin,
                                      const std::string& what) {
    const PinSpec* spec = profile_.pin(ref);
    const std::size_t min = spec ? spec->minLength : 6;
    if (pin.size() < min || pin.size() > kMaxPinLength)
        return cardError(CardErrorKind::Protocol, what + " must have " + std::to_string(min) +
                                                      " to " + std::to_string(kMaxPinLength) +
                                                      " characters");
    return Done{};
}

// Sends a PIN command whose data is prefix || first [|| second] and wipes the data afterwards;
// the caller interprets the status word.
Result<ResponseApdu> TcosCard::sendSecrets(std::uint8_t ins, std::uint8_t ref, Bytes prefix,
                                           const Secret& first, const Secret* second,
                                           const std::string& operation) {
    CommandApdu c{0x00, ins, 0x00, ref, std::move(prefix), std::nullopt};
    // Room for everything first: a reallocation would leave a PIN behind in the freed buffer.
    c.data.reserve(c.data.size() + first.size() + (second ? second->size() : 0));
    for (const Secret* s : {&first, second}) {
        if (!s)
            continue;
        const std::string& v = s->reveal();
        c.data.insert(c.data.end(), v.begin(), v.end());
    }
    auto r = run(c, operation);
    wipe(c);
    return r;
}

Result<Done> TcosCard::verify(std::uint8_t ref, const Secret& pin) {
    const PinSpec* spec = profile_.pin(ref);
    if (!spec)
        return cardError(CardErrorKind::NotFound, "no PIN reference " + toHex({ref}, 0));
    // A PIN of impossible length would still cost a try on the card: refuse it here.
    auto len = checkPinLength(ref, pin, "the PIN");
    if (!len.ok())
        return len.error();
    return locked([&]() -> Result<Done> {
        auto sel = selectPath(spec->pwddPath, "verifying the " + spec->name);
        if (!sel.ok())
            return sel.error();
        CommandApdu c{0x00, 0x20, 0x00, ref, pinBytes(pin), std::nullopt};
        auto r = run(c, "verifying the " + spec->name);
        wipe(c);
        if (!r.ok())
            return r.error();
        if (!r.value().ok())
            return errorFor(r.value().sw, "verifying the " + spec->name);
        return Done{};
    });
}

Result<Done> TcosCard::initialise(std::uint8_t ref, const Secret& newPin) {
    const PinSpec* spec = profile_.pin(ref);
    if (!spec)
        return cardError(CardErrorKind::NotFound, "no PIN reference " + toHex({ref}, 0));
    const std::string op = "setting the first " + spec->name;
    auto len = checkPinLength(ref, newPin, "the new PIN");
    if (!len.ok())
        return len.error();
    return locked([&]() -> Result<Done> {
        auto sel = selectPath(spec->pwddPath, op);
        if (!sel.ok())
            return sel.error();
        // Only a sealed PIN may be initialised: an empty VERIFY must answer 6985.
        auto probe = run({0x00, 0x20, 0x00, ref, {}, std::nullopt}, op);
        if (!probe.ok())
            return probe.error();
        if (probe.value().sw != 0x6985)
            return cardError(CardErrorKind::NotAllowed,
                             op + ": the PIN is already set (the card is not sealed); use "
                                  "'pin change'");
        // NullPIN procedure (netkey-tool handle_nullpin): 6 x 00 || new PIN.
        auto r = sendSecrets(0x24, ref, Bytes(6, 0x00), newPin, nullptr, op);
        if (!r.ok())
            return r.error();
        if (!r.value().ok())
            return errorFor(r.value().sw, op);
        return Done{};
    });
}

Result<Done> TcosCard::change(std::uint8_t ref, const Secret& oldPin, const Secret& newPin) {
    const PinSpec* spec = profile_.pin(ref);
    if (!spec)
        return cardError(CardErrorKind::NotFound, "no PIN reference " + toHex({ref}, 0));
    const std::string op = "changing the " + spec->name;
    auto oldLen = checkPinLength(ref, oldPin, "the current PIN");
    if (!oldLen.ok())
        return oldLen.error();
    auto len = checkPinLength(ref, newPin, "the new PIN");
    if (!len.ok())
        return len.error();
    return locked([&]() -> Result<Done> {
        auto sel = selectPath(spec->pwddPath, op);
        if (!sel.ok())
            return sel.error();
        auto r = sendSecrets(0x24, ref, {}, oldPin, &newPin, op);
        if (!r.ok())
            return r.error();
        if (!r.value().ok())
            return errorFor(r.value().sw, op);
        return Done{};
    });
}

Result<Done> TcosCard::unblock(std::uint8_t ref, const Secret& puk, const Secret& newPin) {
    const PinSpec* spec = profile_.pin(ref);
    if (!spec)
        return cardError(CardErrorKind::NotFound, "no PIN reference " + toHex({ref}, 0));
    const std::string op = "unblocking the " + spec->name + " with the PUK";
    auto pukLen = checkPinLength(profile_.pukRef, puk, "the PUK");
    if (!pukLen.ok())
        return pukLen.error();
    auto len = checkPinLength(ref, newPin, "the new PIN");
    if (!len.ok())
        return len.error();
    return locked([&]() -> Result<Done> {
        auto sel = selectPath(spec->pwddPath, op);
        if (!sel.ok())
            return sel.error();
        auto r = sendSecrets(0x2C, ref, {}, puk, &newPin, op);
        if (!r.ok())
            return r.error();
        if (!r.value().ok()) {
            CardError e = errorFor(r.value().sw, op);
            if (e.kind == CardErrorKind::WrongPin)
                e.message = op + ": wrong PUK, " + std::to_string(e.triesLeft) + " PUK tries left";
            else if (e.kind == CardErrorKind::PinBlocked)
                e.message = op + ": the PUK is blocked; the card cannot be unblocked any more";
            return e;
        }
        return Done{};
    });
}

}  // namespace demail::smartcard
