#include "demail/gateway/dsn.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "demail/gateway/dsn_status.h"

namespace demail::gateway {
namespace {

constexpr const char* kCrlf = "\r\n";

std::string actionName(DsnAction a) {
    switch (a) {
        case DsnAction::Failed:
            return "failed";
        case DsnAction::Delayed:
            return "delayed";
        case DsnAction::Delivered:
            return "delivered";
        case DsnAction::Relayed:
            return "relayed";
    }
    return "failed";
}

// Header values built from envelope data must not break the message: no CR/LF, no NUL.
std::string oneLine(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s)
        out += (c == '\r' || c == '\n' || c == '\0') ? ' ' : c;
    return out;
}

// Reads the original line by line, normalising the line end to CRLF. Stops after the header
// section when headersOnly is set.
void appendOriginal(std::ostream& out, std::istream& original, bool headersOnly) {
    std::string line;
    while (std::getline(original, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (headersOnly && line.empty())
            break;
        out << line << kCrlf;
    }
}

// "Name: value" CRLF, folded at white space so that no line passes 998 octets where it can be
// avoided (a value without white space stays whole).
std::string headerLine(std::string_view name, std::string_view value) {
    const std::string line = std::string(name) + ": " + oneLine(value);
    std::string out;
    std::size_t start = 0;
    while (line.size() - start > 998) {
        const std::size_t cut = line.find_last_of(" \t", start + 998);
        if (cut == std::string::npos || cut <= start)
            break;
        out.append(line, start, cut - start);
        out += kCrlf;
        start = cut;
    }
    return out + line.substr(start) + kCrlf;
}

// The multipart/report from MIME-Version to the first line of the notification part, and the
// head of the delivery-status part (RFC 3464 §2): the same for a DSN and a Meldung report.
void beginReport(std::ostream& m, const std::string& boundary, const std::string& messageId,
                 const std::string& host) {
    m << "MIME-Version: 1.0" << kCrlf;
    m << "Content-Type: multipart/report; report-type=delivery-status;" << kCrlf;
    m << "\tboundary=\"" << boundary << "\"" << kCrlf;
    m << "Content-Transfer-Encoding: 8bit" << kCrlf;
    m << "Message-Id: " << messageId << kCrlf;
    m << kCrlf << "This is a MIME-encapsulated message." << kCrlf << kCrlf;
    m << "--" << boundary << kCrlf;
    m << "Content-Description: Notification" << kCrlf;
    m << "Content-Type: text/plain; charset=utf-8" << kCrlf;
    m << "Content-Transfer-Encoding: 8bit" << kCrlf << kCrlf;
    m << "This is the De-Mail gateway at host " << host << "." << kCrlf << kCrlf;
}

void beginDeliveryStatus(std::ostream& m, const std::string& boundary, const std::string& host,
                         const std::string& queueId) {
    m << "--" << boundary << kCrlf;
    m << "Content-Description: Delivery report" << kCrlf;
    m << "Content-Type: message/delivery-status" << kCrlf << kCrlf;
    m << "Reporting-MTA: dns; " << host << kCrlf;
    m << "X-Demail-Queue-ID: " << queueId << kCrlf;
}

}  // namespace

std::string rfc5322Date(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
                  tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
    return buf;
}

bool notifyWants(std::string_view notifyParameter, DsnAction action) {
    std::string n(notifyParameter);
    std::transform(n.begin(), n.end(), n.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (n.empty())
        return action == DsnAction::Failed || action == DsnAction::Delayed;
    if (n.find("NEVER") != std::string::npos)
        return false;
    switch (action) {
        case DsnAction::Failed:
            return n.find("FAILURE") != std::string::npos;
        case DsnAction::Delayed:
            return n.find("DELAY") != std::string::npos;
        case DsnAction::Delivered:
        case DsnAction::Relayed:
            return n.find("SUCCESS") != std::string::npos;
    }
    return false;
}

std::optional<DsnMessage> buildDsn(const DsnReport& report, std::istream& original,
                                   std::uint64_t originalSize,
                                   std::chrono::system_clock::time_point now) {
    if (report.envelopeSender.empty() || report.recipients.empty())
        return std::nullopt;

    const bool delayed =
        std::all_of(report.recipients.begin(), report.recipients.end(),
                    [](const DsnRecipient& r) { return r.action == DsnAction::Delayed; });
    const bool success =
        std::all_of(report.recipients.begin(), report.recipients.end(), [](const DsnRecipient& r) {
            return r.action == DsnAction::Delivered || r.action == DsnAction::Relayed;
        });
    const bool tooBig = originalSize > kDsnFullReturnLimit;
    const bool headersOnly = delayed || success || report.ret == DsnReturn::Headers || tooBig;

    const std::string host = oneLine(report.reportingHost);
    const std::string queueId = oneLine(report.queueId);
    const auto epoch =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const std::string boundary = queueId + "." + std::to_string(epoch) + "/" + host;

    std::ostringstream m;
    m << "Date: " << rfc5322Date(now) << kCrlf;
    m << "From: Mail Delivery System <MAILER-DAEMON@" << host << ">" << kCrlf;
    m << "Subject: "
      << (delayed   ? "Delayed Mail (still being retried)"
          : success ? "Successful Mail Delivery Report"
                    : "Undelivered Mail Returned to Sender")
      << kCrlf;
    m << "To: " << oneLine(report.envelopeSender) << kCrlf;
    m << "Auto-Submitted: auto-replied" << kCrlf;
    // Part 1: for the person.
    beginReport(m, boundary, "<" + std::to_string(epoch) + "." + queueId + ".dsn@" + host + ">",
                host);
    if (delayed) {
        m << "####################################################################" << kCrlf;
        m << "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #" << kCrlf;
        m << "####################################################################" << kCrlf
          << kCrlf;
        m << "Your message could not yet be handed to the De-Mail provider." << kCrlf;
        if (report.willRetryUntil)
            m << "It will be retried until " << rfc5322Date(*report.willRetryUntil) << "." << kCrlf;
        m << "Ihre Nachricht konnte noch nicht als De-Mail versendet werden; der Versand" << kCrlf
          << "wird weiter versucht." << kCrlf << kCrlf;
    } else if (success) {
        m << "Your message was handed to the De-Mail provider." << kCrlf << kCrlf;
    } else {
        m << "I'm sorry to have to inform you that your message could not be sent" << kCrlf
          << "as De-Mail to one or more recipients. It is returned below." << kCrlf;
        m << "Ihre Nachricht konnte nicht als De-Mail versendet werden." << kCrlf << kCrlf;
    }
    for (const auto& r : report.recipients)
        m << "<" << oneLine(r.address) << ">: " << oneLine(r.diagnostic) << kCrlf;
    if (!delayed && !success && tooBig && report.ret == DsnReturn::Full)
        m << kCrlf << "The original message was larger than " << kDsnFullReturnLimit
          << " bytes; only its headers are returned." << kCrlf;
    m << kCrlf;

    // Part 2: for the machine (RFC 3464 §2).
    beginDeliveryStatus(m, boundary, host, queueId);
    if (!report.envid.empty())
        m << "Original-Envelope-Id: " << oneLine(report.envid) << kCrlf;
    m << "Arrival-Date: " << rfc5322Date(report.arrival) << kCrlf;
    for (const auto& r : report.recipients) {
        m << kCrlf;
        m << "Final-Recipient: rfc822; " << oneLine(r.address) << kCrlf;
        if (!r.originalRecipient.empty())
            m << "Original-Recipient: " << oneLine(r.originalRecipient) << kCrlf;
        m << "Action: " << actionName(r.action) << kCrlf;
        m << "Status: " << oneLine(r.status) << kCrlf;
        if (!r.remoteMta.empty())
            m << "Remote-MTA: dns; " << oneLine(r.remoteMta) << kCrlf;
        if (!r.diagnostic.empty())
            m << "Diagnostic-Code: X-De-Mail; " << oneLine(r.diagnostic) << kCrlf;
        if (r.action == DsnAction::Delayed && report.willRetryUntil)
            m << "Will-Retry-Until: " << rfc5322Date(*report.willRetryUntil) << kCrlf;
    }
    m << kCrlf;

    // Part 3: the original, whole or its headers.
    m << "--" << boundary << kCrlf;
    if (headersOnly) {
        m << "Content-Description: Undelivered Message Headers" << kCrlf;
        m << "Content-Type: text/rfc822-headers" << kCrlf;
    } else {
        m << "Content-Description: Undelivered Message" << kCrlf;
        m << "Content-Type: message/rfc822" << kCrlf;
    }
    m << "Content-Transfer-Encoding: 8bit" << kCrlf << kCrlf;
    appendOriginal(m, original, headersOnly);
    m << kCrlf << "--" << boundary << "--" << kCrlf;

    return DsnMessage{report.envelopeSender, m.str()};
}

std::string meldungStatus(std::string_view kind, std::string_view type) {
    if (kind == "malware-notification")
        return dsn_status::kMalware.code;
    if (type == "unknown-recipient")
        return dsn_status::kRecipientUnknown.code;
    if (type == "closed-account")
        return dsn_status::kAccountClosed.code;
    if (type == "invalid-format")
        return dsn_status::kInvalidFormat.code;
    return dsn_status::kPermanent.code;
}

DsnMessage buildMeldungReport(const MeldungReport& report, std::string_view meldung,
                              std::chrono::system_clock::time_point now) {
    const std::string host = oneLine(report.reportingHost);
    const std::string queueId = oneLine(report.queueId);
    const auto epoch =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const std::string boundary = queueId + "." + std::to_string(epoch) + ".meldung/" + host;
    // Text from the provider goes into our own lines: one line, and short enough for SMTP.
    const auto clip = [](std::string_view s) {
        std::string v = oneLine(s);
        return v.size() > 900 ? v.substr(0, 900) + "..." : v;
    };
    const std::string what =
        report.kind == "malware-notification" ? "malware-notification" : report.notificationType;

    std::ostringstream m;
    m << "Date: " << rfc5322Date(now) << kCrlf;
    m << "From: Mail Delivery System <MAILER-DAEMON@" << host << ">" << kCrlf;
    m << "Subject: Undelivered De-Mail (provider's Meldung: " << oneLine(what) << ")" << kCrlf;
    m << "To: " << oneLine(report.envelopeSender) << kCrlf;
    m << "Auto-Submitted: auto-replied" << kCrlf;
    if (!report.inReplyTo.empty())
        m << headerLine("In-Reply-To", report.inReplyTo);
    if (!report.references.empty())
        m << headerLine("References", report.references);
    if (!report.privateId.empty())
        m << headerLine("X-de-mail-private-id", report.privateId);
    if (!report.queueIdHeader.empty())
        m << headerLine("X-Demail-Gateway-Queue-Id", report.queueIdHeader);
    beginReport(m, boundary, "<" + std::to_string(epoch) + "." + queueId + ".meldung@" + host + ">",
                host);
    m << "The De-Mail provider accepted your message, and then reported that it could" << kCrlf
      << "not be delivered (" << oneLine(what) << "). The provider's Meldung is attached." << kCrlf;
    m << "Der De-Mail-Anbieter hat Ihre Nachricht angenommen und danach gemeldet, dass sie" << kCrlf
      << "nicht zugestellt werden konnte. Die Meldung des Anbieters ist angehängt." << kCrlf
      << kCrlf;
    if (!report.originalSubject.empty())
        m << "Subject of your message: " << clip(report.originalSubject) << kCrlf;
    if (!report.privateId.empty())
        m << "Your reference (X-de-mail-private-id): " << clip(report.privateId) << kCrlf;
    if (!report.text.empty())
        m << "The provider says: " << clip(report.text) << kCrlf;
    m << kCrlf;
    for (const auto& r : report.recipients)
        m << "<" << oneLine(r.address) << ">: " << clip(r.diagnostic) << kCrlf;
    m << kCrlf;

    beginDeliveryStatus(m, boundary, host, queueId);
    for (const auto& r : report.recipients) {
        m << kCrlf;
        m << "Final-Recipient: rfc822; " << oneLine(r.address) << kCrlf;
        m << "Action: failed" << kCrlf;
        m << "Status: " << oneLine(r.status) << kCrlf;
        if (!r.remoteMta.empty())
            m << "Remote-MTA: dns; " << oneLine(r.remoteMta) << kCrlf;
        if (!r.diagnostic.empty())
            m << "Diagnostic-Code: X-De-Mail; " << clip(r.diagnostic) << kCrlf;
    }
    m << kCrlf;

    m << "--" << boundary << kCrlf;
    m << "Content-Description: The provider's Meldung" << kCrlf;
    m << "Content-Type: message/rfc822" << kCrlf;
    m << "Content-Transfer-Encoding: 8bit" << kCrlf << kCrlf;
    m << meldung;
    if (!meldung.empty() && meldung.back() != '\n')
        m << kCrlf;
    m << kCrlf << "--" << boundary << "--" << kCrlf;
    return DsnMessage{report.envelopeSender, m.str()};
}

}  // namespace demail::gateway
