// When to try a queued message again after a retryable failure, when to warn its sender, and
// when to give up and bounce it. Pure: the caller passes the clock readings and the jitter source.
#pragma once

#include <chrono>
#include <functional>

namespace demail::gateway {

struct RetrySchedule {
    std::chrono::seconds minDelay{60};
    std::chrono::seconds maxDelay{1800};
    std::chrono::seconds maxAge{24 * 3600};       // [queue] max_age: then bounce
    std::chrono::seconds delayWarning{4 * 3600};  // [queue] delay_warning: then warn once
    double jitter = 0.2;                          // each wait varies by +-20 %
};

using TimePoint = std::chrono::system_clock::time_point;

struct RetryPlan {
    bool giveUp = false;            // the message is too old: bounce it now
    TimePoint nextAttempt;          // when not giving up
    bool sendDelayWarning = false;  // first time past delay_warning and no warning sent yet
};

// attemptsSoFar counts the failed attempts including the one just made (>= 1). uniform01 returns
// a number in [0, 1); jitter spreads retries so that a provider outage does not end in a
// thundering herd of every queued message at the same second.
RetryPlan planRetry(const RetrySchedule& schedule, int attemptsSoFar, TimePoint arrival,
                    TimePoint now, bool delayWarningSent, const std::function<double()>& uniform01);

}  // namespace demail::gateway
