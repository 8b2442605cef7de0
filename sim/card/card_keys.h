// The card's key material: a test CA and three RSA-2048 key pairs with certificates (signature
// C000 / key 0x80, encryption C200 / key 0x81, authentication C500 / key 0x82), generated on
// first start into the state directory as PEM, and the raw RSA private operations the card does.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "apdu.h"

namespace demail::sim {

struct KeySlot {
    std::uint8_t keyRef;
    std::uint16_t certFid;
    const char* name;  // file name stem in the state directory
};
inline constexpr KeySlot kKeySlots[] = {
    {0x80, 0xC000, "signature"},
    {0x81, 0xC200, "encryption"},
    {0x82, 0xC500, "authentication"},
};

class CardKeys {
  public:
    // Loads <dir>/{ca,signature,encryption,authentication}.{pem,key} or creates them. subject is
    // the common name of the holder, e.g. "poststelle@firma.de-mail.de". Empty error on success.
    static std::unique_ptr<CardKeys> loadOrCreate(const std::string& dir,
                                                  const std::string& subject, std::string& error);
    ~CardKeys();

    bool hasKey(std::uint8_t keyRef) const;
    Bytes certificateDer(std::uint16_t fid) const;  // empty if there is none
    std::size_t modulusBytes(std::uint8_t keyRef) const;
    // block^d mod n, the operation behind TCOS's "sign via decipher" (PSO 2A 80 86).
    std::optional<Bytes> rawPrivate(std::uint8_t keyRef, const Bytes& block) const;
    // PKCS#1 v1.5 type 1 padding plus private operation (PSO COMPUTE DIGITAL SIGNATURE 2A 9E 9A).
    std::optional<Bytes> signPkcs1(std::uint8_t keyRef, const Bytes& digestInfo) const;

  private:
    CardKeys() = default;
    std::map<std::uint8_t, EVP_PKEY*> keys_;
    std::map<std::uint16_t, Bytes> certs_;
};

}  // namespace demail::sim
