// The gateway's check of what the provider signed (connector/message/provider_signature.h), on
// the bytes as retrieved, before anything in them is changed: X-de-mail-integrity on every item,
// and the XML-DSig of a confirmation. The result travels in one header that only the gateway
// sets (X-Demail-Gateway-Verified; a copy from outside is stripped with every
// X-Demail-Gateway-* header) and in the item's archive record. A signature that does not hold
// is marked, logged and counted; the item is still delivered: the recipient, not the gateway,
// decides what an altered confirmation means, and it is kept as evidence either way.
#pragma once

#include <memory>
#include <mutex>
#include <string>

namespace demail::connector {
class ProviderTrust;
}

namespace demail::gateway {

inline constexpr const char* kVerifiedHeader = "X-Demail-Gateway-Verified";

struct SignatureVerdict {
    std::string header;   // the value of X-Demail-Gateway-Verified (ASCII, folded)
    std::string summary;  // one line for the archive record and the log
    bool failed = false;  // a signature that does not hold: altered, untrusted, revoked, missing
                          // where the TR requires one (confirmation, Meldung, absenderbestätigt)
};

class SignatureVerifier {
  public:
    virtual ~SignatureVerifier() = default;
    virtual SignatureVerdict verify(const std::string& message) = 0;
};

class ProviderSignatures : public SignatureVerifier {
  public:
    // Loads [provider] signature_ca and signature_crl (at start and at SIGHUP: a new CRL is
    // read then; an empty caFile checks signatures against their own certificates only). "" or
    // the error; on an error the trust in use stays.
    std::string configure(const std::string& caFile, const std::string& crlFile);
    SignatureVerdict verify(const std::string& message) override;

  private:
    std::mutex mutex_;
    std::shared_ptr<const connector::ProviderTrust> trust_;
    bool crl_ = false;
};

}  // namespace demail::gateway
