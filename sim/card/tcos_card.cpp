#include "tcos_card.h"

#include <algorithm>

namespace demail::sim {
namespace {

constexpr std::uint8_t kAtr[] = {0x3B, 0xBF, 0x96, 0x00, 0x81, 0x31, 0xFE, 0x5D,
                                 0x00, 0x64, 0x04, 0x11, 0x03, 0x01, 0x31, 0xC0,
                                 0x73, 0xF7, 0x01, 0xD0, 0x00, 0x90, 0x00, 0x7D};
constexpr std::uint8_t kNetKeyAid[] = {0xD2, 0x76, 0x00, 0x00, 0x03, 0x01, 0x02};
// userCertificate (2.5.4.36): the OID TeleSec puts before a certificate on TCOS cards.
constexpr std::uint8_t kUserCertificateOid[] = {0x06, 0x03, 0x55, 0x04, 0x24};
constexpr std::size_t kMaxPinLength = 16;

std::string fidHex(std::uint16_t fid) {
    static const char* d = "0123456789ABCDEF";
    std::string s;
    for (int shift = 12; shift >= 0; shift -= 4)
        s += d[(fid >> shift) & 15];
    return s;
}

std::uint16_t fidAt(const Bytes& b, std::size_t i) {
    return static_cast<std::uint16_t>((b[i] << 8) | b[i + 1]);
}

// Which PIN a key needs (pkcs15-tcos.c detect_netkey: auth id 4 = PIN 0x81, 3 = PIN 0x83).
std::uint8_t pinForKey(std::uint8_t keyRef) {
    return keyRef == 0x80 ? kPin1 : kPin2;
}

bool keyCanDecipher(std::uint8_t keyRef) {
    return keyRef == 0x81 || keyRef == 0x82;
}
bool keyCanSign(std::uint8_t keyRef) {
    return keyRef == 0x80 || keyRef == 0x82;
}

}  // namespace

TcosCard::TcosCard(const CardKeys& keys, CardState state, CertForm form, Persist persist)
    : keys_(keys), state_(std::move(state)), form_(form), persist_(std::move(persist)) {
    using K = File::Kind;
    files_ = {
        {"3F00", 0x3F00, K::Df, {}},
        {"3F00/2F02", 0x2F02, K::Transparent, {}},
        {"3F00/5049", 0x5049, K::Records, {}},
        {"3F00/DF01", 0xDF01, K::Df, Bytes(std::begin(kNetKeyAid), std::end(kNetKeyAid))},
        {"3F00/DF01/5349", 0x5349, K::Records, {}},
        {"3F00/DF01/5049", 0x5049, K::Records, {}},
    };
    for (const auto& slot : kKeySlots)
        files_.push_back({"3F00/DF01/" + fidHex(slot.certFid), slot.certFid, K::Transparent, {}});
}

Bytes TcosCard::atr() {
    return Bytes(std::begin(kAtr), std::end(kAtr));
}

void TcosCard::powerOff() {
    verified_.clear();
    securityKey_.reset();
    currentDf_ = "3F00";
    currentEf_.reset();
}

bool TcosCard::carriesSecret(const Bytes& command) {
    return command.size() > 4 && (command[1] == 0x20 || command[1] == 0x24 || command[1] == 0x2C);
}

const TcosCard::File* TcosCard::find(const std::string& path) const {
    for (const auto& f : files_)
        if (f.path == path)
            return &f;
    return nullptr;
}

const TcosCard::File* TcosCard::child(const std::string& dfPath, std::uint16_t fid) const {
    return find(dfPath + "/" + fidHex(fid));
}

std::string TcosCard::parentOf(const std::string& path) const {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(0, slash);
}

Bytes TcosCard::content(const File& f) const {
    if (f.fid == 0x2F02 && f.path == "3F00/2F02") {
        Bytes iccsn;
        for (std::size_t i = 0; i + 1 < state_.serialHex.size() && iccsn.size() < 10; i += 2)
            iccsn.push_back(
                static_cast<std::uint8_t>(std::stoi(state_.serialHex.substr(i, 2), nullptr, 16)));
        return tlv(0x5A, iccsn);
    }
    const Bytes der = keys_.certificateDer(f.fid);
    if (der.empty() || form_ == CertForm::Der)
        return der;
    Bytes inner(std::begin(kUserCertificateOid), std::end(kUserCertificateOid));
    inner.insert(inner.end(), der.begin(), der.end());
    // Always the two-byte long form (30 82 LL LL): OpenSC tests for 30 82 at the start.
    Bytes out = {0x30, 0x82, static_cast<std::uint8_t>(inner.size() >> 8),
                 static_cast<std::uint8_t>(inner.size() & 0xFF)};
    out.insert(out.end(), inner.begin(), inner.end());
    return out;
}

std::vector<Bytes> TcosCard::records(const File& f) const {
    auto pwdd = [this](std::uint8_t ref) {
        const PinRecord& p = state_.pins.at(ref);
        // A0 { 83 01 ref, 90 02 max current }: OpenSC takes the last byte of tag 90 as the
        // retry counter (pkcs15-tcos.c insert_pin).
        Bytes inner = tlv(0x83, {ref});
        const Bytes counter =
            tlv(0x90, {static_cast<std::uint8_t>(p.maxTries), static_cast<std::uint8_t>(p.tries)});
        inner.insert(inner.end(), counter.begin(), counter.end());
        return tlv(0xA0, inner);
    };
    if (f.path == "3F00/5049")
        return {pwdd(kGlobalPin), pwdd(kPuk)};
    if (f.path == "3F00/DF01/5049")
        return {pwdd(kPin2), pwdd(kPin1)};
    if (f.path == "3F00/DF01/5349") {
        std::vector<Bytes> out;
        for (const auto& slot : kKeySlots) {
            Bytes r = tlv(0xA0, tlv(0x83, {slot.keyRef}));
            if (keyCanSign(slot.keyRef)) {
                const Bytes t = tlv(0xB6, tlv(0x84, {slot.keyRef}));
                r.insert(r.end(), t.begin(), t.end());
            }
            if (keyCanDecipher(slot.keyRef)) {
                const Bytes t = tlv(0xB8, tlv(0x84, {slot.keyRef}));
                r.insert(r.end(), t.begin(), t.end());
            }
            out.push_back(r);
        }
        return out;
    }
    return {};
}

Bytes TcosCard::fcp(const File& f) const {
    Bytes inner;
    auto add = [&inner](const Bytes& t) { inner.insert(inner.end(), t.begin(), t.end()); };
    const std::uint8_t descriptor =
        f.kind == File::Kind::Df ? 0x38 : (f.kind == File::Kind::Records ? 0x04 : 0x01);
    add(tlv(0x82, {descriptor}));
    add(tlv(0x83, {static_cast<std::uint8_t>(f.fid >> 8), static_cast<std::uint8_t>(f.fid)}));
    if (!f.aid.empty())
        add(tlv(0x84, f.aid));
    if (f.kind == File::Kind::Transparent) {
        const std::size_t size = content(f).size();
        add(tlv(0x80, {static_cast<std::uint8_t>(size >> 8), static_cast<std::uint8_t>(size)}));
    }
    add(tlv(0x8A, {0x05}));  // life cycle: operational, activated
    return tlv(0x62, inner);
}

Bytes TcosCard::process(const Bytes& command) {
    const auto parsed = parseApdu(command);
    if (!parsed)
        return response(sw::kWrongLength);
    const Apdu& a = *parsed;
    if (a.cla != 0x00 && a.cla != 0x80)
        return response(sw::kClaNotSupported);
    if (a.cla == 0x80) {
        // TCOS proprietary commands (LIST DIR 80 AA, SET PERMANENT 80 EE ...) are not part of
        // this card's life after personalisation; OpenSC tolerates 6A82 for LIST DIR.
        return response(a.ins == 0xAA ? sw::kFileNotFound : sw::kInsNotSupported);
    }
    switch (a.ins) {
        case 0xA4:
            return select(a);
        case 0xB0:
            return readBinary(a);
        case 0xB2:
            return readRecord(a);
        case 0x20:
            return verify(a);
        case 0x24:
            return changeReferenceData(a);
        case 0x2C:
            return resetRetryCounter(a);
        case 0x22:
            return manageSecurityEnvironment(a);
        case 0x2A:
            return performSecurityOperation(a);
        default:
            return response(sw::kInsNotSupported);
    }
}

Bytes TcosCard::select(const Apdu& a) {
    if (a.p2 != 0x04 && a.p2 != 0x00 && a.p2 != 0x0C)
        return response(sw::kWrongP1P2);
    const File* target = nullptr;
    const Bytes& d = a.data;
    switch (a.p1) {
        case 0x00:  // MF, or a FID seen from the current DF
            if (d.empty() || (d.size() == 2 && fidAt(d, 0) == 0x3F00)) {
                target = find("3F00");
            } else if (d.size() == 2) {
                target = child(currentDf_, fidAt(d, 0));
                if (!target)
                    target = child("3F00", fidAt(d, 0));
            } else {
                return response(sw::kWrongData);
            }
            break;
        case 0x01:  // DF under the current DF
        case 0x02:  // EF under the current DF
            if (d.size() != 2)
                return response(sw::kWrongLength);
            target = child(currentDf_, fidAt(d, 0));
            if (target && ((a.p1 == 0x01) != (target->kind == File::Kind::Df)))
                target = nullptr;
            break;
        case 0x03:  // parent DF
            target = find(parentOf(currentDf_));
            break;
        case 0x04:  // by DF name (AID)
            for (const auto& f : files_)
                if (!f.aid.empty() && f.aid == d)
                    target = &f;
            break;
        case 0x08:    // path from the MF
        case 0x09: {  // path from the current DF
            if (d.empty() || d.size() % 2 != 0)
                return response(sw::kWrongLength);
            std::string at = a.p1 == 0x08 ? "3F00" : currentDf_;
            std::size_t i = 0;
            if (a.p1 == 0x08 && fidAt(d, 0) == 0x3F00)
                i = 2;
            const File* f = find(at);
            for (; i < d.size(); i += 2) {
                if (!f || f->kind != File::Kind::Df)
                    return response(sw::kFileNotFound);
                f = child(f->path, fidAt(d, i));
            }
            target = f;
            break;
        }
        default:
            return response(sw::kWrongP1P2);
    }
    if (!target)
        return response(sw::kFileNotFound);
    if (target->kind == File::Kind::Df) {
        currentDf_ = target->path;
        currentEf_.reset();
    } else {
        currentDf_ = parentOf(target->path);
        currentEf_ = target->path;
    }
    return a.p2 == 0x0C ? response(sw::kOk) : response(sw::kOk, fcp(*target));
}

Bytes TcosCard::readBinary(const Apdu& a) {
    if (a.p1 & 0x80)
        return response(sw::kWrongP1P2);  // short EF identifiers are not used on this card
    const File* f = currentEf_ ? find(*currentEf_) : nullptr;
    if (!f)
        return response(sw::kNoCurrentEf);
    if (f->kind != File::Kind::Transparent)
        return response(0x6981);  // command incompatible with file structure
    const Bytes c = content(*f);
    const std::size_t offset = (std::size_t{a.p1} << 8) | a.p2;
    if (offset >= c.size())
        return response(sw::kOffsetBeyondFile);
    const std::size_t want = a.le.value_or(256);
    const std::size_t n = std::min(want, c.size() - offset);
    Bytes out(c.begin() + static_cast<long>(offset), c.begin() + static_cast<long>(offset + n));
    return response(n < want ? sw::kEndOfFile : sw::kOk, out);
}

Bytes TcosCard::readRecord(const Apdu& a) {
    if ((a.p2 & 0x07) != 0x04 || (a.p2 >> 3) != 0)
        return response(sw::kWrongP1P2);
    const File* f = currentEf_ ? find(*currentEf_) : nullptr;
    if (!f)
        return response(sw::kNoCurrentEf);
    if (f->kind != File::Kind::Records)
        return response(0x6981);
    const auto recs = records(*f);
    if (a.p1 == 0 || a.p1 > recs.size())
        return response(sw::kRecordNotFound);
    return response(sw::kOk, recs[a.p1 - 1]);
}

Bytes TcosCard::wrongPin(PinRecord& pin) {
    if (pin.tries > 0)
        --pin.tries;
    persist();
    return response(sw::triesLeft(pin.tries));
}

bool TcosCard::newPinLengthOk(std::uint8_t ref, std::size_t len) const {
    return len >= state_.pins.at(ref).minLength && len <= kMaxPinLength;
}

void TcosCard::persist() {
    if (persist_)
        persist_(state_);
}

Bytes TcosCard::verify(const Apdu& a) {
    if (a.p1 != 0x00)
        return response(sw::kWrongP1P2);
    auto it = state_.pins.find(a.p2);
    if (it == state_.pins.end())
        return response(sw::kReferenceNotFound);
    PinRecord& pin = it->second;
    if (pin.sealed)
        return response(sw::kConditionsNotSatisfied);  // NullPIN: set a PIN first
    if (pin.tries == 0)
        return response(sw::kBlocked);
    if (a.data.empty())  // status query (netkey-tool's show_pin)
        return response(verified_.count(a.p2) ? sw::kOk : sw::triesLeft(pin.tries));
    if (std::string(a.data.begin(), a.data.end()) != pin.value) {
        verified_.erase(a.p2);
        return wrongPin(pin);
    }
    if (pin.tries != pin.maxTries) {
        pin.tries = pin.maxTries;
        persist();
    }
    verified_.insert(a.p2);
    return response(sw::kOk);
}

Bytes TcosCard::changeReferenceData(const Apdu& a) {
    auto it = state_.pins.find(a.p2);
    if (it == state_.pins.end())
        return response(sw::kReferenceNotFound);
    PinRecord& pin = it->second;
    const Bytes& d = a.data;
    if (a.p1 == 0x01) {  // new PIN only, after a successful VERIFY
        if (pin.sealed || !verified_.count(a.p2))
            return response(sw::kSecurityNotSatisfied);
        if (!newPinLengthOk(a.p2, d.size()))
            return response(sw::kWrongData);
        pin.value.assign(d.begin(), d.end());
        persist();
        return response(sw::kOk);
    }
    if (a.p1 != 0x00)
        return response(sw::kWrongP1P2);
    if (pin.sealed) {
        // NullPIN initialisation, once per card life: 6 x 00 || new PIN (netkey-tool nullpin).
        if (d.size() <= 6 || !std::all_of(d.begin(), d.begin() + 6, [](auto b) { return b == 0; }))
            return response(sw::kWrongData);
        if (!newPinLengthOk(a.p2, d.size() - 6))
            return response(sw::kWrongData);
        pin.value.assign(d.begin() + 6, d.end());
        pin.sealed = false;
        pin.tries = pin.maxTries;
        verified_.insert(a.p2);
        persist();
        return response(sw::kOk);
    }
    if (pin.tries == 0)
        return response(sw::kBlocked);
    const std::size_t oldLen = pin.value.size();
    if (d.size() <= oldLen)
        return response(sw::kWrongLength);
    if (std::string(d.begin(), d.begin() + static_cast<long>(oldLen)) != pin.value) {
        verified_.erase(a.p2);
        return wrongPin(pin);
    }
    if (!newPinLengthOk(a.p2, d.size() - oldLen))
        return response(sw::kWrongData);
    pin.value.assign(d.begin() + static_cast<long>(oldLen), d.end());
    pin.tries = pin.maxTries;
    verified_.insert(a.p2);
    persist();
    return response(sw::kOk);
}

Bytes TcosCard::resetRetryCounter(const Apdu& a) {
    auto it = state_.pins.find(a.p2);
    if (it == state_.pins.end() || a.p2 == kPuk)
        return response(sw::kReferenceNotFound);
    PinRecord& target = it->second;
    PinRecord& puk = state_.pins.at(kPuk);
    const Bytes& d = a.data;
    if (a.p1 == 0x02 || a.p1 == 0x03) {  // PUK verified before
        if (!verified_.count(kPuk))
            return response(sw::kSecurityNotSatisfied);
        if (a.p1 == 0x02) {
            if (!newPinLengthOk(a.p2, d.size()))
                return response(sw::kWrongData);
            target.value.assign(d.begin(), d.end());
            target.sealed = false;
        }
        target.tries = target.maxTries;
        persist();
        return response(sw::kOk);
    }
    if (a.p1 != 0x00 && a.p1 != 0x01)
        return response(sw::kWrongP1P2);
    if (puk.tries == 0)
        return response(sw::kBlocked);
    const std::size_t pukLen = puk.value.size();
    if (d.size() < pukLen || (a.p1 == 0x00 && d.size() == pukLen) ||
        (a.p1 == 0x01 && d.size() != pukLen))
        return response(sw::kWrongLength);
    if (std::string(d.begin(), d.begin() + static_cast<long>(pukLen)) != puk.value)
        return wrongPin(puk);
    if (a.p1 == 0x00) {
        if (!newPinLengthOk(a.p2, d.size() - pukLen))
            return response(sw::kWrongData);
        target.value.assign(d.begin() + static_cast<long>(pukLen), d.end());
        target.sealed = false;
    } else if (target.sealed) {
        return response(sw::kConditionsNotSatisfied);  // nothing to unblock: set a PIN first
    }
    puk.tries = puk.maxTries;
    target.tries = target.maxTries;
    persist();
    return response(sw::kOk);
}

Bytes TcosCard::manageSecurityEnvironment(const Apdu& a) {
    if (a.p1 == 0xF3)  // RESTORE
        return response(sw::kOk);
    if ((a.p1 != 0x41 && a.p1 != 0xC1 && a.p1 != 0x81) || (a.p2 != 0xB8 && a.p2 != 0xB6))
        return response(sw::kWrongP1P2);
    std::optional<std::uint8_t> key;
    const Bytes& d = a.data;
    for (std::size_t i = 0; i + 1 < d.size(); i += 2 + d[i + 1]) {
        if (i + 2 + d[i + 1] > d.size())
            return response(sw::kWrongData);
        if (d[i] == 0x84 && d[i + 1] == 1)
            key = d[i + 2];
    }
    if (!key || !keys_.hasKey(*key))
        return response(sw::kReferenceNotFound);
    securityKey_ = key;
    return response(sw::kOk);
}

Bytes TcosCard::performSecurityOperation(const Apdu& a) {
    const bool decipherForm = a.p1 == 0x80 && a.p2 == 0x86;  // also TCOS "sign via decipher"
    const bool signForm = a.p1 == 0x9E && a.p2 == 0x9A;
    if (!decipherForm && !signForm)
        return response(sw::kWrongP1P2);
    if (!securityKey_)
        return response(sw::kConditionsNotSatisfied);
    const std::uint8_t key = *securityKey_;
    if (!verified_.count(pinForKey(key)))
        return response(sw::kSecurityNotSatisfied);
    if (decipherForm) {
        if (!keyCanDecipher(key))
            return response(sw::kConditionsNotSatisfied);
        const std::size_t n = keys_.modulusBytes(key);
        if (a.data.size() != n + 1)
            return response(sw::kWrongLength);
        // The first byte is the padding indicator; the card works on the block after it.
        const auto out = keys_.rawPrivate(key, Bytes(a.data.begin() + 1, a.data.end()));
        return out ? response(sw::kOk, *out) : response(sw::kWrongData);
    }
    if (!keyCanSign(key))
        return response(sw::kConditionsNotSatisfied);
    if (a.data.empty() || a.data.size() > keys_.modulusBytes(key) - 11)
        return response(sw::kWrongLength);
    const auto out = keys_.signPkcs1(key, a.data);
    return out ? response(sw::kOk, *out) : response(sw::kWrongData);
}

}  // namespace demail::sim
