// Delivery status notifications (RFC 3464 multipart/report, RFC 3461 parameters, RFC 3463 codes),
// shaped like Postfix's (reference/smtp/postfix_bounce_*.eml) so that the internal mail servers and
// their users see what they are used to. Pure: builds the message text, sends nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace demail::gateway {

enum class DsnAction { Failed, Delayed, Delivered, Relayed };

struct DsnRecipient {
    std::string address;            // Final-Recipient
    std::string originalRecipient;  // the ORCPT parameter as given ("rfc822;a@b"), empty if none
    DsnAction action = DsnAction::Failed;
    std::string status;      // RFC 3463 code, e.g. "5.1.1"
    std::string diagnostic;  // one line: what the provider or the gateway said
    std::string remoteMta;   // the provider's host name, empty if the provider was never reached
};

enum class DsnReturn { Full, Headers };  // RFC 3461 RET

struct DsnReport {
    std::string reportingHost;  // our host name (Reporting-MTA, MAILER-DAEMON@host)
    std::string queueId;
    std::string envelopeSender;  // the original MAIL FROM; the DSN goes there
    std::string envid;           // RFC 3461 ENVID, empty if none
    std::chrono::system_clock::time_point arrival;
    std::optional<std::chrono::system_clock::time_point> willRetryUntil;  // delay warnings
    DsnReturn ret = DsnReturn::Full;
    std::vector<DsnRecipient> recipients;
};

struct DsnMessage {
    std::string envelopeTo;  // the envelope sender of the original; MAIL FROM is always <>
    std::string data;        // RFC 5322 text with CRLF line ends, not dot-stuffed
};

// Originals larger than this are returned as headers only (Postfix: bounce_size_limit = 50000).
inline constexpr std::uint64_t kDsnFullReturnLimit = 50000;

// Builds the notification. original is the queued message (CRLF or LF line ends), originalSize
// its length in bytes. Returns nothing when the original's sender is null (<>): a bounce is never
// answered with a bounce (RFC 5321 §6.1, RFC 3461 §6.2).
std::optional<DsnMessage> buildDsn(const DsnReport& report, std::istream& original,
                                   std::uint64_t originalSize,
                                   std::chrono::system_clock::time_point now);

// A Meldung (TR PVD_IO §3.5: unknown-recipient, closed-account, invalid-format, other, or a
// malware-notification) about one of our submissions, told to its internal sender as a
// multipart/report like a DSN: a text part, a message/delivery-status part (Action: failed, the
// status from meldungStatus) and the Meldung itself as message/rfc822.
struct MeldungReport {
    std::string reportingHost;
    std::string queueId;
    std::string envelopeSender;    // the original sender: the report goes there
    std::string kind;              // "notification" or "malware-notification"
    std::string notificationType;  // unknown-recipient, closed-account, invalid-format, other
    std::string text;              // what the Meldung says (its XML Text), one line
    std::string originalSubject;
    std::string privateId;      // the sender's own X-de-mail-private-id, restored; empty if none
    std::string queueIdHeader;  // value for X-Demail-Gateway-Queue-Id
    std::string inReplyTo;      // the original's Message-ID; empty if none
    std::string references;     // msg-ids, space-separated
    std::vector<DsnRecipient> recipients;
};
// The RFC 3463 status a Meldung stands for.
std::string meldungStatus(std::string_view kind, std::string_view notificationType);
// meldung: the Meldung as prepared for the relay (CRLF, lines <= 998 octets).
DsnMessage buildMeldungReport(const MeldungReport& report, std::string_view meldung,
                              std::chrono::system_clock::time_point now);

// Whether the RFC 3461 NOTIFY parameter asks for a notification of this kind. An absent NOTIFY
// means FAILURE,DELAY (RFC 3461 §4.1 leaves the default to us; Postfix does the same).
bool notifyWants(std::string_view notifyParameter, DsnAction action);

// "Sun, 22 Nov 2026 11:58:53 +0000": RFC 5322 date-time in UTC.
std::string rfc5322Date(std::chrono::system_clock::time_point t);

}  // namespace demail::gateway
