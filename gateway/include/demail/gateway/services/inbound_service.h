// The inbound service: owns the inbound poller and its thread. Every poll_interval (while sending
// is not paused for the card: without the card's key there is no provider connection) it asks
// the provider for our accounts (the account directory publishes them) and then fetches, routes,
// delivers and acknowledges what is waiting. It keeps the "inbound" and "provider" health
// components and owns the inbound ledger, the attempt counts and the quarantine.
//
// One account's trouble never stops it: an account paused for sending (blocked at the provider)
// is still polled (ACM_FU §3.6: a blocked account still receives), an account whose inbox listing
// is refused is left out of that pass while the others are delivered, and both show per account
// in health. The account listing's `blocked` flags pause and resume an account's sending: a
// listing that shows a blocked account unblocked again resumes it at once.
#pragma once

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "demail/connector/transport/provider_transport.h"
#include "demail/gateway/account_pauses.h"
#include "demail/gateway/config.h"
#include "demail/gateway/demail_router.h"
#include "demail/gateway/health.h"
#include "demail/gateway/inbound.h"
#include "demail/gateway/metrics.h"
#include "demail/gateway/provider_inbox.h"
#include "demail/gateway/relay_delivery.h"
#include "demail/gateway/sent_journal.h"
#include "demail/gateway/services/account_directory.h"
#include "demail/gateway/spool_quarantine.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {

class InboundService {
  public:
    InboundService(const Config& config, connector::ProviderTransport& transport,
                   AccountDirectory& accounts, const SentJournal& journal,
                   const SmtpRelayTarget& relay, Metrics& metrics, HealthState& health,
                   std::function<bool()> sendingPaused, AccountPauses& pauses,
                   const std::string& gatewayName);
    ~InboundService();

    void start();
    void stop();
    // Asks the provider for our accounts now; false (and "provider" not ready) if it failed.
    bool refreshAccounts();
    FileLedger& ledger() { return ledger_; }

    // Where each item is kept as retrieved (the evidence archive).
    void setEvidence(Evidence* evidence) { poller_.evidence = evidence; }
    void setSignatures(SignatureVerifier* signatures) { poller_.signatures = signatures; }
    // Before start(): see DeMailRouter::privateIdSeal.
    void setPrivateIdSeal(std::shared_ptr<const connector::PrivateIdSeal> seal) {
        router_.privateIdSeal = std::move(seal);
    }

  private:
    void run();
    void followListing();  // the listing's blocked flags -> pauses, the accounts -> health

    const std::chrono::seconds pollInterval_;
    const std::string relayName_;
    connector::ProviderTransport& transport_;
    AccountDirectory& accounts_;
    HealthState& health_;
    std::function<bool()> sendingPaused_;
    AccountPauses& pauses_;
    std::set<std::string> listedBlocked_;  // accounts the last listing showed blocked
    ProviderInbox inbox_;
    DeMailRouter router_;
    RelayInboundDelivery delivery_;
    FileLedger ledger_;
    FileAttempts attempts_;
    SpoolQuarantine quarantine_;
    InboundPoller poller_;
    Metrics::Counter &delivered_, &errors_, &signatureFailures_, &leasedElsewhere_, &lostLease_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace demail::gateway
