#include "demail/gateway/services/inbound_service.h"

#include "demail/gateway/spool_layout.h"

namespace demail::gateway {
namespace {

InboundHygiene hygieneFor(const Config& cfg, const std::string& gatewayName) {
    InboundHygiene h;
    if (cfg.delivery.stripHeaders)
        h.stripHeaders = *cfg.delivery.stripHeaders;
    h.gatewayName = gatewayName;
    return h;
}

}  // namespace

InboundService::InboundService(const Config& config, connector::ProviderTransport& transport,
                               AccountDirectory& accounts, const SentJournal& journal,
                               const SmtpRelayTarget& relay, Metrics& metrics, HealthState& health,
                               std::function<bool()> sendingPaused, AccountPauses& pauses,
                               const std::string& gatewayName)
    : pollInterval_(config.provider.pollInterval),
      relayName_(config.delivery.relay.toString()),
      transport_(transport),
      accounts_(accounts),
      health_(health),
      sendingPaused_(std::move(sendingPaused)),
      pauses_(pauses),
      inbox_(transport, {}),
      router_(
          journal, [&accounts] { return accounts.snapshot()->map; }, config.delivery.postmaster,
          hygieneFor(config, gatewayName)),
      delivery_(relay),
      ledger_(spool_layout::path(config.queue.dir, spool_layout::kInboundDelivered),
              config.queue.inboundRetention),
      attempts_(spool_layout::path(config.queue.dir, spool_layout::kInboundAttempts)),
      quarantine_(spool_layout::path(config.queue.dir, spool_layout::kInboundQuarantine),
                  config.delivery.postmaster, delivery_, gatewayName),
      poller_(inbox_, router_, delivery_, ledger_, config.delivery.postmaster, quarantine_,
              attempts_, static_cast<int>(config.delivery.inboundMaxAttempts)),
      delivered_(metrics.counter("demail_messages_delivered_total",
                                 "Inbound De-Mail and confirmations delivered internally")),
      errors_(metrics.counter("demail_errors_total", "Errors by kind", "kind", "inbound_delivery")),
      signatureFailures_(metrics.counter(
          "demail_provider_signature_failures_total",
          "Inbound items whose provider signature did not hold (delivered, marked in "
          "X-Demail-Gateway-Verified)")),
      leasedElsewhere_(metrics.counter(
          "demail_inbound_leased_elsewhere_total",
          "Inbox items skipped because a peer gateway held their lease or had delivered them")),
      lostLease_(
          metrics.counter("demail_inbound_lease_lost_total",
                          "Inbox items delivered here whose acknowledgement was refused "
                          "because a peer gateway had taken the lease (a likely duplicate)")) {
    accounts_.subscribe([this](const AccountSnapshot& s) { inbox_.setAccounts(s.ownAccounts); });
}

InboundService::~InboundService() {
    stop();
}

void InboundService::start() {
    thread_ = std::thread([this] { run(); });
}

void InboundService::stop() {
    if (stopping_.exchange(true))
        return;
    if (thread_.joinable())
        thread_.join();
}

bool InboundService::refreshAccounts() {
    std::string error;
    if (!accounts_.refreshFromProvider(transport_, error)) {
        health_.set("provider", false, error);
        return false;
    }
    health_.set("provider", true,
                "reached; " + std::to_string(accounts_.snapshot()->ownAccounts.size()) +
                    " De-Mail accounts");
    followListing();
    return true;
}

void InboundService::followListing() {
    const auto snap = accounts_.snapshot();
    health_.setAccounts(snap->ownAccounts);
    std::set<std::string> blocked(snap->blockedAccounts.begin(), snap->blockedAccounts.end());
    const auto now = std::chrono::system_clock::now();
    for (const auto& a : blocked)
        if (!pauses_.paused(a))  // paused already (by a 403): keep its reason and probe time
            pauses_.pause(a, "blocked at the provider (account listing)", now);
    // Only an account this service saw blocked is resumed by the listing: a provider whose
    // listing does not say "blocked" while it refuses submissions leaves the account to its
    // probe, instead of resuming and refusing it at every poll.
    for (const auto& a : listedBlocked_)
        if (!blocked.count(a))
            pauses_.resume(a, "the provider's account listing shows it unblocked");
    listedBlocked_ = std::move(blocked);
}

void InboundService::run() {
    using namespace std::chrono_literals;
    auto next = std::chrono::steady_clock::now();
    while (!stopping_) {
        std::this_thread::sleep_for(200ms);
        if (std::chrono::steady_clock::now() < next || sendingPaused_())
            continue;
        next = std::chrono::steady_clock::now() + pollInterval_;
        if (!refreshAccounts())
            continue;
        InboundCounts c;
        try {  // pollOnce catches per item; this is the last line of defence (review M8)
            c = poller_.pollOnce();
        } catch (const std::exception& e) {
            c.deferred = 1;
            c.lastError = std::string("inbound pass failed: ") + e.what();
        }
        const auto failures = inbox_.listingFailures();
        for (const auto& a : accounts_.snapshot()->ownAccounts) {
            const auto f = failures.find(a);
            health_.setAccountListing(a, f == failures.end() ? std::string() : f->second);
        }
        delivered_.add(static_cast<std::uint64_t>(c.delivered));
        signatureFailures_.add(static_cast<std::uint64_t>(c.signatureFailures));
        leasedElsewhere_.add(static_cast<std::uint64_t>(c.leasedElsewhere));
        lostLease_.add(static_cast<std::uint64_t>(c.lostLease));
        health_.setInbound(static_cast<std::size_t>(c.deferred), c.quarantined);
        if (c.deferred)
            errors_.add(static_cast<std::uint64_t>(c.deferred));
        if (c.quarantined)
            health_.set("inbound", false,
                        std::to_string(c.quarantined) + " inbound item(s) quarantined in " +
                            quarantine_.dir() + " (see the .reason files; remove them to clear)");
        else
            health_.set("inbound", c.deferred == 0,
                        c.deferred == 0 ? "delivering to " + relayName_ : c.lastError);
    }
}

}  // namespace demail::gateway
