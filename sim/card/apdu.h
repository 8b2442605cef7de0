// ISO 7816-4 command APDUs as the card sees them (short and extended length), response building,
// and the BER-TLV helpers the card's file control parameters need.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace demail::sim {

using Bytes = std::vector<std::uint8_t>;

struct Apdu {
    std::uint8_t cla = 0, ins = 0, p1 = 0, p2 = 0;
    Bytes data;
    std::optional<std::size_t> le;  // absent: no response data expected; 0 in short form = 256
    bool extended = false;
};

// Parses cases 1-4, short and extended. Nothing for a malformed command (the card answers 6700).
std::optional<Apdu> parseApdu(const Bytes& raw);

// Status words used by the card.
namespace sw {
constexpr std::uint16_t kOk = 0x9000;
constexpr std::uint16_t kEndOfFile = 0x6282;
constexpr std::uint16_t kWrongLength = 0x6700;
constexpr std::uint16_t kSecurityNotSatisfied = 0x6982;
constexpr std::uint16_t kBlocked = 0x6983;
constexpr std::uint16_t kConditionsNotSatisfied = 0x6985;  // also: PIN still in NullPIN state
constexpr std::uint16_t kNoCurrentEf = 0x6986;
constexpr std::uint16_t kWrongData = 0x6A80;
constexpr std::uint16_t kFileNotFound = 0x6A82;
constexpr std::uint16_t kRecordNotFound = 0x6A83;
constexpr std::uint16_t kWrongP1P2 = 0x6A86;
constexpr std::uint16_t kReferenceNotFound = 0x6A88;
constexpr std::uint16_t kOffsetBeyondFile = 0x6B00;
constexpr std::uint16_t kInsNotSupported = 0x6D00;
constexpr std::uint16_t kClaNotSupported = 0x6E00;
inline std::uint16_t triesLeft(int n) {
    return static_cast<std::uint16_t>(0x63C0 | (n & 0x0F));
}
}  // namespace sw

Bytes response(std::uint16_t statusWord, const Bytes& data = {});
// tag, length (BER short or 81/82 long form), value
Bytes tlv(std::uint8_t tag, const Bytes& value);
std::string hex(const Bytes& b, std::size_t max = SIZE_MAX);

}  // namespace demail::sim
