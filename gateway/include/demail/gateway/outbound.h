// The outbound dispatcher: takes queued messages to the provider, retries with backoff, warns on
// delay, bounces after max_age or on a permanent refusal, and pauses (keeping the queue) while an
// operator must act (card pulled, PIN rejected, certificate refused). One account's trouble
// (blocked at the provider) holds back only that account's mail (AccountPauses).
//
// It works through three seams, each a small interface with a real adapter in the daemon and a
// fake in the unit tests: OutboundStore (the spool), Submitter (message layer + provider
// transport), Notifier (DSNs to the internal relay). It never deletes a message before the
// provider accepted it or its sender's DSN was handed over.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "demail/gateway/account_pauses.h"
#include "demail/gateway/dsn.h"
#include "demail/gateway/envelope.h"
#include "demail/gateway/retry_policy.h"
#include "demail/gateway/smtp_delivery.h"

namespace demail::gateway {

// Mutable per-message progress, kept by the store next to the immutable message.
struct DispatchState {
    enum class Phase {
        Submit,  // still to be handed to the provider
        Notify,  // given up or refused: the DSN still has to reach the sender
    };
    Phase phase = Phase::Submit;
    int attempts = 0;
    TimePoint nextAttempt{};
    bool delayWarned = false;
    std::string lastError;   // one line; becomes the DSN's diagnostic
    std::string lastStatus;  // RFC 3463 code of the last failure, e.g. "4.4.1"
};

class OutboundStore {
  public:
    virtual ~OutboundStore() = default;
    virtual std::vector<std::string> queued() = 0;
    virtual std::optional<Envelope> envelope(const std::string& id) = 0;
    virtual std::unique_ptr<std::istream> body(const std::string& id) = 0;
    virtual DispatchState state(const std::string& id) = 0;
    // Durable before it returns: a crash after it must not repeat what the state says is done.
    virtual void saveState(const std::string& id, const DispatchState& state) = 0;
    // The message is finished (accepted by the provider, or bounced): remove it from the queue.
    virtual void finish(const std::string& id) = 0;
    // A value that changes whenever the message's dispatch state is written, by the daemon or by
    // `demailctl queue retry`. It lets a pass skip a message that is not due without reading its
    // files; nullopt (the default) means unknown: the message is read on every pass.
    virtual std::optional<std::uint64_t> stateStamp(const std::string& /*id*/) {
        return std::nullopt;
    }
};

struct SubmitOutcome {
    enum class Kind {
        Accepted,        // the provider took it (also when it already had it: idempotency key)
        Retryable,       // try again later
        Permanent,       // never: bounce now
        OperatorAction,  // card, PIN, key, client certificate: pause everything, keep the queue
        AccountPaused,   // only `account` cannot send (blocked at the provider, not bound to our
                         // certificate): its mail waits, every other account goes on
    };
    Kind kind = Kind::Retryable;
    std::string detail;       // one line
    std::string status;       // RFC 3463 code for a DSN, e.g. "5.1.1"; defaults by kind
    std::string remoteHost;   // the provider's host for Remote-MTA
    std::string providerIds;  // accepted: the provider's message ids, for the log trail
    std::string account{};    // AccountPaused: the De-Mail account that is paused
    // OperatorAction: the provider itself refused our credentials (an HTTP answer such as 403
    // certificate_revoked): logging in to the same card again cannot help, so the card
    // supervisor must not do it (it would loop); a new card or a reload ends the pause.
    bool providerRefused{};
};

class Submitter {
  public:
    virtual ~Submitter() = default;
    virtual SubmitOutcome submit(const Envelope& envelope, std::istream& body) = 0;
};

class Notifier {
  public:
    virtual ~Notifier() = default;
    virtual DeliveryResult send(const DsnMessage& dsn) = 0;
};

// What happened in one pass, for logs, metrics and tests.
struct DispatchCounts {
    int submitted = 0;
    int deferred = 0;
    int bounced = 0;  // DSN of failure handed over (or none wanted) and message removed
    int delayWarnings = 0;
    int notifyDeferred = 0;  // the DSN itself could not be handed over yet
    int skipped = 0;         // not due yet
    DispatchCounts& operator+=(const DispatchCounts& o);
};

class OutboundDispatcher {
  public:
    struct Options {
        RetrySchedule schedule;
        std::string reportingHost;  // our host name in DSNs
        // Messages handled at the same time in one pass, each on its own thread (the calling
        // thread is one of them). The Submitter, store and notifier must then be thread-safe;
        // the daemon sets it to [provider] connections.
        std::size_t lanes = 1;
        // Per-account pauses (the submitter writes them): a message that came back
        // AccountPaused is parked until its account is resumed or its probe time comes. Null:
        // such a message simply waits for the next pass.
        const AccountPauses* accountPauses = nullptr;
    };
    OutboundDispatcher(Options options, OutboundStore& store, Submitter& submitter,
                       Notifier& notifier, std::function<double()> uniform01);

    // Processes every message that is due at `now`, `lanes` at a time. Stops submitting (but
    // still sends pending DSNs and bounces what expired) while paused.
    DispatchCounts runOnce(TimePoint now);
    // Processes just these messages (new arrivals), `lanes` at a time, without listing the
    // queue; ids that are gone already are skipped.
    DispatchCounts runIds(const std::vector<std::string>& ids, TimePoint now);
    // Processes one message; used by runOnce's lanes.
    void processOne(const std::string& id, TimePoint now, DispatchCounts& counts);

    // Set when a submission came back OperatorAction (card, key, client certificate), cleared by
    // resume() (the card supervisor calls it when the card is back and logged in). An account's
    // trouble (AccountPaused) never sets it.
    bool paused() const;
    // Paused for a reason a new login to the card may end (the card, its key): the card
    // supervisor's cue to log in again. False for a pause the provider's refusal of our
    // credentials caused (SubmitOutcome::providerRefused).
    bool pausedForCard() const;
    std::string pauseReason() const;
    // True when the last pass left this message waiting because its account is paused (the
    // queue's readiness leaves such messages out: the gateway works for the other accounts).
    bool heldForAccount(const std::string& id) const;
    void pause(const std::string& reason, bool loginMayHelp = true);
    void resume();

  private:
    // What a pass learnt about a message that stays queued, so that the next passes need not
    // read its files until it is due (a queue of thousands waiting for the card costs nothing).
    struct Parked {
        DispatchState::Phase phase;
        TimePoint nextAttempt;
        TimePoint arrival;
        std::uint64_t stamp;
        std::string pausedAccount;  // came back AccountPaused for this account
    };
    bool processMessage(const std::string& id, TimePoint now, DispatchCounts& counts,
                        std::optional<Envelope>& env, DispatchState& st,
                        std::string& pausedAccount);
    bool due(const Parked& p, TimePoint now) const;
    // True when the provider accepted it and it left the queue.
    bool handleSubmit(const Envelope& env, DispatchState& st, TimePoint now, DispatchCounts& counts,
                      std::string& pausedAccount);
    void giveUp(const Envelope& env, DispatchState& st, const std::string& status,
                const std::string& detail);
    bool sendReport(const Envelope& env, const DispatchState& st, DsnAction action, TimePoint now,
                    const std::string& remoteHost);

    Options options_;
    OutboundStore& store_;
    Submitter& submitter_;
    Notifier& notifier_;
    double uniform01();  // uniform01_ is not thread-safe: lanes take turns
    mutable std::mutex parkedMutex_;
    std::map<std::string, Parked> parked_;
    std::function<double()> uniform01_;
    std::mutex randomMutex_;
    mutable std::mutex pauseMutex_;
    std::optional<std::string> pauseReason_;
    bool loginMayHelp_ = true;
};

}  // namespace demail::gateway
