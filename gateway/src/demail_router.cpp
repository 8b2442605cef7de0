#include "demail/gateway/demail_router.h"

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/LocalDateTime.h>
#include <Poco/Logger.h>

#include "demail/connector/message/demail_headers.h"
#include "demail/connector/message/header_block.h"
#include "demail/connector/message/inbound.h"
#include "demail/gateway/dsn.h"

namespace demail::gateway {
namespace {
Poco::Logger& log() {
    return Poco::Logger::get("inbound");
}

using connector::InboundKind;

// Kinds that may be about one of our submissions and are routed through the sent journal.
bool confirmationLike(InboundKind k) {
    return connector::isConfirmation(k) || k == InboundKind::MalwareAcknowledge;
}
bool meldungLike(InboundKind k) {
    return k == InboundKind::Notification || k == InboundKind::MalwareNotification;
}

// "<a@b>" as far as In-Reply-To/References need it: one msg-id, no white space inside.
bool isMsgId(std::string_view v) {
    return v.size() >= 5 && v.size() <= 900 && v.front() == '<' && v.back() == '>' &&
           v.find('@') != std::string_view::npos && v.find_first_of(" \t\r\n<>", 1) == v.size() - 1;
}

// Who the confirmation says sent the original: the XML's X-de-mail-sender (or From) metadata,
// else the confirmation's own X-de-mail-sender. A Meldung names no original sender (PVD_IO
// §3.5): the account it came to is the only evidence, and the provider sends a Meldung only to
// the account that submitted.
std::string originOf(InboundKind kind, const connector::InboundClassification& c,
                     const std::optional<connector::ConfirmationXml>& xml, const InboxItem& item) {
    if (meldungLike(kind))
        return item.account;
    if (xml) {
        for (const char* name : {"X-de-mail-sender", "From"})
            if (const auto v = xml->metadataValue(name))
                if (const auto list = connector::parseAddressList(*v); list && list->size() == 1)
                    return list->front();
    }
    return c.sender;
}

bool isOurs(const std::string& origin, const SentRecord& record,
            const connector::AccountMap& accounts) {
    if (origin.empty())
        return false;
    if (!record.account.empty())  // the account that sent it, not just any of ours
        return connector::equalsIgnoreCase(origin, record.account);
    for (const auto& e : accounts.entries)
        if (connector::equalsIgnoreCase(origin, e.account))
            return true;
    for (const auto& a : accounts.ownAccounts)
        if (connector::equalsIgnoreCase(origin, a))
            return true;
    return false;
}

std::string referencesOf(const SentRecord& record) {
    std::string refs = isMsgId(record.messageId) ? record.messageId : "";
    for (const auto& id : record.providerIds)  // one per Bcc copy: kept to a few lines
        if (isMsgId(id) && refs.find(id) == std::string::npos && refs.size() < 2000)
            refs += (refs.empty() ? "" : " ") + id;
    return refs;
}

// The confirmation as the sender's application expects it: its own private-id back in
// X-de-mail-private-id, linked to the original by In-Reply-To/References, and the queue id in a
// header only the gateway sets (any copy from outside was removed by prepareInbound).
std::string linkToOriginal(const std::string& prepared, const std::string& queueId,
                           const SentRecord& record) {
    std::string error;
    auto h = connector::HeaderBlock::parse(prepared, error);
    if (!h)
        return prepared;
    // The sender's own value; the queue id alone when it set none (not a sealed sender after it).
    h->set(connector::header::kPrivateId, record.privateId.empty() ? queueId : record.privateId);
    h->remove("In-Reply-To");
    h->remove("References");
    if (isMsgId(record.messageId))
        h->add("In-Reply-To", record.messageId);
    if (const std::string refs = referencesOf(record); !refs.empty())
        h->add("References", refs);
    h->add("X-Demail-Gateway-Queue-Id", queueId);
    return h->serialize() + prepared.substr(std::min(h->bodyOffset(), prepared.size()));
}

// The recipients a Meldung is about: those of the original it names (in its text or subject),
// else all of them (the Meldung does not say which).
std::vector<DsnRecipient> meldungRecipients(const SentRecord& record, const std::string& said,
                                            const std::string& status, const std::string& account,
                                            const std::string& host) {
    std::vector<DsnRecipient> named, all;
    const std::string lower = connector::toLower(said);
    for (const auto& r : record.recipients) {
        DsnRecipient d{r, "", DsnAction::Failed, status, "", host};
        all.push_back(d);
        if (lower.find(connector::toLower(r)) != std::string::npos) {
            d.diagnostic = said;
            named.push_back(d);
        }
    }
    if (!named.empty())
        return named;
    for (auto& d : all)
        d.diagnostic = "the provider's Meldung does not name the recipient: " + said;
    if (all.empty())  // a record from before recipients were kept
        all.push_back({account, "", DsnAction::Failed, status, said, host});
    return all;
}

}  // namespace

// A confirmation or Meldung of a message a peer gateway sent: no sent/ record here, but the
// private-id carries the internal sender, sealed with the key every gateway of the organisation
// holds (private_id_seal.h). Routed to that sender only when the seal opens for this queue id,
// the item came to the account that sent the message (a confirmation names it as its original
// sender) and the accounts file still maps the sender to that account. What the record would add
// and the private-id cannot carry (the Message-ID as the sender wrote it, the original recipients,
// the archive entry) stays on the peer.
std::optional<SentRecord> DeMailRouter::sentByPeer(
    const std::string& privateId, const std::string& queueId, const std::string& origin,
    const std::optional<connector::ConfirmationXml>& xml, const InboxItem& item) const {
    const std::string seal = connector::sealOfPrivateId(privateId);
    if (!privateIdSeal || seal.empty() || queueId.empty())
        return std::nullopt;
    const auto sender = privateIdSeal->open(queueId, seal);
    if (!sender) {
        log().warning("event=correlation_refused provider_id=" + item.id + " queue_id=" + queueId +
                      " reason=\"the private-id's sealed sender does not open with our key\"");
        return std::nullopt;
    }
    const auto mapped = accounts_().accountFor(*sender);
    if (origin.empty() || !connector::equalsIgnoreCase(origin, item.account) || !mapped ||
        !connector::equalsIgnoreCase(*mapped, item.account) || !connector::isSmtpMailbox(*sender)) {
        log().warning("event=correlation_refused provider_id=" + item.id + " queue_id=" + queueId +
                      " reason=\"sent through a peer gateway, but not by a sender of this "
                      "account\"");
        return std::nullopt;
    }
    SentRecord r;
    r.sender = *sender;
    r.account = item.account;
    r.privateId = connector::senderValueOfPrivateId(privateId);
    if (xml)
        if (const auto id = xml->metadataValue("X-de-mail-message-id"); id && isMsgId(*id))
            r.providerIds.push_back(*id);
    log().notice("event=correlated_by_seal provider_id=" + item.id + " queue_id=" + queueId +
                 " detail=\"sent through a peer gateway (no local record): routed to the sealed "
                 "sender\"");
    return r;
}

DeMailRouter::DeMailRouter(const SentJournal& journal,
                           std::function<connector::AccountMap()> accounts, std::string postmaster,
                           InboundHygiene hygiene)
    : journal_(journal),
      accounts_(std::move(accounts)),
      postmaster_(std::move(postmaster)),
      hygiene_(std::move(hygiene)) {}

InboundRoute DeMailRouter::route(const InboxItem& item, const std::string& raw) {
    // Classified on the normalised text, so that what we route by is what the relay will read.
    const std::string message = connector::normalizeLineEnds(raw);
    const auto c = connector::classifyInbound(message);
    InboundRoute r;
    r.kind = connector::toString(c.kind);
    r.mailFrom = connector::isSmtpMailbox(c.sender) ? c.sender : "";
    if (!c.sender.empty() && r.mailFrom.empty())
        log().warning("event=inbound_sender_invalid provider_id=" + item.id +
                      " action=null_sender");
    r.retrieveConfirmation = c.retrieveConfirmation;
    // Persönlich only for ordinary messages: confirmations about it go to its sender as usual.
    r.personal = c.personal && c.kind == connector::InboundKind::Normal;
    std::optional<SentRecord> record;  // set: one of our submissions, routed to its sender
    std::optional<connector::ConfirmationXml> xml;
    const auto choose = [&]() -> std::vector<std::string> {
        if (confirmationLike(c.kind) || meldungLike(c.kind)) {
            std::string err;
            xml = connector::confirmationXmlOf(message, err);
            if (!xml && confirmationLike(c.kind) && err.find("refused") != std::string::npos) {
                r.park = "confirmation " + err;
                return {};
            }
            // Only the queue id part is ours; the rest of a private-id is never trusted.
            if (const auto privateId = connector::correlate(c, xml)) {
                const std::string queueId = connector::queueIdOfPrivateId(*privateId);
                auto found = journal_.lookup(queueId);
                if (!found)
                    if (auto peer = sentByPeer(*privateId, queueId, originOf(c.kind, c, xml, item),
                                               xml, item)) {
                        r.queueId = queueId;
                        record = std::move(peer);
                        return {record->sender};
                    }
                if (found) {
                    const std::string origin = originOf(c.kind, c, xml, item);
                    if (isOurs(origin, *found, accounts_())) {
                        r.queueId = queueId;
                        record = std::move(found);
                        return {record->sender};
                    }
                    // Row 16 of the domain review: a recipient-side copy (or anything not from
                    // the account that sent it) carries a private-id someone else chose.
                    log().warning("event=correlation_refused provider_id=" + item.id +
                                  " queue_id=" + queueId + " kind=" + r.kind +
                                  " reason=\"not about a message this account sent\"");
                }
            }
        }
        if (r.personal) {
            // PVD_FU §3.1.2.3: only the addressee may read it. Its person, mapped by name; else
            // held with an alarm, never a catch-all inbox or the postmaster.
            if (const auto person = accounts_().personFor(item.account))
                return {*person};
            r.park = std::string(kHeldPersonal) + " mail for " + item.account +
                     ": no person is mapped for it (accounts file: '<person> " + item.account +
                     " personal'); held, never sent to a catch-all or the postmaster";
            return {};
        }
        if (const auto inbox = accounts_().inboxFor(item.account))
            return {*inbox};
        if (!postmaster_.empty())
            return {postmaster_};
        return {item.account};  // the account address itself; the relay decides
    };
    for (auto& rcpt : choose()) {
        if (connector::isSmtpMailbox(rcpt)) {
            r.recipients.push_back(rcpt);
        } else if (r.personal) {
            r.park = std::string(kHeldPersonal) + " mail for " + item.account +
                     ": its person's address is invalid; held";
        } else if (connector::isSmtpMailbox(postmaster_)) {
            log().warning("event=inbound_recipient_invalid provider_id=" + item.id +
                          " action=postmaster");
            r.recipients.push_back(postmaster_);
        }
    }
    if (r.park.empty() && r.recipients.empty())
        r.park = "no valid internal recipient (the account address is invalid and no postmaster)";
    if (!r.park.empty())
        return r;
    auto p = connector::prepareInbound(
        raw, hygiene_.stripHeaders,  // from the raw bytes, so that the verdict names the repairs
        {r.kind, connector::isSmtpMailbox(item.account) ? item.account : "invalid", r.mailFrom,
         item.id, hygiene_.gatewayName,
         Poco::DateTimeFormatter::format(Poco::LocalDateTime(),
                                         Poco::DateTimeFormat::RFC1123_FORMAT)});
    if (!p.ok()) {
        r.park = "cannot be made safe for the relay: " + p.refusal;
        return r;
    }
    if (p.repairs() != "none" || p.duplicatesDisagree)
        log().notice("event=inbound_prepared provider_id=" + item.id + " repaired=" + p.repairs() +
                     (p.duplicatesDisagree ? " suspicious=conflicting-x-de-mail-headers" : ""));
    r.message = std::move(p.message);
    if (record && confirmationLike(c.kind)) {
        r.message = linkToOriginal(r.message, r.queueId, *record);
    } else if (record && meldungLike(c.kind)) {
        // A late bounce: the sender gets a report (from <>), the Meldung attached.
        MeldungReport m;
        m.reportingHost = hygiene_.gatewayName;
        m.queueId = r.queueId;
        m.envelopeSender = record->sender;
        m.kind = r.kind;
        m.notificationType = c.notificationType;
        m.text = xml && !xml->text.empty() ? xml->text : c.subject;
        m.originalSubject = xml ? xml->subject : "";
        m.privateId = record->privateId;
        m.queueIdHeader = r.queueId;
        m.inReplyTo = isMsgId(record->messageId) ? record->messageId : "";
        m.references = referencesOf(*record);
        const std::string status = meldungStatus(r.kind, c.notificationType);
        m.recipients =
            meldungRecipients(*record, m.text + " " + c.subject, status, item.account, "");
        r.message = buildMeldungReport(m, r.message, std::chrono::system_clock::now()).data;
        r.mailFrom.clear();
        log().notice("event=meldung_reported provider_id=" + item.id + " queue_id=" + r.queueId +
                     " kind=" + r.kind + " type=" + c.notificationType + " status=" + status);
    }
    return r;
}

}  // namespace demail::gateway
