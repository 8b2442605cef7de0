// Confirmations go to the sender of the message they confirm (found through the sent journal by
// the queue id part of the private-id, and only when the confirmation is about a message the
// account sent), with the sender's own private-id restored and linked to the original; a Meldung
// about one of our submissions becomes a multipart/report to its sender (dsn.h); everything else
// goes to the account's internal mailbox; failing both, the postmaster. The Internet -> internal
// boundary is here: the message is prepared (connector/message/inbound_prepare.h: CRLF, 998-octet
// lines, header hygiene, the verdict header) and the envelope validated (an invalid sender becomes
// <>, an invalid recipient the postmaster, or the item is parked). A confirmation whose XML is
// refused (too deep, a DTD, not UTF-8) is parked: the provider never sends such a thing.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "demail/connector/message/inbound.h"
#include "demail/connector/message/inbound_prepare.h"
#include "demail/connector/message/outbound.h"
#include "demail/connector/message/private_id_seal.h"
#include "demail/gateway/inbound.h"
#include "demail/gateway/sent_journal.h"

namespace demail::gateway {

struct InboundHygiene {
    std::vector<std::string> stripHeaders = connector::defaultInternalTrustHeaders();
    std::string gatewayName = "localhost";  // in Received:
};

class DeMailRouter final : public InboundRouter {
  public:
    DeMailRouter(const SentJournal& journal, std::function<connector::AccountMap()> accounts,
                 std::string postmaster, InboundHygiene hygiene = {});
    InboundRoute route(const InboxItem& item, const std::string& message) override;
    // Set by the daemon before the first poll ([provider] private_id_key_file): a confirmation of
    // a message a peer gateway sent (no sent/ record here) goes to the sender sealed in its
    // private-id.
    std::shared_ptr<const connector::PrivateIdSeal> privateIdSeal;

  private:
    std::optional<SentRecord> sentByPeer(const std::string& privateId, const std::string& queueId,
                                         const std::string& origin,
                                         const std::optional<connector::ConfirmationXml>& xml,
                                         const InboxItem& item) const;
    const SentJournal& journal_;
    std::function<connector::AccountMap()> accounts_;
    std::string postmaster_;
    InboundHygiene hygiene_;
};

}  // namespace demail::gateway
