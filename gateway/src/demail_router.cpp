#include "demail/gateway/demail_router.h"

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/LocalDateTime.h>
#include <Poco/Logger.h>

#include "demail/connector/message/demail_headers.h"
#include "demail/connector/message/header_block.h"
#include "demail/connector/message/inbound.h"

namespace demail::gateway {
namespace {
Poco::Logger& log() {
    return Poco::Logger::get("inbound");
}
}  // namespace

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
    const auto choose = [&]() -> std::vector<std::string> {
        if (connector::isConfirmation(c.kind) || c.kind == connector::InboundKind::Notification) {
            std::string err;
            std::optional<connector::ConfirmationXml> xml;
            if (connector::isConfirmation(c.kind)) {
                xml = connector::confirmationXmlOf(message, err);
                if (!xml && err.find("refused") != std::string::npos) {
                    r.park = "confirmation " + err;
                    return {};
                }
            }
            if (const auto job = connector::correlate(c, xml))
                if (const auto sender = journal_.senderOf(*job)) {
                    r.queueId = *job;
                    return {*sender};
                }
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
    return r;
}

}  // namespace demail::gateway
