// demail-gatewayd's services wired together, and its life under systemd. Who owns what:
//
//   IntakeService    SMTP listeners, users file, intake policies, spool sink
//   OutboundService  dispatcher + thread, queue metrics, "queue" health
//   InboundService   inbound poller + thread, ledger, attempts, quarantine, "inbound"/"provider"
//   CardSupervisor   the card's state, logins, PIN policy, "card"/"certificate" health
//   AccountDirectory accounts file + provider's account list -> one snapshot to all
//   Housekeeping     pruning of the sent journal and the inbound ledger
//   Daemon           the spool, the provider connection pool, the sent journal, the submitter,
//                    health and metrics; start order, SIGHUP, SIGTERM, sd_notify
//
// The services know each other only through the hooks the daemon gives them.
#pragma once

#include <csignal>
#include <memory>
#include <string>

#include "demail/gateway/account_pauses.h"
#include "demail/gateway/archive_evidence.h"
#include "demail/gateway/config.h"
#include "demail/gateway/credentials.h"
#include "demail/gateway/health.h"
#include "demail/gateway/metrics.h"
#include "demail/gateway/provider_pool.h"
#include "demail/gateway/provider_signatures.h"
#include "demail/gateway/provider_submitter.h"
#include "demail/gateway/relay_delivery.h"
#include "demail/gateway/sent_journal.h"
#include "demail/gateway/services/account_directory.h"
#include "demail/gateway/services/card_supervisor.h"
#include "demail/gateway/services/housekeeping.h"
#include "demail/gateway/services/inbound_service.h"
#include "demail/gateway/services/intake_service.h"
#include "demail/gateway/services/outbound_service.h"
#include "demail/gateway/spool.h"

namespace demail::gateway {

class Daemon {
  public:
    Daemon(Config config, std::string configPath, connector::AccountMap accounts);
    ~Daemon();
    // Opens the spool, the health endpoint, the credentials and the listeners and starts every
    // service; 0, or the exit code with a line on stderr.
    int start();
    // Until SIGTERM/SIGINT (blocked in every thread by the caller): SIGHUP reloads, the
    // watchdog is fed, STATUS follows readiness. Then everything stops in order.
    void run(const sigset_t& signals);

  private:
    void reload();
    std::string statusText() const;
    // Why this gateway cannot submit now, in a few words for an SMTP reply ("card absent",
    // "provider unreachable"); empty when it can. A paused account is no reason: peers share it.
    std::string cannotSend() const;
    // While the provider is taken as unreachable, a look every few seconds (account listing), so
    // that a gateway that refuses mail (nothing queued to retry) notices the provider is back.
    void probeProviderIfUnreachable();
    std::chrono::steady_clock::time_point nextProbe_{};  // these two: the outbound thread only
    bool providerDown_ = false;

    const Config config_;
    const std::string configPath_;
    const std::string host_;
    Metrics metrics_;
    HealthState health_;
    Spool spool_;
    AccountDirectory accounts_;
    AccountPauses accountPauses_;  // one account's trouble pauses that account only
    SmtpRelayTarget relay_;
    CredentialsResult credentials_;
    std::unique_ptr<HealthServer> healthServer_;
    std::unique_ptr<ProviderConnectionPool> pool_;
    std::unique_ptr<SentJournal> journal_;
    std::unique_ptr<archive::Archive> archive_;
    std::unique_ptr<ArchiveEvidence> evidence_;
    ProviderSignatures signatures_;  // the provider's trust anchor; reloaded at SIGHUP
    std::unique_ptr<ProviderSubmitter> submitter_;
    std::unique_ptr<OutboundService> outbound_;
    std::shared_ptr<AddressBook> addressBook_;  // null with [provider] address_check = no
    std::unique_ptr<IntakeService> intake_;
    std::unique_ptr<InboundService> inbound_;
    std::unique_ptr<CardSupervisor> card_;
    std::unique_ptr<Housekeeping> housekeeping_;
};

}  // namespace demail::gateway
