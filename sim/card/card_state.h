// What a card remembers across power cycles: its serial number, each PIN's value, retry counter
// and NullPIN seal. Persisted atomically in <state>/card.state (a test card: the PIN values are
// stored in clear, mode 0600).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace demail::sim {

struct PinRecord {
    std::string value;
    int tries = 3;
    int maxTries = 3;
    bool sealed = false;  // NullPIN: no value yet; set once with CHANGE REFERENCE DATA 6x00||new
    std::size_t minLength = 6;
};

// References: global PIN 0x00 and PUK 0x01 (MF/5049), local PINs 0x83 and 0x81 (DF01/5049).
inline constexpr std::uint8_t kGlobalPin = 0x00, kPuk = 0x01, kPin2 = 0x83, kPin1 = 0x81;

struct CardState {
    std::string serialHex = "89490170000000012345";  // ICCSN, 10 bytes BCD-like
    std::map<std::uint8_t, PinRecord> pins;

    static CardState fresh(bool sealed, const std::string& pin, const std::string& puk);
    // Empty error on success; a missing file is not an error (nothing returned).
    static std::optional<CardState> load(const std::string& path, std::string& error);
    std::string save(const std::string& path) const;  // "" or error
};

}  // namespace demail::sim
