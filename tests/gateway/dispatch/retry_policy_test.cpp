#include "demail/gateway/retry_policy.h"

#include <gtest/gtest.h>

using namespace demail::gateway;
using namespace std::chrono;
using namespace std::chrono_literals;

namespace {
const TimePoint kArrival = system_clock::from_time_t(1'800'000'000);
auto fixed(double v) {
    return [v] { return v; };
}
}  // namespace

TEST(RetryPolicy, DoublesFromMinimumUpToMaximumWithoutJitter) {
    RetrySchedule s;  // 60 s .. 1800 s
    const auto now = kArrival + 1min;
    std::vector<long long> waits;
    for (int attempt = 1; attempt <= 7; ++attempt) {
        const auto plan = planRetry(s, attempt, kArrival, now, false, fixed(0.5));
        ASSERT_FALSE(plan.giveUp);
        waits.push_back(duration_cast<seconds>(plan.nextAttempt - now).count());
    }
    EXPECT_EQ(waits, (std::vector<long long>{60, 120, 240, 480, 960, 1800, 1800}));
}

TEST(RetryPolicy, JitterStaysWithinTwentyPercent) {
    RetrySchedule s;
    const auto now = kArrival;
    const auto low = planRetry(s, 3, kArrival, now, false, fixed(0.0));
    const auto high = planRetry(s, 3, kArrival, now, false, fixed(0.999999));
    EXPECT_EQ(duration_cast<seconds>(low.nextAttempt - now).count(), 192);  // 240 * 0.8
    EXPECT_NEAR(duration_cast<milliseconds>(high.nextAttempt - now).count(), 288000, 1);
}

TEST(RetryPolicy, HugeAttemptCountsDoNotOverflow) {
    RetrySchedule s;
    const auto plan = planRetry(s, 1'000'000, kArrival, kArrival, false, fixed(0.5));
    EXPECT_EQ(duration_cast<seconds>(plan.nextAttempt - kArrival).count(), 1800);
}

TEST(RetryPolicy, GivesUpAtMaxAgeAndTriesOnceMoreAtTheDeadline) {
    RetrySchedule s;
    EXPECT_TRUE(planRetry(s, 5, kArrival, kArrival + 24h, true, fixed(0.5)).giveUp);
    const auto last = planRetry(s, 40, kArrival, kArrival + 24h - 10s, true, fixed(0.5));
    ASSERT_FALSE(last.giveUp);
    EXPECT_EQ(last.nextAttempt, kArrival + 24h);
}

TEST(RetryPolicy, DelayWarningOnceAfterTheThreshold) {
    RetrySchedule s;  // warn after 4 h
    EXPECT_FALSE(planRetry(s, 2, kArrival, kArrival + 3h, false, fixed(0.5)).sendDelayWarning);
    EXPECT_TRUE(planRetry(s, 2, kArrival, kArrival + 4h, false, fixed(0.5)).sendDelayWarning);
    EXPECT_FALSE(planRetry(s, 2, kArrival, kArrival + 5h, true, fixed(0.5)).sendDelayWarning);
}

TEST(RetryPolicy, DelayWarningAtOrAboveMaxAgeIsOff) {
    RetrySchedule s;
    s.delayWarning = s.maxAge;
    EXPECT_FALSE(planRetry(s, 2, kArrival, kArrival + 23h, false, fixed(0.5)).sendDelayWarning);
}
