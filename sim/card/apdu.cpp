#include "apdu.h"

namespace demail::sim {

std::optional<Apdu> parseApdu(const Bytes& raw) {
    if (raw.size() < 4)
        return std::nullopt;
    Apdu a;
    a.cla = raw[0];
    a.ins = raw[1];
    a.p1 = raw[2];
    a.p2 = raw[3];
    const std::size_t n = raw.size() - 4;
    const std::uint8_t* b = raw.data() + 4;
    if (n == 0)
        return a;  // case 1
    if (n == 1) {  // case 2 short
        a.le = b[0] == 0 ? 256 : b[0];
        return a;
    }
    if (b[0] != 0) {  // short Lc
        const std::size_t lc = b[0];
        if (n == 1 + lc) {  // case 3 short
            a.data.assign(b + 1, b + 1 + lc);
            return a;
        }
        if (n == 2 + lc) {  // case 4 short
            a.data.assign(b + 1, b + 1 + lc);
            a.le = b[1 + lc] == 0 ? 256 : b[1 + lc];
            return a;
        }
        return std::nullopt;
    }
    // Extended: first byte 00.
    a.extended = true;
    if (n == 3) {  // case 2 extended
        const std::size_t le = (std::size_t{b[1]} << 8) | b[2];
        a.le = le == 0 ? 65536 : le;
        return a;
    }
    if (n < 3)
        return std::nullopt;
    const std::size_t lc = (std::size_t{b[1]} << 8) | b[2];
    if (lc == 0)
        return std::nullopt;
    if (n == 3 + lc) {  // case 3 extended
        a.data.assign(b + 3, b + 3 + lc);
        return a;
    }
    if (n == 5 + lc) {  // case 4 extended
        a.data.assign(b + 3, b + 3 + lc);
        const std::size_t le = (std::size_t{b[3 + lc]} << 8) | b[4 + lc];
        a.le = le == 0 ? 65536 : le;
        return a;
    }
    return std::nullopt;
}

Bytes response(std::uint16_t statusWord, const Bytes& data) {
    Bytes r = data;
    r.push_back(static_cast<std::uint8_t>(statusWord >> 8));
    r.push_back(static_cast<std::uint8_t>(statusWord & 0xFF));
    return r;
}

Bytes tlv(std::uint8_t tag, const Bytes& value) {
    Bytes r{tag};
    const std::size_t n = value.size();
    if (n < 0x80) {
        r.push_back(static_cast<std::uint8_t>(n));
    } else if (n < 0x100) {
        r.push_back(0x81);
        r.push_back(static_cast<std::uint8_t>(n));
    } else {
        r.push_back(0x82);
        r.push_back(static_cast<std::uint8_t>(n >> 8));
        r.push_back(static_cast<std::uint8_t>(n & 0xFF));
    }
    r.insert(r.end(), value.begin(), value.end());
    return r;
}

std::string hex(const Bytes& b, std::size_t max) {
    static const char* digits = "0123456789ABCDEF";
    std::string s;
    for (std::size_t i = 0; i < b.size() && i < max; ++i) {
        if (i)
            s += ' ';
        s += digits[b[i] >> 4];
        s += digits[b[i] & 15];
    }
    if (b.size() > max)
        s += " ...";
    return s;
}

}  // namespace demail::sim
