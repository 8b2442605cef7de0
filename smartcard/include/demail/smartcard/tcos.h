// The card operations the product needs, on a TCOS 3 card through any CardChannel: serial,
// certificates (plain DER and TeleSec's OID-prefixed form), PIN status from EF_PWDD, VERIFY,
// NullPIN initialisation, CHANGE REFERENCE DATA and RESET RETRY COUNTER.
//
// PIN rule: nothing here ever sends a PIN on its own initiative. Status queries read EF_PWDD and
// send an empty VERIFY, which costs no try.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "demail/smartcard/card_channel.h"
#include "demail/smartcard/card_profile.h"
#include "demail/smartcard/secret.h"

namespace demail::smartcard {

enum class PinState {
    Ready,     // set, not verified in this card session
    Verified,  // verified in this card session
    Blocked,   // no tries left: unblock with the PUK
    Sealed,    // NullPIN: never set (card as delivered)
};
const char* toString(PinState s);

struct PinStatus {
    std::uint8_t ref = 0;
    std::string name;
    PinState state = PinState::Ready;
    int triesLeft = -1;  // from EF_PWDD
    int maxTries = -1;
};

class TcosCard {
  public:
    TcosCard(CardChannel& channel, const CardProfile& profile);

    Result<std::string> serial();                      // ICCSN from EF.GDO, hex
    Result<Bytes> readCertificate(std::uint16_t fid);  // DER, either storage form
    Result<PinStatus> pinStatus(std::uint8_t ref);
    Result<Done> verify(std::uint8_t ref, const Secret& pin);
    Result<Done> initialise(std::uint8_t ref, const Secret& newPin);  // sealed -> first PIN
    Result<Done> change(std::uint8_t ref, const Secret& oldPin, const Secret& newPin);
    Result<Done> unblock(std::uint8_t ref, const Secret& puk, const Secret& newPin);

    const CardProfile& profile() const { return profile_; }

  private:
    Result<ResponseApdu> run(const CommandApdu& c, const std::string& operation);
    Result<Done> selectPath(const Bytes& pathFromMf, const std::string& operation);
    Result<Bytes> readWholeFile(const std::string& operation);
    Result<ResponseApdu> sendSecrets(std::uint8_t ins, std::uint8_t ref, Bytes prefix,
                                     const Secret& first, const Secret* second,
                                     const std::string& operation);
    Result<Done> checkPinLength(std::uint8_t ref, const Secret& pin, const std::string& what);
    // Runs body inside a PC/SC transaction.
    template <typename F>
    auto locked(F&& body) -> decltype(body());

    CardChannel& channel_;
    const CardProfile& profile_;
};

}  // namespace demail::smartcard
