// Command APDUs (ISO 7816-4, short and extended), responses, the one status-word table, and a
// minimal BER-TLV reader.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "demail/smartcard/errors.h"

namespace demail::smartcard {

using Bytes = std::vector<std::uint8_t>;

struct CommandApdu {
    std::uint8_t cla = 0x00, ins = 0, p1 = 0, p2 = 0;
    Bytes data;
    std::optional<std::size_t> le;  // expected response length; 256 / 65536 = "all"
    // Encodes as short where it fits, else extended (Lc > 255 or Le > 256).
    Bytes encode() const;
};

struct ResponseApdu {
    Bytes data;
    std::uint16_t sw = 0;
    bool ok() const { return sw == 0x9000; }
    static std::optional<ResponseApdu> parse(const Bytes& raw);  // nothing if < 2 bytes
};

// The status-word table: every SW the card layer knows, with its error kind and meaning.
// 63Cx gives WrongPin with x tries left.
CardError errorFor(std::uint16_t sw, const std::string& operation);
std::string describeStatusWord(std::uint16_t sw);

// BER-TLV with one- or two-byte tags and short or 81/82 long lengths.
struct Tlv {
    unsigned tag = 0;
    Bytes value;
};
// Parses a sequence of TLVs; nothing if malformed.
std::optional<std::vector<Tlv>> parseTlvs(const Bytes& data);
const Tlv* findTag(const std::vector<Tlv>& tlvs, unsigned tag);

std::string toHex(const Bytes& b, char separator = ' ');

}  // namespace demail::smartcard
