#include "demail/gateway/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace demail::gateway {

RetryPlan planRetry(const RetrySchedule& schedule, int attemptsSoFar, TimePoint arrival,
                    TimePoint now, bool delayWarningSent,
                    const std::function<double()>& uniform01) {
    RetryPlan plan;
    const TimePoint deadline = arrival + schedule.maxAge;
    if (now >= deadline) {
        plan.giveUp = true;
        return plan;
    }
    plan.sendDelayWarning = !delayWarningSent && schedule.delayWarning < schedule.maxAge &&
                            now - arrival >= schedule.delayWarning;

    // min * 2^(n-1), capped; computed in double so that many attempts cannot overflow.
    const int exponent = std::clamp(attemptsSoFar - 1, 0, 62);
    const double base = std::min(static_cast<double>(schedule.minDelay.count()) *
                                     std::pow(2.0, static_cast<double>(exponent)),
                                 static_cast<double>(schedule.maxDelay.count()));
    const double spread = 1.0 + schedule.jitter * (2.0 * uniform01() - 1.0);
    const auto wait =
        std::chrono::milliseconds(std::max<long long>(1000, std::llround(base * spread * 1000.0)));
    // The last attempt happens at the deadline itself, so a message is never bounced without a
    // try in its final interval.
    plan.nextAttempt =
        std::min(now + std::chrono::duration_cast<TimePoint::duration>(wait), deadline);
    return plan;
}

}  // namespace demail::gateway
