// Which cards the product knows, as data (like OpenSC's ATR tables): the ATR picks a profile that
// says where the certificates, keys and PINs live. First and only so far: TCOS 3 with the NetKey
// layout (reference/tcos-pcsc.md 1.4), the layout of the De-Mail card as far as it is known.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "demail/smartcard/apdu.h"

namespace demail::smartcard {

struct PinSpec {
    std::uint8_t ref;
    std::string name;
    Bytes pwddPath;  // EF_PWDD holding its record, path from the MF
    std::size_t minLength;
    bool isPuk = false;
};

struct CertSpec {
    std::uint16_t fid;
    Bytes path;  // from the MF
    std::string name;
    std::uint8_t keyRef;
    std::uint8_t pkcs15Id;  // the id OpenSC gives the certificate and key (%47 ...)
};

struct CardProfile {
    std::string name;
    std::vector<Bytes> atrs;
    std::vector<CertSpec> certificates;
    std::vector<PinSpec> pins;
    std::uint8_t authPinRef;  // the PIN that protects the TLS key
    std::uint8_t pukRef;
    std::string pkcs11AuthToken;  // OpenSC's token label for the TLS key
    const CertSpec* certificate(std::uint16_t fid) const;
    const PinSpec* pin(std::uint8_t ref) const;
};

// Nothing when the ATR is unknown ("unsupported card, ATR ...").
const CardProfile* profileForAtr(const Bytes& atr);
const std::vector<CardProfile>& knownProfiles();

}  // namespace demail::smartcard
