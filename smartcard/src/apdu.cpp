#include "demail/smartcard/apdu.h"

#include <cstdio>

namespace demail::smartcard {

Bytes CommandApdu::encode() const {
    Bytes out = {cla, ins, p1, p2};
    const bool extended = data.size() > 255 || (le && *le > 256);
    if (!extended) {
        if (!data.empty()) {
            out.push_back(static_cast<std::uint8_t>(data.size()));
            out.insert(out.end(), data.begin(), data.end());
        }
        if (le)
            out.push_back(static_cast<std::uint8_t>(*le >= 256 ? 0 : *le));
        return out;
    }
    out.push_back(0x00);
    if (!data.empty()) {
        out.push_back(static_cast<std::uint8_t>(data.size() >> 8));
        out.push_back(static_cast<std::uint8_t>(data.size() & 0xFF));
        out.insert(out.end(), data.begin(), data.end());
    }
    if (le) {
        const std::size_t l = *le >= 65536 ? 0 : *le;
        out.push_back(static_cast<std::uint8_t>(l >> 8));
        out.push_back(static_cast<std::uint8_t>(l & 0xFF));
    }
    return out;
}

std::optional<ResponseApdu> ResponseApdu::parse(const Bytes& raw) {
    if (raw.size() < 2)
        return std::nullopt;
    ResponseApdu r;
    r.data.assign(raw.begin(), raw.end() - 2);
    r.sw = static_cast<std::uint16_t>((raw[raw.size() - 2] << 8) | raw.back());
    return r;
}

namespace {
struct SwEntry {
    std::uint16_t sw;
    CardErrorKind kind;
    const char* meaning;
};
// ISO 7816-4 section 5.6 and the TCOS behaviour in reference/tcos-pcsc.md.
constexpr SwEntry kStatusWords[] = {
    {0x6282, CardErrorKind::Protocol, "end of file reached before Le bytes"},
    {0x6700, CardErrorKind::Protocol, "wrong length"},
    {0x6881, CardErrorKind::Protocol, "logical channel not supported"},
    {0x6882, CardErrorKind::Protocol, "secure messaging not supported"},
    {0x6981, CardErrorKind::Protocol, "command incompatible with file structure"},
    {0x6982, CardErrorKind::NotAllowed, "security status not satisfied (PIN not verified)"},
    {0x6983, CardErrorKind::PinBlocked, "PIN blocked"},
    {0x6984, CardErrorKind::NotAllowed, "reference data not usable"},
    {0x6985, CardErrorKind::PinNotInitialised,
     "conditions of use not satisfied (PIN not set: card still sealed)"},
    {0x6986, CardErrorKind::Protocol, "no current file"},
    {0x6A80, CardErrorKind::Protocol, "incorrect data (e.g. PIN length)"},
    {0x6A81, CardErrorKind::Protocol, "function not supported"},
    {0x6A82, CardErrorKind::NotFound, "file not found"},
    {0x6A83, CardErrorKind::NotFound, "record not found"},
    {0x6A86, CardErrorKind::Protocol, "incorrect P1/P2"},
    {0x6A88, CardErrorKind::NotFound, "referenced data (key or PIN) not found"},
    {0x6B00, CardErrorKind::Protocol, "offset outside the file"},
    {0x6D00, CardErrorKind::Protocol, "instruction not supported"},
    {0x6E00, CardErrorKind::Protocol, "class not supported"},
    {0x6F00, CardErrorKind::Other, "card error without diagnosis"},
};
}  // namespace

std::string describeStatusWord(std::uint16_t sw) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "%04X", sw);
    if (sw == 0x9000)
        return "9000 ok";
    if ((sw & 0xFFF0) == 0x63C0)
        return std::string(hex) + " wrong PIN, " + std::to_string(sw & 0x0F) + " tries left";
    for (const auto& e : kStatusWords)
        if (e.sw == sw)
            return std::string(hex) + " " + e.meaning;
    return std::string(hex) + " unknown status";
}

CardError errorFor(std::uint16_t sw, const std::string& operation) {
    if ((sw & 0xFFF0) == 0x63C0) {
        const int tries = sw & 0x0F;
        return cardError(CardErrorKind::WrongPin,
                         operation + ": wrong PIN, " + std::to_string(tries) +
                             (tries == 1 ? " try left" : " tries left"),
                         tries, sw);
    }
    for (const auto& e : kStatusWords)
        if (e.sw == sw)
            return cardError(e.kind, operation + ": card answered " + describeStatusWord(sw), -1,
                             sw);
    return cardError(CardErrorKind::Protocol,
                     operation + ": card answered " + describeStatusWord(sw), -1, sw);
}

std::optional<std::vector<Tlv>> parseTlvs(const Bytes& d) {
    std::vector<Tlv> out;
    std::size_t i = 0;
    while (i < d.size()) {
        if (d[i] == 0x00 || d[i] == 0xFF) {  // padding between objects
            ++i;
            continue;
        }
        unsigned tag = d[i++];
        if ((tag & 0x1F) == 0x1F) {
            if (i >= d.size())
                return std::nullopt;
            tag = (tag << 8) | d[i++];
        }
        if (i >= d.size())
            return std::nullopt;
        std::size_t len = d[i++];
        if (len == 0x81 || len == 0x82) {
            const std::size_t n = len - 0x80;
            if (i + n > d.size())
                return std::nullopt;
            len = 0;
            for (std::size_t k = 0; k < n; ++k)
                len = (len << 8) | d[i++];
        } else if (len > 0x80) {
            return std::nullopt;
        }
        if (i + len > d.size())
            return std::nullopt;
        out.push_back(
            {tag, Bytes(d.begin() + static_cast<long>(i), d.begin() + static_cast<long>(i + len))});
        i += len;
    }
    return out;
}

const Tlv* findTag(const std::vector<Tlv>& tlvs, unsigned tag) {
    for (const auto& t : tlvs)
        if (t.tag == tag)
            return &t;
    return nullptr;
}

std::string toHex(const Bytes& b, char separator) {
    static const char* digits = "0123456789ABCDEF";
    std::string s;
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i && separator)
            s += separator;
        s += digits[b[i] >> 4];
        s += digits[b[i] & 15];
    }
    return s;
}

}  // namespace demail::smartcard
