#include "demail/smartcard/card_config.h"

namespace demail::smartcard {

const config::Section<CardConfig>& cardSection() {
    using C = CardConfig;
    static const config::Section<CardConfig> section{
        "card",
        {
            config::text("reader", &C::reader),
            config::readableFile("pkcs11_module", &C::pkcs11Module),
            {"key_uri", config::Kind::Text,
             [](C& c, const std::string& v) {
                 if (!v.empty() && v.rfind("pkcs11:", 0) != 0)
                     return config::expected("a pkcs11: URI (RFC 7512)", v);
                 c.keyUri = v;
                 return std::string();
             },
             [](const C& c) { return c.keyUri; }, "(required unless `[provider] client_key`)"},
            // Not checked for readability here: the service reads it through a systemd
            // credential or as its own user; the card layer reports an unreadable PIN file with
            // its path.
            config::text("pin_file", &C::pinFile),
            config::absolutePath("pin_rejection_file", &C::pinRejectionFile,
                                 "`<[queue] dir>/card-pin-rejected`"),
            config::text("opensc_conf", &C::openscConf),
        }};
    return section;
}

}  // namespace demail::smartcard
