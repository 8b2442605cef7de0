// Every RFC 3463 enhanced status code the gateway writes into a DSN or the queue, in one table,
// like smtp/reply.h for SMTP replies: code sites name an entry, the numbers and their meaning
// live here.
#pragma once

namespace demail::gateway::dsn_status {

struct Code {
    const char* code;     // "5.1.1"
    const char* meaning;  // what it says about a De-Mail message
};

// 2.x.x: handed over
inline constexpr Code kRelayed{"2.0.0", "handed to the De-Mail provider"};
// 4.x.x: still trying (in a delay warning), or expired after max_age
inline constexpr Code kLocalError{"4.3.0", "the queued message cannot be read"};
inline constexpr Code kProviderUnreachable{"4.4.1", "the provider did not take it yet"};
inline constexpr Code kExpired{"4.4.7", "not accepted by the provider within max_age"};
inline constexpr Code kOperatorAction{"4.7.0", "the card, PIN or account needs the operator"};
// 5.x.x: refused for good
inline constexpr Code kPermanent{"5.0.0", "refused by the provider"};
inline constexpr Code kRecipientUnknown{"5.1.1", "the provider knows no such De-Mail recipient"};
inline constexpr Code kAccountClosed{"5.2.1", "the recipient's De-Mail account is closed"};
inline constexpr Code kNotDeMail{"5.6.0", "not a De-Mail message the gateway can submit"};
inline constexpr Code kProviderRefused{"5.7.0", "the provider refused the submission"};
inline constexpr Code kNotAllowed{"5.7.1", "the sender or a recipient is not allowed for De-Mail"};
inline constexpr Code kMalware{"5.7.1", "the provider found malware in the message"};
// A Meldung the provider sent after accepting the message (unknown-recipient, closed-account,
// invalid-format, other; malware-notification): reported to the sender like a late bounce.
inline constexpr Code kInvalidFormat{"5.6.0", "the provider found the message's format invalid"};

}  // namespace demail::gateway::dsn_status
