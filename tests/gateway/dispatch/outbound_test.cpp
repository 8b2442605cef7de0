// The dispatcher's decisions with an in-memory store, a scripted provider and a recording relay.
#include "demail/gateway/outbound.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>

using namespace demail::gateway;
using namespace std::chrono_literals;

namespace {

const TimePoint kT0 = std::chrono::system_clock::from_time_t(1'800'000'000);

class MemoryStore : public OutboundStore {
  public:
    void add(Envelope env, std::string body) {
        env.size = body.size();
        bodies[env.queueId] = std::move(body);
        envelopes[env.queueId] = std::move(env);
    }
    std::vector<std::string> queued() override {
        std::vector<std::string> ids;
        for (const auto& [id, e] : envelopes)
            ids.push_back(id);
        return ids;
    }
    std::optional<Envelope> envelope(const std::string& id) override {
        auto it = envelopes.find(id);
        if (it == envelopes.end())
            return std::nullopt;
        return it->second;
    }
    std::unique_ptr<std::istream> body(const std::string& id) override {
        return std::make_unique<std::istringstream>(bodies.at(id));
    }
    DispatchState state(const std::string& id) override { return states[id]; }
    void saveState(const std::string& id, const DispatchState& s) override { states[id] = s; }
    void finish(const std::string& id) override {
        envelopes.erase(id);
        finished.push_back(id);
    }
    std::map<std::string, Envelope> envelopes;
    std::map<std::string, std::string> bodies;
    std::map<std::string, DispatchState> states;
    std::vector<std::string> finished;
};

class ScriptedProvider : public Submitter {
  public:
    SubmitOutcome submit(const Envelope& env, std::istream& body) override {
        std::stringstream ss;
        ss << body.rdbuf();
        seen.push_back(env.queueId + ":" + ss.str());
        if (script.empty())
            return {SubmitOutcome::Kind::Accepted, "accepted", "", "provider.test", {}};
        auto o = script.front();
        script.pop_front();
        return o;
    }
    std::deque<SubmitOutcome> script;
    std::vector<std::string> seen;
};

class RecordingRelay : public Notifier {
  public:
    DeliveryResult send(const DsnMessage& dsn) override {
        DeliveryResult r;
        r.outcome = next;
        if (next == DeliveryOutcome::Delivered)
            sent.push_back(dsn);
        return r;
    }
    DeliveryOutcome next = DeliveryOutcome::Delivered;
    std::vector<DsnMessage> sent;
};

Envelope envelope(const std::string& id, const std::string& notify = {}) {
    Envelope e;
    e.queueId = id;
    e.sender = "sachbearbeiter@firma.de";
    e.recipients = {{"buerger@example.de-mail.de", notify, ""}};
    e.arrival = kT0;
    return e;
}

SubmitOutcome retryable(const std::string& why) {
    return {SubmitOutcome::Kind::Retryable, why, "", "provider.test", {}};
}

class Dispatch : public ::testing::Test {
  protected:
    Dispatch() : dispatcher(options(), store, provider, relay, [] { return 0.5; }) {}
    static OutboundDispatcher::Options options() {
        OutboundDispatcher::Options o;
        o.reportingHost = "gw.firma.de";
        return o;  // 60 s .. 30 min, max_age 24 h, warning after 4 h
    }
    MemoryStore store;
    ScriptedProvider provider;
    RecordingRelay relay;
    OutboundDispatcher dispatcher;
};

}  // namespace

TEST_F(Dispatch, AcceptedMessageLeavesTheQueueWithoutNotification) {
    store.add(envelope("A"), "Subject: a\r\n\r\nbody\r\n");
    const auto c = dispatcher.runOnce(kT0);
    EXPECT_EQ(c.submitted, 1);
    EXPECT_EQ(store.finished, std::vector<std::string>{"A"});
    EXPECT_EQ(provider.seen, std::vector<std::string>{"A:Subject: a\r\n\r\nbody\r\n"});
    EXPECT_TRUE(relay.sent.empty());
}

TEST_F(Dispatch, SuccessNotificationOnlyWhenAsked) {
    store.add(envelope("A", "SUCCESS"), "Subject: a\r\n\r\nbody\r\n");
    dispatcher.runOnce(kT0);
    ASSERT_EQ(relay.sent.size(), 1u);
    EXPECT_NE(relay.sent[0].data.find("Action: relayed"), std::string::npos);
}

TEST_F(Dispatch, RetryableFailureIsDeferredWithBackoffAndNotRetriedEarly) {
    store.add(envelope("A"), "x\r\n");
    provider.script = {retryable("provider answered 503"), retryable("timeout")};
    auto c = dispatcher.runOnce(kT0);
    EXPECT_EQ(c.deferred, 1);
    EXPECT_EQ(store.states["A"].attempts, 1);
    EXPECT_EQ(store.states["A"].nextAttempt, kT0 + 60s);
    EXPECT_EQ(dispatcher.runOnce(kT0 + 59s).skipped, 1);
    EXPECT_EQ(dispatcher.runOnce(kT0 + 60s).deferred, 1);
    EXPECT_EQ(store.states["A"].nextAttempt, kT0 + 60s + 120s);
    EXPECT_EQ(dispatcher.runOnce(kT0 + 180s).submitted, 1);
    EXPECT_TRUE(relay.sent.empty());
}

TEST_F(Dispatch, PermanentRefusalBouncesAtOnceWithTheProvidersReason) {
    store.add(envelope("A"), "Subject: a\r\n\r\nbody\r\n");
    provider.script = {{SubmitOutcome::Kind::Permanent,
                        "recipient is not a De-Mail address",
                        "5.1.1",
                        "provider.test",
                        {}}};
    const auto c = dispatcher.runOnce(kT0);
    EXPECT_EQ(c.bounced, 1);
    ASSERT_EQ(relay.sent.size(), 1u);
    EXPECT_EQ(relay.sent[0].envelopeTo, "sachbearbeiter@firma.de");
    EXPECT_NE(relay.sent[0].data.find("Status: 5.1.1"), std::string::npos);
    EXPECT_NE(relay.sent[0].data.find("recipient is not a De-Mail address"), std::string::npos);
    EXPECT_EQ(store.finished, std::vector<std::string>{"A"});
}

TEST_F(Dispatch, ExpiredMessageBouncesWithTheLastError) {
    store.add(envelope("A"), "x\r\n");
    provider.script = {retryable("connection refused")};
    dispatcher.runOnce(kT0);
    EXPECT_EQ(dispatcher.runOnce(kT0 + 24h).bounced, 1);
    ASSERT_EQ(relay.sent.size(), 1u);
    EXPECT_NE(relay.sent[0].data.find("last error: connection refused"), std::string::npos);
    EXPECT_NE(relay.sent[0].data.find("Action: failed"), std::string::npos);
    EXPECT_EQ(provider.seen.size(), 1u) << "no submission after the deadline";
}

TEST_F(Dispatch, OneDelayWarningAfterTheThreshold) {
    store.add(envelope("A"), "x\r\n");
    for (int i = 0; i < 20; ++i)
        provider.script.push_back(retryable("503"));
    int warnings = 0;
    for (auto t = kT0; t < kT0 + 6h; t += 30min) {
        store.states["A"].nextAttempt = TimePoint{};  // force an attempt at every step
        warnings += dispatcher.runOnce(t).delayWarnings;
    }
    EXPECT_EQ(warnings, 1);
    ASSERT_EQ(relay.sent.size(), 1u);
    EXPECT_NE(relay.sent[0].data.find("Action: delayed"), std::string::npos);
}

TEST_F(Dispatch, BounceIsKeptUntilTheRelayTakesTheNotification) {
    store.add(envelope("A"), "x\r\n");
    provider.script = {{SubmitOutcome::Kind::Permanent, "refused", "5.7.1", "", {}}};
    relay.next = DeliveryOutcome::Temporary;
    auto c = dispatcher.runOnce(kT0);
    EXPECT_EQ(c.notifyDeferred, 1);
    EXPECT_TRUE(store.finished.empty()) << "the message stays until its DSN is handed over";
    EXPECT_EQ(store.states["A"].phase, DispatchState::Phase::Notify);
    relay.next = DeliveryOutcome::Delivered;
    c = dispatcher.runOnce(kT0 + 1h);
    EXPECT_EQ(c.bounced, 1);
    EXPECT_EQ(relay.sent.size(), 1u);
    EXPECT_EQ(provider.seen.size(), 1u) << "a bounced message is never submitted again";
}

TEST_F(Dispatch, NullSenderAndNotifyNeverAreRemovedWithoutNotification) {
    auto e = envelope("A");
    e.sender.clear();
    store.add(e, "x\r\n");
    store.add(envelope("B", "NEVER"), "x\r\n");
    provider.script = {{SubmitOutcome::Kind::Permanent, "refused", "5.7.1", "", {}},
                       {SubmitOutcome::Kind::Permanent, "refused", "5.7.1", "", {}}};
    EXPECT_EQ(dispatcher.runOnce(kT0).bounced, 2);
    EXPECT_TRUE(relay.sent.empty());
}

TEST_F(Dispatch, OperatorActionPausesWithoutCountingAnAttempt) {
    store.add(envelope("A"), "x\r\n");
    store.add(envelope("B"), "y\r\n");
    provider.script = {{SubmitOutcome::Kind::OperatorAction, "card removed", "", "", {}}};
    auto c = dispatcher.runOnce(kT0);
    EXPECT_TRUE(dispatcher.paused());
    EXPECT_EQ(dispatcher.pauseReason(), "card removed");
    EXPECT_EQ(provider.seen.size(), 1u) << "B is not tried while paused";
    EXPECT_EQ(store.states["A"].attempts, 0);
    EXPECT_EQ(c.skipped, 1);
    dispatcher.resume();
    EXPECT_EQ(dispatcher.runOnce(kT0 + 1s).submitted, 2);
}

TEST_F(Dispatch, AProviderRefusalOfOurCredentialsIsNoCueToLogInAgain) {
    store.add(envelope("A"), "x\r\n");
    SubmitOutcome refused{
        SubmitOutcome::Kind::OperatorAction, "403 certificate_revoked", "", "", {}};
    refused.providerRefused = true;
    provider.script = {refused};
    dispatcher.runOnce(kT0);
    EXPECT_TRUE(dispatcher.paused());
    EXPECT_FALSE(dispatcher.pausedForCard());
    dispatcher.pause("card removed");  // the card supervisor's own pause is one
    EXPECT_TRUE(dispatcher.pausedForCard());
}

TEST_F(Dispatch, ExpiryStillBouncesWhilePaused) {
    store.add(envelope("A"), "x\r\n");
    dispatcher.pause("PIN rejected, 2 tries left");
    EXPECT_EQ(dispatcher.runOnce(kT0 + 1h).skipped, 1);
    EXPECT_EQ(dispatcher.runOnce(kT0 + 25h).bounced, 1);
    EXPECT_TRUE(provider.seen.empty());
}

namespace {

// Thread-safe store and a provider that blocks until `lanes` submissions are in flight at once,
// which proves the lanes run side by side (a serial dispatcher would time out at the first one).
class LockedStore : public MemoryStore {
  public:
    std::optional<Envelope> envelope(const std::string& id) override {
        std::lock_guard lock(mutex);
        return MemoryStore::envelope(id);
    }
    std::unique_ptr<std::istream> body(const std::string& id) override {
        std::lock_guard lock(mutex);
        return MemoryStore::body(id);
    }
    DispatchState state(const std::string& id) override {
        std::lock_guard lock(mutex);
        return MemoryStore::state(id);
    }
    void saveState(const std::string& id, const DispatchState& s) override {
        std::lock_guard lock(mutex);
        MemoryStore::saveState(id, s);
    }
    void finish(const std::string& id) override {
        std::lock_guard lock(mutex);
        MemoryStore::finish(id);
    }
    std::mutex mutex;
};

class RendezvousProvider : public Submitter {
  public:
    explicit RendezvousProvider(int lanes) : lanes_(lanes) {}
    SubmitOutcome submit(const Envelope& env, std::istream&) override {
        std::unique_lock lock(mutex_);
        ++inFlight_;
        maxInFlight = std::max(maxInFlight, inFlight_);
        submitted.push_back(env.queueId);
        changed_.notify_all();
        const bool met = changed_.wait_for(lock, 5s, [&] { return maxInFlight >= lanes_; });
        --inFlight_;
        if (!met)
            return retryable("the lanes never met");
        return {SubmitOutcome::Kind::Accepted, "accepted", "", "provider.test", {}};
    }
    int maxInFlight = 0;
    std::vector<std::string> submitted;

  private:
    int lanes_;
    int inFlight_ = 0;
    std::mutex mutex_;
    std::condition_variable changed_;
};

}  // namespace

TEST(DispatchLanes, FourLanesSubmitSideBySideAndEachMessageOnce) {
    LockedStore store;
    for (int i = 0; i < 40; ++i)
        store.add(envelope("M" + std::to_string(100 + i)), "Subject: x\r\n\r\nbody\r\n");
    RendezvousProvider provider(4);
    RecordingRelay relay;
    OutboundDispatcher::Options o;
    o.reportingHost = "gw.firma.de";
    o.lanes = 4;
    OutboundDispatcher dispatcher(o, store, provider, relay, [] { return 0.5; });
    const auto c = dispatcher.runOnce(kT0);
    EXPECT_EQ(c.submitted, 40);
    EXPECT_EQ(c.deferred, 0);
    EXPECT_EQ(provider.maxInFlight, 4);
    auto ids = provider.submitted;
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end()) << "a message was submitted twice";
    EXPECT_EQ(ids.size(), 40u);
    EXPECT_TRUE(store.envelopes.empty());
}

TEST(DispatchLanes, MoreLanesThanMessagesAndAnEmptyQueue) {
    LockedStore store;
    RendezvousProvider provider(1);
    RecordingRelay relay;
    OutboundDispatcher::Options o;
    o.lanes = 16;
    OutboundDispatcher dispatcher(o, store, provider, relay, [] { return 0.5; });
    EXPECT_EQ(dispatcher.runOnce(kT0).submitted, 0);
    store.add(envelope("A"), "Subject: a\r\n\r\nbody\r\n");
    EXPECT_EQ(dispatcher.runOnce(kT0).submitted, 1);
    o.lanes = 0;  // treated as one
    OutboundDispatcher one(o, store, provider, relay, [] { return 0.5; });
    store.add(envelope("B"), "Subject: b\r\n\r\nbody\r\n");
    EXPECT_EQ(one.runOnce(kT0).submitted, 1);
}

namespace {

// A store that reports state stamps and counts how often a message's files are read.
class StampedStore : public MemoryStore {
  public:
    std::optional<Envelope> envelope(const std::string& id) override {
        ++reads;
        return MemoryStore::envelope(id);
    }
    void saveState(const std::string& id, const DispatchState& s) override {
        MemoryStore::saveState(id, s);
        ++stamps[id];
    }
    std::optional<std::uint64_t> stateStamp(const std::string& id) override { return stamps[id]; }
    int reads = 0;
    std::map<std::string, std::uint64_t> stamps;
};

}  // namespace

TEST(DispatchParked, WaitingMessagesAreNotReadAgainUntilDueOrRewritten) {
    StampedStore store;
    for (int i = 0; i < 100; ++i)
        store.add(envelope("P" + std::to_string(100 + i)), "Subject: p\r\n\r\nbody\r\n");
    ScriptedProvider provider;
    RecordingRelay relay;
    OutboundDispatcher::Options o;
    OutboundDispatcher dispatcher(o, store, provider, relay, [] { return 0.5; });
    dispatcher.pause("card removed");
    EXPECT_EQ(dispatcher.runOnce(kT0).skipped, 100);
    EXPECT_EQ(store.reads, 100);
    for (int pass = 0; pass < 5; ++pass)  // the card stays away: no file is opened again
        EXPECT_EQ(dispatcher.runOnce(kT0 + 1s * pass).skipped, 100);
    EXPECT_EQ(store.reads, 100);

    // `demailctl queue retry` rewrites one message's state: that one is read again.
    store.saveState("P150", DispatchState{});
    dispatcher.runOnce(kT0 + 10s);
    EXPECT_EQ(store.reads, 101);

    // Expiry still bounces while paused, and the card coming back sends the rest.
    store.add(envelope("OLD"), "Subject: old\r\n\r\nbody\r\n");
    store.envelopes["OLD"].arrival = kT0 - 25h;
    dispatcher.runOnce(kT0 + 20s);
    EXPECT_EQ(store.envelopes.count("OLD"), 0u);
    dispatcher.resume();
    EXPECT_EQ(dispatcher.runOnce(kT0 + 30s).submitted, 100);
    EXPECT_TRUE(store.envelopes.empty());
}

TEST(DispatchParked, DeferredMessageIsReadAgainWhenItsRetryIsDue) {
    StampedStore store;
    store.add(envelope("D"), "Subject: d\r\n\r\nbody\r\n");
    ScriptedProvider provider;
    provider.script = {retryable("provider down")};
    RecordingRelay relay;
    OutboundDispatcher dispatcher({}, store, provider, relay, [] { return 0.5; });
    EXPECT_EQ(dispatcher.runOnce(kT0).deferred, 1);
    const int readsAfterFirst = store.reads;
    EXPECT_EQ(dispatcher.runOnce(kT0 + 30s).skipped, 1);  // retry_min is 60 s
    EXPECT_EQ(store.reads, readsAfterFirst);
    EXPECT_EQ(dispatcher.runOnce(kT0 + 61s).submitted, 1);
}

TEST_F(Dispatch, NewArrivalsAreSentByIdAndGoneOnesSkipped) {
    store.add(envelope("NEW"), "Subject: new\r\n\r\nbody\r\n");
    store.add(envelope("OTHER"), "Subject: other\r\n\r\nbody\r\n");
    const auto c = dispatcher.runIds({"NEW", "SENT-MEANWHILE"}, kT0);
    EXPECT_EQ(c.submitted, 1);
    EXPECT_EQ(c.skipped, 1);
    EXPECT_EQ(store.finished, std::vector<std::string>{"NEW"});  // OTHER waits for a full pass
}

namespace {

// Two accounts, the second blocked at the provider: as the real submitter does, a refusal pauses
// that account in AccountPauses, and while it is paused only one probe per interval reaches the
// provider.
class TwoAccountProvider : public Submitter {
  public:
    explicit TwoAccountProvider(AccountPauses& p) : pauses(p) {}
    SubmitOutcome submit(const Envelope& env, std::istream&) override {
        const std::string account =
            env.sender == "b@firma.de" ? "b@firma.de-mail.de" : "a@firma.de-mail.de";
        const std::string why = "provider answered 403 account_blocked";
        if (!pauses.mayTry(account, now))
            return {SubmitOutcome::Kind::AccountPaused, why, "", "", {}, account};
        ++requests[account];
        if (account == "b@firma.de-mail.de" && bBlocked) {
            pauses.pause(account, why, now);
            return {SubmitOutcome::Kind::AccountPaused, why, "", "", {}, account};
        }
        pauses.resume(account, "accepted");
        return {SubmitOutcome::Kind::Accepted, "accepted", "", "provider.test", {}};
    }
    AccountPauses& pauses;
    TimePoint now = kT0;
    bool bBlocked = true;
    std::map<std::string, int> requests;
};

Envelope from(const std::string& id, const std::string& sender, TimePoint arrival = kT0) {
    Envelope e = envelope(id);
    e.sender = sender;
    e.arrival = arrival;
    return e;
}

}  // namespace

TEST(DispatchAccountPause, BlockedAccountHoldsOnlyItsOwnMailWithoutPausingTheDispatcher) {
    StampedStore store;
    store.add(from("A1", "a@firma.de"), "Subject: a1\r\n\r\nbody\r\n");
    store.add(from("B1", "b@firma.de"), "Subject: b1\r\n\r\nbody\r\n");
    store.add(from("B2", "b@firma.de"), "Subject: b2\r\n\r\nbody\r\n");
    AccountPauses pauses(600s);
    TwoAccountProvider provider(pauses);
    RecordingRelay relay;
    OutboundDispatcher::Options o;
    o.accountPauses = &pauses;
    OutboundDispatcher dispatcher(o, store, provider, relay, [] { return 0.5; });

    auto c = dispatcher.runOnce(kT0);
    EXPECT_EQ(c.submitted, 1);
    EXPECT_FALSE(dispatcher.paused()) << "an account's trouble must not pause everything";
    EXPECT_TRUE(pauses.paused("b@firma.de-mail.de"));
    EXPECT_EQ(provider.requests["b@firma.de-mail.de"], 1) << "B2 is held without a request";
    EXPECT_EQ(store.states["B1"].attempts, 0);
    EXPECT_EQ(store.states["B1"].lastError, "provider answered 403 account_blocked");
    EXPECT_EQ(store.states["B2"].lastError, "provider answered 403 account_blocked");
    EXPECT_TRUE(dispatcher.heldForAccount("B1"));  // left out of the queue's readiness
    EXPECT_FALSE(dispatcher.heldForAccount("A1"));

    // The held messages are parked: later passes neither read them nor ask the provider, and
    // the other account's new mail goes out at once.
    const int reads = store.reads;
    store.add(from("A2", "a@firma.de"), "Subject: a2\r\n\r\nbody\r\n");
    provider.now = kT0 + 5s;
    c = dispatcher.runOnce(kT0 + 5s);
    EXPECT_EQ(c.submitted, 1);
    EXPECT_EQ(c.skipped, 2);
    EXPECT_EQ(store.reads, reads + 1);  // A2 only
    EXPECT_EQ(provider.requests["b@firma.de-mail.de"], 1);

    // At the probe time one request tries again; still blocked, nothing is bounced.
    provider.now = kT0 + 601s;
    c = dispatcher.runOnce(kT0 + 601s);
    EXPECT_EQ(provider.requests["b@firma.de-mail.de"], 2);
    EXPECT_EQ(c.bounced, 0);
    EXPECT_EQ(store.envelopes.count("B1") + store.envelopes.count("B2"), 2u);

    // Unblocked (the account listing says so): resumed at once, its mail goes out.
    provider.bBlocked = false;
    pauses.resume("b@firma.de-mail.de", "listing shows it unblocked");
    EXPECT_FALSE(dispatcher.heldForAccount("B1"));
    provider.now = kT0 + 602s;
    EXPECT_EQ(dispatcher.runOnce(kT0 + 602s).submitted, 2);
    EXPECT_TRUE(store.envelopes.empty());
    EXPECT_TRUE(relay.sent.empty());
}

TEST(DispatchAccountPause, HeldMessageStillExpiresAtMaxAge) {
    StampedStore store;
    store.add(from("B1", "b@firma.de"), "Subject: b1\r\n\r\nbody\r\n");
    AccountPauses pauses(600s);
    TwoAccountProvider provider(pauses);
    RecordingRelay relay;
    OutboundDispatcher::Options o;
    o.accountPauses = &pauses;
    OutboundDispatcher dispatcher(o, store, provider, relay, [] { return 0.5; });
    EXPECT_EQ(dispatcher.runOnce(kT0).deferred, 1);
    EXPECT_EQ(dispatcher.runOnce(kT0 + 1h).skipped, 1);
    EXPECT_EQ(dispatcher.runOnce(kT0 + 25h).bounced, 1);  // max_age 24 h, as for any pause
    ASSERT_EQ(relay.sent.size(), 1u);
}
