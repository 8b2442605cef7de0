#include "demail/gateway/services/outbound_service.h"

namespace demail::gateway {
namespace {

OutboundDispatcher::Options dispatchOptions(const Config& cfg, std::string host,
                                            const AccountPauses* accountPauses) {
    OutboundDispatcher::Options o;
    o.accountPauses = accountPauses;
    o.reportingHost = std::move(host);
    o.lanes = cfg.provider.connections;
    o.schedule.minDelay = cfg.queue.retryMin;
    o.schedule.maxDelay = cfg.queue.retryMax;
    o.schedule.maxAge = cfg.queue.maxAge;
    o.schedule.delayWarning = cfg.queue.delayWarning;
    return o;
}

}  // namespace

OutboundService::OutboundService(const Config& config, Spool& spool, Submitter& submitter,
                                 const SmtpRelayTarget& relay, Metrics& metrics,
                                 HealthState& health, std::string reportingHost,
                                 const AccountPauses* accountPauses)
    : queue_(config.queue),
      spool_(spool),
      health_(health),
      store_(spool),
      notifier_(relay),
      rng_(std::random_device{}()),
      dispatcher_(dispatchOptions(config, std::move(reportingHost), accountPauses), store_,
                  submitter, notifier_, [this] { return uniform_(rng_); }),
      submitted_(
          metrics.counter("demail_messages_submitted_total", "Messages accepted by the provider")),
      bounced_(metrics.counter("demail_messages_bounced_total",
                               "Messages returned to their sender (DSN)")),
      deferred_(metrics.counter("demail_messages_deferred_total",
                                "Submission attempts deferred for a retry")),
      providerErrors_(metrics.counter("demail_errors_total", "Errors by kind", "kind", "provider")),
      depth_(metrics.gauge("demail_queue_depth", "Messages waiting in the spool")),
      oldest_(
          metrics.gauge("demail_queue_oldest_age_seconds", "Age of the oldest queued message")) {}

OutboundService::~OutboundService() {
    stop();
}

void OutboundService::start() {
    thread_ = std::thread([this] { run(); });
}

void OutboundService::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_.exchange(true))
            return;
    }
    wake_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

void OutboundService::committed(const std::string& queueId) {
    std::lock_guard lock(mutex_);
    fresh_.push_back(queueId);
    wake_.notify_all();
}

void OutboundService::lookAtWholeQueue() {
    std::lock_guard lock(mutex_);
    fullPassWanted_ = true;
    wake_.notify_all();
}

void OutboundService::pause(const std::string& why) {
    dispatcher_.pause(why);
}

void OutboundService::resume() {
    dispatcher_.resume();
}

void OutboundService::updateQueueMetrics() {
    const auto ids = spool_.list();
    depth_.set(static_cast<double>(ids.size()));
    double oldest = 0;
    if (!ids.empty())
        if (auto e = spool_.envelope(ids.front()))
            oldest = std::chrono::duration<double>(std::chrono::system_clock::now() - e->arrival)
                         .count();
    oldest_.set(oldest);
    // Readiness looks at the mail the gateway can send now: messages held because their account
    // is paused (blocked at the provider) are shown per account instead, and do not make the
    // gateway unready for the other accounts.
    std::size_t held = 0;
    double oldestSendable = 0;
    bool seenSendable = false;
    for (const auto& id : ids) {
        if (dispatcher_.heldForAccount(id)) {
            ++held;
        } else if (!seenSendable) {
            seenSendable = true;
            if (auto e = spool_.envelope(id))
                oldestSendable =
                    std::chrono::duration<double>(std::chrono::system_clock::now() - e->arrival)
                        .count();
        }
    }
    const bool young = oldestSendable < static_cast<double>(queue_.delayWarning.count());
    health_.set("queue", young,
                std::to_string(ids.size()) + " queued" +
                    (held ? " (" + std::to_string(held) + " held for paused accounts)" : "") +
                    (young ? "" : ", the oldest waits longer than delay_warning"));
    if (afterFullPass)
        afterFullPass();
}

void OutboundService::run() {
    using namespace std::chrono_literals;
    auto lastFullPass = std::chrono::steady_clock::now() - 1h;
    while (!stopping_) {
        std::vector<std::string> fresh;
        bool full = false;
        {
            std::unique_lock lock(mutex_);
            wake_.wait_for(lock, 1s,
                           [&] { return !fresh_.empty() || fullPassWanted_ || stopping_.load(); });
            full = fullPassWanted_ || std::chrono::steady_clock::now() - lastFullPass >= 1s;
            fullPassWanted_ = false;
            fresh.swap(fresh_);
        }
        if (stopping_)
            break;
        DispatchCounts c;
        if (full) {
            c = dispatcher_.runOnce(std::chrono::system_clock::now());
            lastFullPass = std::chrono::steady_clock::now();
        } else if (!dispatcher_.paused()) {
            c = dispatcher_.runIds(fresh, std::chrono::system_clock::now());
        }
        submitted_.add(static_cast<std::uint64_t>(c.submitted));
        bounced_.add(static_cast<std::uint64_t>(c.bounced));
        deferred_.add(static_cast<std::uint64_t>(c.deferred));
        if (c.deferred)
            providerErrors_.add(static_cast<std::uint64_t>(c.deferred));
        if (c.submitted)
            health_.set("provider", true, "submission accepted");
        // The dispatcher pauses itself when a submission needs the operator (the card, the key,
        // the client certificate); an account's trouble is shown per account instead.
        if (dispatcher_.pausedForCard())
            health_.set("card", false, dispatcher_.pauseReason());
        else if (dispatcher_.paused())  // the provider refused our credentials: not the card
            health_.set(
                "provider", false,
                dispatcher_.pauseReason() +
                    "; sending is paused until the card is changed or the gateway reloaded");
        if (full)
            updateQueueMetrics();
    }
}

}  // namespace demail::gateway
