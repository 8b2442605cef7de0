// The Internet -> internal trust boundary (DESIGN.md "Trust boundaries"): what an inbound De-Mail
// must look like before it goes to the internal relay. The provider returns what the external
// sender wrote, byte for byte; the internal MTA reads it as SMTP DATA. So, whatever comes in:
// - every line ends in CRLF (a bare LF or bare CR becomes CRLF; NUL bytes are removed), so that
//   "\n.\n" can never end the DATA early at the relay and smuggle a second message (H2);
// - no line is longer than 998 octets (RFC 5321 §4.5.3.1.6): a long header line is folded at
//   white space; a leaf MIME part (or single-part body) with a long line is re-encoded
//   (quoted-printable, or base64 re-wrapped, or soft line breaks added to quoted-printable), so
//   that the recipient sees the same content; what cannot be repaired is refused (parked);
// - the top-level header keeps only the first occurrence of each X-de-mail-* header (the one the
//   provider set, TR-01201: "the first occurrence counts"), drops the configured internal-trust
//   headers and any gateway header from outside, and gets the gateway's own Received: line and
//   verdict header (M9).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace demail::connector {

// The header the gateway alone sets on inbound mail; any copy from outside is removed first.
inline constexpr const char* kGatewayVerdictHeader = "X-Demail-Gateway-Verdict";

// Headers internal systems trust when they come from inside (stripped on the way in by default;
// [delivery] strip_headers replaces the list). A trailing '*' matches a prefix.
const std::vector<std::string>& defaultInternalTrustHeaders();

// Every bare LF and bare CR becomes CRLF, NUL bytes are dropped, and the text ends in CRLF.
std::string normalizeLineEnds(std::string_view in, std::size_t* nulsRemoved = nullptr,
                              bool* changed = nullptr);

// Quoted-printable (RFC 2045 §6.7) of text with CRLF line ends: hard line breaks stay, encoded
// lines are at most 76 octets.
std::string encodeQuotedPrintable(std::string_view text);

// An RFC 5321 Mailbox we are willing to put into MAIL FROM / RCPT TO: Dot-string "@" Domain
// (letters, digits, hyphens, dots); no quoted local parts, address literals, spaces, controls,
// '<' or '>'. Local part <= 64, whole <= 254.
bool isSmtpMailbox(std::string_view address);

// Whether the name matches one of the patterns (ASCII case-insensitive, '*' at the end = prefix).
bool headerMatches(std::string_view name, const std::vector<std::string>& patterns);

struct InboundStamp {
    std::string kind;         // "message", "dispatch-confirmation", ...
    std::string account;      // the De-Mail account it was addressed to (validated)
    std::string sender;       // validated envelope sender, empty for <>
    std::string providerId;   // the provider's id for the item
    std::string gatewayName;  // our host name in Received:
    std::string date;         // RFC 5322 date-time for Received:
};

struct PreparedInbound {
    std::string message;  // what goes to the relay; empty when refused
    std::string refusal;  // set when the message cannot be made safe: park it, do not deliver
    bool lineEndsRepaired = false;
    std::size_t nulsRemoved = 0;
    int partsReencoded = 0;  // leaf parts re-encoded because of lines over 998 octets
    int headersFolded = 0;
    int duplicatesDropped = 0;          // repeated X-de-mail-* headers removed
    bool duplicatesDisagree = false;    // a repeated X-de-mail-* header had another value
    std::vector<std::string> stripped;  // names of the internal-trust headers removed
    bool ok() const { return refusal.empty(); }
    std::string repairs() const;  // "crlf,nul,reencoded,folded" or "none"
};

PreparedInbound prepareInbound(std::string_view raw, const std::vector<std::string>& stripHeaders,
                               const InboundStamp& stamp);

// The invariant the relay relies on: only CRLF line ends, no line over 998 octets, no NUL.
bool isSafeForSmtp(std::string_view message);

}  // namespace demail::connector
