// Verifies what the De-Mail provider signs, on the bytes as retrieved (TR-01201 PVD_IO):
// - X-de-mail-integrity (§3.1.13, §3.1.21): a DKIM header (RFC 6376) with c=simple/simple, the
//   TR's fields in h= (the first occurrence of a field counts), either signed with the key of the
//   certificate in X-de-mail-signature-certificate (never a key from DNS) or only hashed;
// - the enveloped XML-DSig (libxmlsec1) of a confirmation's Acknowledge-Message (§3.5.1).
// A signature is valid when its value matches and its certificate chains to a configured
// provider trust anchor at the time of the check, not revoked when a CRL is configured. Pure
// functions of their input; no I/O but loading the trust files.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

typedef struct x509_st X509;
typedef struct x509_store_st X509_STORE;

namespace demail::connector {

class ProviderTrust {
  public:
    // caFile: PEM, one or more trust anchors; crlFile (may be empty): PEM CRL(s) of their
    // issuers; with it every certificate in the chain must be covered by a CRL. Nothing and an
    // error when a file cannot be read or holds nothing usable.
    static std::shared_ptr<const ProviderTrust> load(const std::string& caFile,
                                                     const std::string& crlFile,
                                                     std::string& error);
    ~ProviderTrust();
    ProviderTrust(const ProviderTrust&) = delete;
    ProviderTrust& operator=(const ProviderTrust&) = delete;

    // "" when cert chains to an anchor now (intermediates may help), or why not.
    std::string verifyCertificate(X509* cert, const std::vector<X509*>& intermediates) const;
    bool checksRevocation() const { return crl_; }

  private:
    ProviderTrust() = default;
    X509_STORE* store_ = nullptr;
    bool crl_ = false;
};

enum class SignatureState {
    Valid,       // signed, the value matches, the signer chains to the trust anchor
    HashOnly,    // only hashed (no signer), and the hash matches: integrity, not origin
    Unverified,  // signed and the value matches its own certificate, no trust anchor configured
    Invalid,     // altered, a certificate that does not chain or is revoked, malformed
    Absent,      // no signature at all
};
const char* toString(SignatureState s);  // pass, hash-only, unverified, fail, none

struct SignatureCheck {
    SignatureState state = SignatureState::Absent;
    std::string detail;  // one line: why, for the header and the log
    std::string signer;  // RFC 2253 subject of the signer's certificate, when there is one
};

// X-de-mail-integrity of a message. trust may be null (no anchor configured).
// An absenderbestätigt message (X-de-mail-authoritative: yes) must be signed: only hashed or
// unsigned it is Invalid (PVD_IO §3.1.21).
SignatureCheck verifyIntegrity(std::string_view message, const ProviderTrust* trust);

// The XML-DSig of a confirmation's XML (as decoded from its MIME part): one enveloped signature,
// a child of the root element, whose single reference covers the whole document (URI="").
SignatureCheck verifyXmlSignature(std::string_view xml, const ProviderTrust* trust);

}  // namespace demail::connector
