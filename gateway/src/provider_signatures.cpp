#include "demail/gateway/provider_signatures.h"

#include "demail/connector/message/inbound.h"
#include "demail/connector/message/provider_signature.h"

namespace demail::gateway {
namespace {

using connector::SignatureCheck;
using connector::SignatureState;

// Header text: printable ASCII without quotes and backslashes (details may name a subject).
std::string ascii(const std::string& s) {
    std::string out;
    for (unsigned char c : s)
        out += c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? static_cast<char>(c) : '?';
    return out.size() > 200 ? out.substr(0, 200) + "..." : out;
}

bool holds(SignatureState s) {
    return s == SignatureState::Valid || s == SignatureState::Unverified;
}

std::string part(const char* name, const SignatureCheck& c) {
    return std::string(name) + "=" + connector::toString(c.state) + " (" + ascii(c.detail) + ")";
}

}  // namespace

std::string ProviderSignatures::configure(const std::string& caFile, const std::string& crlFile) {
    std::shared_ptr<const connector::ProviderTrust> trust;
    if (!caFile.empty()) {
        std::string error;
        trust = connector::ProviderTrust::load(caFile, crlFile, error);
        if (!trust)
            return "[provider] signature_ca/signature_crl: " + error;
    }
    std::lock_guard lock(mutex_);
    trust_ = std::move(trust);
    crl_ = trust_ && trust_->checksRevocation();
    return {};
}

SignatureVerdict ProviderSignatures::verify(const std::string& message) {
    std::shared_ptr<const connector::ProviderTrust> trust;
    bool crl = false;
    {
        std::lock_guard lock(mutex_);
        trust = trust_;
        crl = crl_;
    }
    SignatureCheck integrity = connector::verifyIntegrity(message, trust.get());
    const auto kind = connector::classifyInbound(message).kind;
    // Confirmations and Meldungen come from the provider itself, signed (PVD_IO §3.4.1).
    const bool fromProvider = connector::isConfirmation(kind) ||
                              kind == connector::InboundKind::Notification ||
                              kind == connector::InboundKind::MalwareNotification;
    if (fromProvider && !holds(integrity.state) && integrity.state != SignatureState::Invalid)
        integrity = {SignatureState::Invalid,
                     "a " + std::string(connector::toString(kind)) +
                         " must be signed by the provider (" + integrity.detail + ")",
                     integrity.signer};
    std::string signer = integrity.signer;
    SignatureVerdict v;
    v.failed = integrity.state == SignatureState::Invalid;
    v.header = part("integrity", integrity);
    v.summary = v.header;
    if (connector::isConfirmation(kind)) {
        std::string error;
        const auto xml = connector::confirmationXmlOf(message, error);
        SignatureCheck x;
        if (!xml)
            x = {SignatureState::Invalid, "no confirmation XML: " + error, {}};
        else
            x = connector::verifyXmlSignature(xml->raw, trust.get());
        if (x.state == SignatureState::Absent || x.state == SignatureState::HashOnly)
            x = {SignatureState::Invalid, "a confirmation must carry the provider's XML signature",
                 x.signer};
        v.failed = v.failed || x.state == SignatureState::Invalid;
        v.header += ";\r\n " + part("confirmation-signature", x);
        v.summary += "; " + part("confirmation-signature", x);
        if (signer.empty())
            signer = x.signer;
    }
    const std::string tail =
        (signer.empty() ? std::string() : "signer=\"" + ascii(signer) + "\"; ") +
        "trust=" + (trust ? (crl ? "provider-ca+crl" : "provider-ca") : "none-configured");
    v.header += ";\r\n " + tail;
    v.summary += "; " + tail;
    return v;
}

}  // namespace demail::gateway
