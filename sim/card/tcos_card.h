// The TCOS 3 NetKey card as OpenSC's card-tcos.c and pkcs15-tcos.c expect it (reference:
// shared/reference/tcos-pcsc.md sections 1.1-1.6): files, PIN objects with retry counters and the
// NullPIN seal, the security environment and the RSA operations. Pure logic: bytes in, bytes out;
// the vpcd link and persistence live elsewhere.
//
//   3F00 (MF)
//     2F02  EF.GDO, tag 5A ICCSN (the serial OpenSC reads)
//     5049  EF_PWDD: global PIN 0x00, PUK 0x01
//     DF01  AID D2 76 00 00 03 01 02 (NetKey)
//       C000 / C200 / C500  certificates (signature / encryption / authentication)
//       5349  EF_KEYD: keys 0x80 (sign), 0x81 (decipher), 0x82 (sign + decipher)
//       5049  EF_PWDD: local PINs 0x83 ("NetKey PIN2") and 0x81 ("NetKey PIN1")
// Keys 0x81 and 0x82 need PIN 0x83, key 0x80 needs PIN 0x81 (pkcs15-tcos.c auth ids 3 and 4).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "apdu.h"
#include "card_keys.h"
#include "card_state.h"

namespace demail::sim {

enum class CertForm {
    Der,          // the certificate as plain DER
    OidPrefixed,  // 30 82 LL LL 06 03 55 04 24 <certificate>, as TeleSec stores them
};

class TcosCard {
  public:
    using Persist = std::function<void(const CardState&)>;
    TcosCard(const CardKeys& keys, CardState state, CertForm form, Persist persist);

    static Bytes atr();
    void powerOff();  // and reset: the security status and the current file are forgotten
    Bytes process(const Bytes& command);
    // Whether a command carries a PIN or PUK (its data must never be logged).
    static bool carriesSecret(const Bytes& command);
    const CardState& state() const { return state_; }

  private:
    struct File {
        std::string path;  // "3F00", "3F00/DF01/C500"
        std::uint16_t fid;
        enum class Kind { Df, Transparent, Records } kind;
        Bytes aid;
    };
    const File* find(const std::string& path) const;
    const File* child(const std::string& dfPath, std::uint16_t fid) const;
    std::string parentOf(const std::string& path) const;
    Bytes content(const File& f) const;
    std::vector<Bytes> records(const File& f) const;
    Bytes fcp(const File& f) const;

    Bytes select(const Apdu& a);
    Bytes readBinary(const Apdu& a);
    Bytes readRecord(const Apdu& a);
    Bytes verify(const Apdu& a);
    Bytes changeReferenceData(const Apdu& a);
    Bytes resetRetryCounter(const Apdu& a);
    Bytes manageSecurityEnvironment(const Apdu& a);
    Bytes performSecurityOperation(const Apdu& a);

    Bytes wrongPin(PinRecord& pin);  // counts down, persists, answers 63Cx
    bool newPinLengthOk(std::uint8_t ref, std::size_t len) const;
    void persist();

    const CardKeys& keys_;
    CardState state_;
    CertForm form_;
    Persist persist_;
    std::vector<File> files_;
    std::string currentDf_ = "3F00";
    std::optional<std::string> currentEf_;
    std::set<std::uint8_t> verified_;
    std::optional<std::uint8_t> securityKey_;
};

}  // namespace demail::sim
