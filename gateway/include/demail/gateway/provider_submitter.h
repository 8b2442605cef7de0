// The dispatcher's submitter: the De-Mail message layer prepares the header section, the provider
// transport sends it with the body streamed from the spool, and the outcome becomes accepted,
// retryable, permanent or operator action. A submission whose outcome was unknown is settled the
// way the provider's binding offers (connector::OutcomeResolution): by resending under the same
// idempotency key, or by looking the queue id up among the account's sent items first.
#pragma once

#include <functional>
#include <istream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "demail/connector/message/outbound.h"
#include "demail/connector/message/private_id_seal.h"
#include "demail/connector/transport/provider_transport.h"
#include "demail/gateway/account_pauses.h"
#include "demail/gateway/evidence.h"
#include "demail/gateway/outbound.h"
#include "demail/gateway/sent_journal.h"

namespace demail::gateway {

struct SubmitterSettings {
    std::vector<std::string> deMailDomains;
    connector::AccountMap accounts;
};

class ProviderSubmitter final : public Submitter {
  public:
    ProviderSubmitter(connector::ProviderTransport& transport, SentJournal& journal,
                      std::string providerHost);
    void update(SubmitterSettings settings);  // domains from the provider, SIGHUP
    SubmitterSettings settings() const;
    SubmitOutcome submit(const Envelope& envelope, std::istream& body) override;
    // Asked after a transport failure: is it the card? (Set by the daemon.)
    std::function<std::optional<std::string>()> cardProblem;
    // Where each submission and the provider's answer are kept (set by the daemon; none in tests
    // that do not look at it). A submission whose evidence cannot be kept is not made.
    Evidence* evidence = nullptr;
    // Per-account pauses (set by the daemon): a refusal of one account (403 account_blocked,
    // not_authorised) pauses that account only and comes back AccountPaused; while it is paused
    // its messages come back AccountPaused without a request, but for one probe per interval.
    // Null: such a refusal is an OperatorAction that pauses everything.
    AccountPauses* accountPauses = nullptr;
    // Set by the daemon before the first submission: the sender sealed into the private-id.
    std::shared_ptr<const connector::PrivateIdSeal> privateIdSeal;

  private:
    // The taxonomy -> outcome; `account` is the account the request was made for.
    SubmitOutcome failure(const connector::TransportError& error, const std::string& account);
    void resumed(const std::string& account);  // a submission for it got through
    connector::ProviderTransport& transport_;
    SentJournal& journal_;
    std::string host_;
    mutable std::mutex mutex_;
    SubmitterSettings settings_;
};

}  // namespace demail::gateway
