// The provider's own signatures, as a DMDA makes them (TR-01201 PVD_IO):
// - X-de-mail-integrity (§3.1.13, §3.1.21): a DKIM header (RFC 6376, c=simple/simple, no l=, the
//   TR's field list in h=, the first occurrence of a field counts), either signed
//   (a=sha256/rsa, q=x-header/x-de-mail-signature-certificate, the signer's certificate in
//   X-de-mail-signature-certificate) or only hashed (a=sha256, b= the header hash);
// - the XML-DSig in a confirmation's Acknowledge-Message (§3.5.1), enveloped, over the whole
//   document, with the signer's certificate in KeyInfo (libxmlsec1).
// A real provider signs with a qualified certificate; the simulator with a key of its own test
// PKI in <state>/signing/ (ca.pem is the trust anchor the gateway is configured with, crl.pem its
// revocation list, POST /control/signing revokes the signer). Written independently of the
// gateway's verifier (connector/message/provider_signature), so that one cannot hide a bug of the
// other (DESIGN.md "Module rules").
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "test_pki.h"

namespace demail::sim::provider {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class ProviderSigner {
  public:
    // Creates <dir>/signing/{ca,signer}.{pem,key} and an empty crl.pem unless they exist.
    static std::unique_ptr<ProviderSigner> open(const std::string& stateDir, std::string& error);

    const std::string& caPath() const { return caPath_; }
    const std::string& crlPath() const { return crlPath_; }

    // Appends X-de-mail-integrity (and, when signing, X-de-mail-signature-certificate) for a
    // message with these headers and this body.
    void addIntegrity(HeaderList& headers, const std::string& body, bool sign) const;
    // The XML with an enveloped ds:Signature as the root element's last child; CRLF line ends.
    // Empty when signing failed.
    std::string signXml(const std::string& xml) const;
    // Writes a CRL naming the signer's certificate (revoked = true) or an empty one.
    bool setRevoked(bool revoked, std::string& error);

  private:
    ProviderSigner() = default;
    std::string caPath_, crlPath_, signerCertPath_, signerKeyPath_;
    KeyPtr caKey_, signerKey_;
    CertPtr ca_, signer_;
    std::string signerDerBase64_;
    mutable std::mutex xmlMutex_;  // libxmlsec1 contexts are made per call; the key load is not
};

// X-de-mail-integrity without a key (hash only), for a simulator started without --state.
void addHashOnlyIntegrity(HeaderList& headers, const std::string& body);

}  // namespace demail::sim::provider
