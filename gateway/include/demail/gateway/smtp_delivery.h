// Hands a message to the internal mail server ([delivery] relay) by SMTP, through libcurl's SMTP
// client: inbound De-Mail, the provider's confirmations and our DSNs all leave this way.
// Why libcurl: a maintained client with STARTTLS, certificate checks, dot-stuffing and timeouts
// that we do not have to write (DESIGN.md). Its limits are noted in gateway/README.md.
#pragma once

#include <chrono>
#include <istream>
#include <string>
#include <vector>

namespace demail::gateway {

struct SmtpRelayTarget {
    std::string host = "127.0.0.1";
    unsigned port = 25;
    bool requireTls = true;  // false: STARTTLS when offered, plain otherwise
    std::string caFile;      // verify the relay's certificate and name; empty: do not verify
    std::string heloName;    // our name in EHLO
    std::chrono::seconds connectTimeout{30};
    // RFC 5321 §4.5.3.2 allows 10 min for the reply to the final dot; we wait that long in total.
    std::chrono::seconds totalTimeout{600};
};

enum class DeliveryOutcome {
    Delivered,  // the relay answered 250 to the end of DATA
    Temporary,  // try again later: 4xx, no connection, timeout, TLS required but not offered
    Permanent,  // 5xx: the relay will never take it
};

struct DeliveryResult {
    DeliveryOutcome outcome = DeliveryOutcome::Temporary;
    long replyCode = 0;  // the relay's last reply code, 0 if none
    std::string detail;  // one line for logs and DSNs, e.g. "relay 127.0.0.1:25 said 550 ..."
    bool delivered() const { return outcome == DeliveryOutcome::Delivered; }
};

// Sends one message. mailFrom may be empty for a null reverse path (DSNs: MAIL FROM:<>).
// message is RFC 5322 text with CRLF line ends; libcurl dot-stuffs it. The outcome is for the
// whole message: if any recipient is refused, nothing is sent (one recipient per call where
// per-recipient outcomes matter).
DeliveryResult deliverBySmtp(const SmtpRelayTarget& target, const std::string& mailFrom,
                             const std::vector<std::string>& recipients, std::istream& message);

}  // namespace demail::gateway
