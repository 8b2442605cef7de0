// The outbound service: owns the dispatcher and its thread. New mail is sent as it is committed
// (only its ids, no queue listing); the whole queue is looked at once a second and when the card
// is back (retries due, expiries, DSNs). While paused, new ids wait for the next full pass: a
// queue waiting for the card costs the intake nothing. It keeps the queue's metrics and the
// "queue" health component.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "demail/gateway/config.h"
#include "demail/gateway/health.h"
#include "demail/gateway/metrics.h"
#include "demail/gateway/outbound.h"
#include "demail/gateway/relay_delivery.h"
#include "demail/gateway/spool.h"
#include "demail/gateway/spool_outbound_store.h"

namespace demail::gateway {

class OutboundService {
  public:
    OutboundService(const Config& config, Spool& spool, Submitter& submitter,
                    const SmtpRelayTarget& relay, Metrics& metrics, HealthState& health,
                    std::string reportingHost, const AccountPauses* accountPauses = nullptr);
    ~OutboundService();

    void start();
    void stop();

    void committed(const std::string& queueId);  // from the intake, after the 250
    void lookAtWholeQueue();                     // e.g. the card is back
    void pause(const std::string& why);
    void resume();
    bool paused() const { return dispatcher_.paused(); }
    bool pausedForCard() const { return dispatcher_.pausedForCard(); }

    // Run after every full pass, for figures other services count (the intake's accepted
    // messages, the card's signatures).
    std::function<void()> afterFullPass;
    void updateQueueMetrics();

  private:
    void run();

    const QueueConfig queue_;
    Spool& spool_;
    HealthState& health_;
    SpoolOutboundStore store_;
    RelayNotifier notifier_;
    std::mt19937_64 rng_;
    std::uniform_real_distribution<double> uniform_{0.0, 1.0};
    OutboundDispatcher dispatcher_;

    Metrics::Counter &submitted_, &bounced_, &deferred_, &providerErrors_;
    Metrics::Gauge &depth_, &oldest_;

    std::mutex mutex_;
    std::condition_variable wake_;
    bool fullPassWanted_ = false;
    std::vector<std::string> fresh_;  // committed since the last pass
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace demail::gateway
