#include "demail/connector/message/outbound.h"
#include "demail/connector/message/private_id_seal.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "demail/connector/message/header_block.h"

namespace demail::connector {
namespace {

// The sender's display name as it may appear before the account's address. A name holding '@'
// is dropped: "finanzamt@berlin.de-mail.de <poststelle@firma.de-mail.de>" shows recipients a
// different sender, and parsers differ on an unquoted '@' in a phrase. RFC 2047 encoded words
// stay as they are (they may not be quoted); a name of atoms stays; anything else becomes one
// quoted-string. Control characters are removed.
std::string safeDisplayName(std::string name) {
    std::string clean;
    for (const char c : name)
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f)
            clean += c;
    name = clean;
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
        std::string inner;
        for (std::size_t i = 1; i + 1 < name.size(); ++i) {
            if (name[i] == '\\' && i + 2 < name.size())
                ++i;
            inner += name[i];
        }
        name = inner;
    }
    if (name.empty() || name.find('@') != std::string::npos)
        return {};
    if (name.find("=?") != std::string::npos)
        return name;
    bool atoms = true;
    for (const char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || (c & 0x80) ||
              std::string_view(" !#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos))
            atoms = false;
    if (atoms)
        return name;
    std::string quoted = "\"";
    for (const char c : name) {
        if (c == '"' || c == '\\')
            quoted += '\\';
        quoted += c;
    }
    return quoted + "\"";
}

OutboundPreparation refuse(RefusalKind kind, std::string reason, std::string offending = {}) {
    OutboundPreparation p;
    p.refusal = kind;
    p.reason = std::move(reason);
    p.offending = std::move(offending);
    return p;
}

bool contains(const std::vector<std::string>& list, const std::string& a) {
    return std::any_of(list.begin(), list.end(),
                       [&](const std::string& x) { return equalsIgnoreCase(x, a); });
}

// "[persoenlich] [abholbestaetigung] Antrag" -> options + "Antrag". Only tags at the start count.
bool takeSubjectTags(std::string& subject, ShippingOptions& options, std::string& unknown) {
    std::string s = trim(subject);
    while (!s.empty() && s[0] == '[') {
        const auto close = s.find(']');
        if (close == std::string::npos)
            break;
        const std::string word = s.substr(1, close - 1);
        ShippingOptions probe = options;
        if (!applyOptionWord(word, probe)) {
            // Not one of ours ("[EXTERN]", "[Ticket 4711]"): leave it and everything after it.
            break;
        }
        options = probe;
        s = trim(s.substr(close + 1));
    }
    (void)unknown;
    subject = s;
    return true;
}

}  // namespace

std::optional<std::string> AccountMap::accountFor(std::string_view sender) const {
    const std::string s = toLower(sender);
    for (const auto& e : entries)
        if (!e.internal.empty() && e.internal[0] != '@' && toLower(e.internal) == s)
            return e.account;
    const std::string domain = "@" + domainOf(s);
    for (const auto& e : entries)
        if (!e.internal.empty() && e.internal[0] == '@' && toLower(e.internal) == domain)
            return e.account;
    // A De-Mail account sending as itself (the internal server already uses the account name).
    for (const auto& e : entries)
        if (toLower(e.account) == s)
            return e.account;
    for (const auto& a : ownAccounts)
        if (toLower(a) == s)
            return a;
    return std::nullopt;
}

std::optional<std::string> AccountMap::inboxFor(std::string_view account) const {
    for (const auto& e : entries)
        if (equalsIgnoreCase(e.account, account) && !e.internal.empty() && e.internal[0] != '@')
            return e.internal;
    return std::nullopt;
}

std::string composePrivateId(std::string_view queueId, std::string_view senderValue,
                             std::string_view seal) {
    std::string id(queueId);
    if (!seal.empty())
        id += "-" + std::string(seal);
    if (!senderValue.empty())
        id += "." + std::string(senderValue);
    return id;
}

std::string queueIdOfPrivateId(std::string_view privateId) {
    const auto ours = privateId.substr(0, privateId.find('.'));
    return std::string(ours.substr(0, ours.find('-')));
}

std::string sealOfPrivateId(std::string_view privateId) {
    const auto ours = privateId.substr(0, privateId.find('.'));
    const auto dash = ours.find('-');
    return dash == std::string_view::npos ? std::string() : std::string(ours.substr(dash + 1));
}

std::string senderValueOfPrivateId(std::string_view privateId) {
    const auto dot = privateId.find('.');
    return dot == std::string_view::npos ? std::string() : std::string(privateId.substr(dot + 1));
}

std::optional<std::string> AccountMap::personFor(std::string_view account) const {
    for (const auto& e : persons)
        if (equalsIgnoreCase(e.account, account))
            return e.internal;
    return std::nullopt;
}

OutboundPreparation checkEnvelope(const OutboundContext& c) {
    OutboundPreparation p;
    const auto account = c.accounts.accountFor(c.envelopeSender);
    if (c.envelopeSender.empty() || !account)
        return refuse(RefusalKind::SenderNotMapped,
                      "sender <" + c.envelopeSender + "> is not mapped to a De-Mail account",
                      c.envelopeSender);
    p.account = *account;
    for (const auto& r : c.envelopeRecipients) {
        if (!isValidDeMailAddress(r) || !inDomains(r, c.deMailDomains))
            return refuse(
                RefusalKind::RecipientNotDeMail,
                "recipient <" + r + "> is not a De-Mail address; the gateway sends only De-Mail",
                r);
    }
    return p;
}

OutboundPreparation prepareOutbound(std::string_view message, const OutboundContext& c) {
    OutboundPreparation p = checkEnvelope(c);
    if (!p.ok())
        return p;
    if (c.queueId.size() > kMaxPrivateIdLength)
        return refuse(RefusalKind::PrivateIdTooLong,
                      "queue id longer than the 1024 characters X-de-mail-private-id allows");
    std::string error;
    auto headers = HeaderBlock::parse(message, error);
    if (!headers)
        return refuse(RefusalKind::MalformedMessage, "the message cannot be parsed: " + error);

    // Shipping options: the internal header, then subject tags.
    if (const std::string* list = headers->get(header::kInternalOptions)) {
        std::string word;
        for (std::size_t i = 0; i <= list->size(); ++i) {
            if (i == list->size() || (*list)[i] == ',' || (*list)[i] == ' ') {
                if (!trim(word).empty() && !applyOptionWord(word, p.options))
                    return refuse(RefusalKind::OptionUnknown,
                                  "unknown De-Mail option '" + trim(word) + "' in " +
                                      header::kInternalOptions,
                                  trim(word));
                word.clear();
            } else {
                word += (*list)[i];
            }
        }
    }
    if (const std::string* subject = headers->get("Subject")) {
        std::string s = *subject, unknown;
        takeSubjectTags(s, p.options, unknown);
        if (s != *subject) {
            headers->set("Subject", s);
            p.notes.push_back("option tags removed from the subject");
        }
    }
    // TR_De_Mail_PVD_FU §3.3: Abholbestätigung requires Persönlich.
    if (p.options.retrieveConfirmation && !p.options.personal) {
        p.options.personal = true;
        p.notes.push_back("Persönlich set because Abholbestätigung requires it");
    }

    // Recipients as the sender chose them: To and Cc from the message, the rest of the
    // envelope as Bcc (the provider splits Bcc, TR step 29).
    for (const char* name : {"To", "Cc"}) {
        if (const std::string* v = headers->get(name)) {
            auto list = parseAddressList(*v);
            if (!list)
                return refuse(RefusalKind::MalformedMessage,
                              std::string("the ") + name + " header cannot be parsed");
            for (const auto& a : *list)
                if (contains(c.envelopeRecipients, a))
                    (std::string(name) == "To" ? p.recipients.to : p.recipients.cc).push_back(a);
        }
    }
    for (const auto& r : c.envelopeRecipients)
        if (!contains(p.recipients.to, r) && !contains(p.recipients.cc, r))
            p.recipients.bcc.push_back(toLower(r));

    // The sender's own private-id (a file number, say) is kept: sent after our queue id, and
    // recorded so that its confirmations come back with it (TR PVD_IO §3.1.17 names exactly this
    // purpose). Control characters other than TAB (folding white space) are refused, not sent.
    if (const std::string* own = headers->get(header::kPrivateId)) {
        p.senderPrivateId = trim(*own);
        for (const char ch : p.senderPrivateId)
            if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f)
                return refuse(RefusalKind::MalformedMessage,
                              std::string(header::kPrivateId) + " holds a control character",
                              header::kPrivateId);
    }
    const std::string seal =
        c.privateIdSeal ? c.privateIdSeal->seal(c.queueId, toLower(c.envelopeSender)) : "";
    p.privateId = composePrivateId(c.queueId, p.senderPrivateId, seal);
    const std::size_t ours = c.queueId.size() + (seal.empty() ? 0 : seal.size() + 1);
    if (p.privateId.size() > kMaxPrivateIdLength)
        return refuse(
            RefusalKind::PrivateIdTooLong,
            std::string(header::kPrivateId) + " longer than " +
                std::to_string(kMaxPrivateIdLength - std::min(ours + 1, kMaxPrivateIdLength)) +
                " characters (the provider takes 1024, the gateway's queue id" +
                (seal.empty() ? "" : " with the sealed sender") + " and a '.' come first)",
            header::kPrivateId);
    if (const std::string* mid = headers->get("Message-ID"))
        p.messageId = trim(*mid);

    // What an internal sender must not set: provider headers, any X-de-mail-* of its own,
    // our internal marker, Bcc (never shown), a Reply-To outside De-Mail (TR step 12).
    for (const auto& name : providerSetHeaders())
        if (headers->count(name)) {
            headers->remove(name);
            p.notes.push_back(name + " removed (set by the provider)");
        }
    std::vector<std::string> ownXdemail;
    for (const auto& f : headers->fields())
        if (toLower(f.name).rfind("x-de-mail-", 0) == 0)
            ownXdemail.push_back(f.name);
    for (const auto& n : ownXdemail)
        headers->remove(n);
    headers->remove("Bcc");
    if (const std::string* replyTo = headers->get("Reply-To")) {
        auto list = parseAddressList(*replyTo);
        bool deMail = list && !list->empty();
        if (list)
            for (const auto& a : *list)
                deMail = deMail && inDomains(a, c.deMailDomains);
        if (!deMail) {
            headers->remove("Reply-To");
            p.notes.push_back("Reply-To removed (not a De-Mail address)");
        }
    }
    // From: the account, keeping the display name (review L13: made safe, see safeDisplayName).
    std::string display;
    if (const std::string* from = headers->get("From")) {
        const auto lt = from->rfind('<');  // the last: a quoted name may hold one
        if (lt != std::string::npos && lt > 0)
            display = safeDisplayName(trim(from->substr(0, lt)));
        if (lt != std::string::npos && lt > 0 && display.empty())
            p.notes.push_back("From display name dropped (it held an address)");
    }
    headers->set("From", display.empty() ? p.account : display + " <" + p.account + ">");

    const auto yesNo = [](bool b) { return std::string(b ? "yes" : "no"); };
    headers->add(header::kDispatchConfirmation, yesNo(p.options.dispatchConfirmation));
    headers->add(header::kReceiptConfirmation, yesNo(p.options.receiptConfirmation));
    headers->add(header::kRetrieveConfirmation, yesNo(p.options.retrieveConfirmation));
    headers->add(header::kAuthoritative, yesNo(p.options.authoritative));
    headers->add(header::kPrivate, yesNo(p.options.personal));
    headers->add(header::kSender, p.account);
    headers->add(header::kChosenRecipient, formatChosenRecipient(p.recipients));
    headers->add(header::kPrivateId, p.privateId);

    p.headers = headers->serialize();
    // RFC 5322 §2.1.1: a header line over 998 characters that cannot be folded (no white space
    // to fold at) is refused at the end of DATA, never sent.
    for (std::size_t at = 0, next; at < p.headers.size(); at = next + 2) {
        next = p.headers.find("\r\n", at);
        if (next == std::string::npos)
            break;
        if (next - at > 998)
            return refuse(RefusalKind::MalformedMessage,
                          "a header line is longer than 998 characters and cannot be folded",
                          p.headers.substr(at, p.headers.find(':', at) - at));
    }
    p.bodyOffset = headers->bodyOffset();
    return p;
}

}  // namespace demail::connector
