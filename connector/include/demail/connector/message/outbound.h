// Turning a message an internal server relayed to us into a De-Mail submission: map the sender
// to a De-Mail account, refuse anything that is not De-Mail (never fall back to ordinary mail),
// read the shipping options from internal markers, strip what an internal sender must not set,
// and add the user metadata of TR_De_Mail_PVD_IO Tabelle 1 (the provider adds the rest).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "demail/connector/message/demail_headers.h"

namespace demail::connector {

class PrivateIdSeal;

// Which internal senders may send as which De-Mail account. `internal` is an address
// ("poststelle@firma.de") or a domain written "@firma.de"; exact addresses win over domains.
struct AccountMapping {
    std::string internal;
    std::string account;  // the De-Mail address, e.g. poststelle@firma.de-mail.de
};
struct AccountMap {
    std::vector<AccountMapping> entries;
    // The accounts the provider lists for our card: each may send as itself even when the
    // accounts file does not name it (an empty accounts file means exactly that).
    std::vector<std::string> ownAccounts;
    // Who receives an account's Persönlich mail: explicit "<person> <account> personal" lines of
    // the accounts file, never a domain mapping, never the postmaster (PVD_FU §3.1.2.3).
    std::vector<AccountMapping> persons;
    std::optional<std::string> accountFor(std::string_view sender) const;
    std::optional<std::string> personFor(std::string_view account) const;
    // Where inbound mail for an account goes: the first plain address mapped to it.
    std::optional<std::string> inboxFor(std::string_view account) const;
};

struct OutboundContext {
    std::string queueId;                          // becomes X-de-mail-private-id
    std::string envelopeSender;                   // MAIL FROM
    std::vector<std::string> envelopeRecipients;  // RCPT TO
    std::vector<std::string> deMailDomains;       // from the provider: what counts as De-Mail
    AccountMap accounts;
    // Set: the envelope sender goes sealed into the private-id, for a peer gateway
    // (private_id_seal.h). Null: the private-id is the queue id (and the sender's own value).
    const PrivateIdSeal* privateIdSeal = nullptr;
};

enum class RefusalKind {
    None,
    SenderNotMapped,     // 550 5.7.1: this sender may not send De-Mail
    RecipientNotDeMail,  // 550 5.7.1 (or 5.1.1): never relayed as ordinary mail
    PrivateIdTooLong,    // 554 5.6.0
    OptionUnknown,       // 554 5.6.0: a marker we do not understand
    MalformedMessage,    // 554 5.6.0: the header section cannot be parsed
};

struct OutboundPreparation {
    RefusalKind refusal = RefusalKind::None;
    std::string reason;     // one line for the SMTP reply or the DSN
    std::string offending;  // the address or value at fault
    bool ok() const { return refusal == RefusalKind::None; }

    std::string account;  // the De-Mail sender
    ShippingOptions options;
    ChosenRecipients recipients;
    std::string headers;             // the new header section (CRLF, ends with the empty line)
    std::size_t bodyOffset = 0;      // the body is the original message from here, unchanged
    std::vector<std::string> notes;  // what was changed, for the log ("Reply-To removed ...")

    // Correlation (docs/demail-message.md "Private-id"): what goes to the provider as
    // X-de-mail-private-id ("<queue id>" or "<queue id>.<the sender's own value>"), the sender's
    // own value (empty if none) and the message's Message-ID as the sender wrote it (empty if
    // none), both kept by the gateway to give confirmations back to the sender.
    std::string privateId;
    std::string senderPrivateId;
    std::string messageId;
};

inline constexpr std::size_t kMaxPrivateIdLength = 1024;  // TR_De_Mail_PVD_IO, X-de-mail-private-id

// The private-id the gateway sends: the queue id alone, or "<queue id>.<sender's value>" when the
// internal sender set an X-de-mail-private-id of its own (a file number, say). With a seal of the
// internal sender (private_id_seal.h): "<queue id>-<seal>" before that. Queue ids never hold a
// '.' or a '-', and a seal is base32, so the split is unambiguous.
std::string composePrivateId(std::string_view queueId, std::string_view senderValue,
                             std::string_view seal = {});
// The part before the first '.' and before a '-' in it: the queue id the gateway correlates by.
// The rest is never trusted; the sender's value is restored from the gateway's own record.
std::string queueIdOfPrivateId(std::string_view privateId);
// The seal between the queue id and the first '.', or empty.
std::string sealOfPrivateId(std::string_view privateId);
// After the first '.': the internal sender's own value, or empty.
std::string senderValueOfPrivateId(std::string_view privateId);

// Checks only the envelope (sender mapping, recipients' domains): what the SMTP intake can
// decide at MAIL FROM / RCPT TO time, before the message is accepted.
OutboundPreparation checkEnvelope(const OutboundContext& context);
OutboundPreparation prepareOutbound(std::string_view message, const OutboundContext& context);

}  // namespace demail::connector
