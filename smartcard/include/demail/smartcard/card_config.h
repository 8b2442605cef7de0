// The [card] section of gateway.ini (docs/configuration.md): which reader, PKCS#11 module, key
// and PIN file. Declared here, next to the code that uses it, and read the same way by
// demail-card, demail-certpromote and the gateway (config::File::apply(cardSection(), …)).
#pragma once

#include <string>

#include "demail/config/schema.h"

namespace demail::smartcard {

struct CardConfig {
    std::string reader;  // substring of the PC/SC reader name; empty: first reader with a card
    std::string pkcs11Module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
    std::string keyUri;
    std::string pinFile = "/etc/demail-gateway/card.pin";
    // OpenSC configuration for the daemon: turns OpenSC's PIN cache off (deploy/opensc.conf).
    std::string openscConf = "/usr/share/demail-gateway/opensc.conf";
    // Where every process that logs in records a PIN the card rejected (and its HMAC key, at
    // this path + ".key"). Empty: the gateway's default in its spool (gateway/config.h).
    std::string pinRejectionFile;
};

const config::Section<CardConfig>& cardSection();

}  // namespace demail::smartcard
