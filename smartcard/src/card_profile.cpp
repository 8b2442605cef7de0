#include "demail/smartcard/card_profile.h"

namespace demail::smartcard {

const std::vector<CardProfile>& knownProfiles() {
    static const std::vector<CardProfile> profiles = [] {
        CardProfile netkey;
        netkey.name = "TeleSec TCOS 3 NetKey";
        // OpenSC card-tcos.c tcos_atrs, the SC_CARD_TYPE_TCOS_V3 entries.
        netkey.atrs = {
            {0x3B, 0xBF, 0x96, 0x00, 0x81, 0x31, 0xFE, 0x5D, 0x00, 0x64, 0x04, 0x11,
             0x03, 0x01, 0x31, 0xC0, 0x73, 0xF7, 0x01, 0xD0, 0x00, 0x90, 0x00, 0x7D},
            {0x3B, 0xBF, 0x96, 0x00, 0x81, 0x31, 0xFE, 0x5D, 0x00, 0x64, 0x04, 0x11,
             0x04, 0x0F, 0x31, 0xC0, 0x73, 0xF7, 0x01, 0xD0, 0x00, 0x90, 0x00, 0x74},
            {0x3B, 0xBF, 0xB6, 0x00, 0x81, 0x31, 0xFE, 0x5D, 0x00, 0x64, 0x04, 0x28,
             0x03, 0x02, 0x31, 0xC0, 0x73, 0xF7, 0x01, 0xD0, 0x00, 0x90, 0x00, 0x67},
        };
        netkey.certificates = {
            {0xC000, {0xDF, 0x01, 0xC0, 0x00}, "signature", 0x80, 0x45},
            {0xC200, {0xDF, 0x01, 0xC2, 0x00}, "encryption", 0x81, 0x46},
            {0xC500, {0xDF, 0x01, 0xC5, 0x00}, "authentication", 0x82, 0x47},
        };
        netkey.pins = {
            {0x00, "global PIN", {0x50, 0x49}, 6, false},
            {0x01, "PUK", {0x50, 0x49}, 8, true},
            {0x83, "PIN2 (authentication and encryption keys)", {0xDF, 0x01, 0x50, 0x49}, 6, false},
            {0x81, "PIN1 (signature key)", {0xDF, 0x01, 0x50, 0x49}, 6, false},
        };
        netkey.authPinRef = 0x83;
        netkey.pukRef = 0x01;
        netkey.pkcs11AuthToken = "NetKey V3 Card (NetKey PIN2)";
        return std::vector<CardProfile>{netkey};
    }();
    return profiles;
}

const CardProfile* profileForAtr(const Bytes& atr) {
    for (const auto& p : knownProfiles())
        for (const auto& a : p.atrs)
            if (a == atr)
                return &p;
    return nullptr;
}

const CertSpec* CardProfile::certificate(std::uint16_t fid) const {
    for (const auto& c : certificates)
        if (c.fid == fid)
            return &c;
    return nullptr;
}

const PinSpec* CardProfile::pin(std::uint8_t ref) const {
    for (const auto& p : pins)
        if (p.ref == ref)
            return &p;
    return nullptr;
}

}  // namespace demail::smartcard
