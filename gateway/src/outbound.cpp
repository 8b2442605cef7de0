#include "demail/gateway/outbound.h"
#include "demail/gateway/dsn_status.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <sstream>
#include <thread>

namespace demail::gateway {
namespace {

Poco::Logger& log() {
    return Poco::Logger::get("outbound");
}

// RFC 3463: X.4.7 "delivery time expired". Like Postfix, the class stays 4 (the failures were
// transient; the give-up is ours).
constexpr const char* kExpiredStatus = dsn_status::kExpired.code;

}  // namespace

OutboundDispatcher::OutboundDispatcher(Options options, OutboundStore& store, Submitter& submitter,
                                       Notifier& notifier, std::function<double()> uniform01)
    : options_(std::move(options)),
      store_(store),
      submitter_(submitter),
      notifier_(notifier),
      uniform01_(std::move(uniform01)) {}

bool OutboundDispatcher::paused() const {
    std::lock_guard lock(pauseMutex_);
    return pauseReason_.has_value();
}

std::string OutboundDispatcher::pauseReason() const {
    std::lock_guard lock(pauseMutex_);
    return pauseReason_.value_or("");
}

bool OutboundDispatcher::pausedForCard() const {
    std::lock_guard lock(pauseMutex_);
    return pauseReason_.has_value() && loginMayHelp_;
}

void OutboundDispatcher::pause(const std::string& reason, bool loginMayHelp) {
    std::lock_guard lock(pauseMutex_);
    if (!pauseReason_)
        log().warning("event=dispatch_paused reason=\"" + reason + "\"");
    pauseReason_ = reason;
    loginMayHelp_ = loginMayHelp;
}

void OutboundDispatcher::resume() {
    std::lock_guard lock(pauseMutex_);
    if (pauseReason_)
        log().information("event=dispatch_resumed");
    pauseReason_.reset();
}

bool OutboundDispatcher::heldForAccount(const std::string& id) const {
    if (!options_.accountPauses)
        return false;
    std::string account;
    {
        std::lock_guard lock(parkedMutex_);
        const auto it = parked_.find(id);
        if (it == parked_.end())
            return false;
        account = it->second.pausedAccount;
    }
    return !account.empty() && options_.accountPauses->paused(account);
}

DispatchCounts& DispatchCounts::operator+=(const DispatchCounts& o) {
    submitted += o.submitted;
    deferred += o.deferred;
    bounced += o.bounced;
    delayWarnings += o.delayWarnings;
    notifyDeferred += o.notifyDeferred;
    skipped += o.skipped;
    return *this;
}

double OutboundDispatcher::uniform01() {
    std::lock_guard lock(randomMutex_);
    return uniform01_();
}

bool OutboundDispatcher::due(const Parked& p, TimePoint now) const {
    // As processMessage decides: not before nextAttempt; a message to submit only while sending
    // or once it expired (it is bounced even while paused).
    if (p.nextAttempt > now)
        return false;
    // A message of a paused account waits until the account is resumed or may be probed; its
    // expiry is still honoured (bounced at max_age, as for any pause).
    if (p.phase == DispatchState::Phase::Submit && !p.pausedAccount.empty() &&
        options_.accountPauses && options_.accountPauses->holds(p.pausedAccount, now) &&
        now < p.arrival + options_.schedule.maxAge)
        return false;
    return p.phase == DispatchState::Phase::Notify || !paused() ||
           now >= p.arrival + options_.schedule.maxAge;
}

DispatchCounts OutboundDispatcher::runOnce(TimePoint now) {
    std::vector<std::string> ids;
    DispatchCounts parkedCounts;
    {
        // Messages a previous pass left waiting are skipped without touching their files while
        // they are not due and nobody rewrote their state; forgotten once they left the queue.
        std::lock_guard lock(parkedMutex_);
        std::map<std::string, Parked> stillQueued;
        for (auto& id : store_.queued()) {
            auto it = parked_.find(id);
            if (it != parked_.end()) {
                const Parked p = it->second;
                stillQueued.emplace(id, p);
                if (!due(p, now) && store_.stateStamp(id) == p.stamp) {
                    ++parkedCounts.skipped;
                    continue;
                }
            }
            ids.push_back(std::move(id));
        }
        parked_ = std::move(stillQueued);
    }
    DispatchCounts total = parkedCounts;
    total += runIds(ids, now);
    return total;
}

DispatchCounts OutboundDispatcher::runIds(const std::vector<std::string>& ids, TimePoint now) {
    // Each lane takes the next id until none is left, so a slow submission holds up one lane,
    // not the queue. Each id is taken exactly once per pass.
    std::atomic<std::size_t> next{0};
    auto lane = [&](DispatchCounts& counts) {
        for (std::size_t i; (i = next.fetch_add(1)) < ids.size();)
            processOne(ids[i], now, counts);
    };
    const std::size_t lanes = std::max<std::size_t>(1, std::min(options_.lanes, ids.size()));
    std::vector<DispatchCounts> laneCounts(lanes);
    std::vector<std::thread> threads;
    for (std::size_t k = 1; k < lanes; ++k)
        threads.emplace_back(lane, std::ref(laneCounts[k]));
    lane(laneCounts[0]);
    for (auto& t : threads)
        t.join();
    DispatchCounts total;
    for (const auto& c : laneCounts)
        total += c;
    return total;
}

void OutboundDispatcher::processOne(const std::string& id, TimePoint now, DispatchCounts& counts) {
    std::optional<Envelope> env;
    DispatchState st;
    std::string pausedAccount;
    const bool stays = processMessage(id, now, counts, env, st, pausedAccount);
    const auto stamp = stays ? store_.stateStamp(id) : std::nullopt;
    std::lock_guard lock(parkedMutex_);
    if (stamp)
        parked_[id] = Parked{st.phase, st.nextAttempt, env->arrival, *stamp, pausedAccount};
    else
        parked_.erase(id);
}

// True when the message stays queued (then `env` and `st` are what it waits with).
bool OutboundDispatcher::processMessage(const std::string& id, TimePoint now,
                                        DispatchCounts& counts, std::optional<Envelope>& env,
                                        DispatchState& st, std::string& pausedAccount) {
    env = store_.envelope(id);
    if (!env) {
        ++counts.skipped;  // the store moved it to corrupt/ and logged it
        return false;
    }
    st = store_.state(id);
    if (st.nextAttempt > now) {
        ++counts.skipped;
        return true;
    }

    if (st.phase == DispatchState::Phase::Submit) {
        const bool expired = now >= env->arrival + options_.schedule.maxAge;
        if (expired) {
            giveUp(*env, st, st.lastStatus.empty() ? std::string(kExpiredStatus) : st.lastStatus,
                   "not accepted by the De-Mail provider within " +
                       std::to_string(options_.schedule.maxAge.count() / 3600) + " h" +
                       (st.lastError.empty() ? "" : "; last error: " + st.lastError));
        } else if (paused()) {
            ++counts.skipped;
            return true;
        } else {
            if (handleSubmit(*env, st, now, counts, pausedAccount))
                return false;  // accepted by the provider
            if (st.phase == DispatchState::Phase::Submit)
                return true;
        }
    }

    // Phase Notify: the message failed for good; its sender must hear of it before it goes.
    if (sendReport(*env, st, DsnAction::Failed, now, {})) {
        store_.finish(id);
        ++counts.bounced;
        log().notice("event=bounced queue_id=" + id + " status=" + st.lastStatus);
        return false;
    }
    ++st.attempts;
    RetrySchedule notifySchedule = options_.schedule;
    notifySchedule.maxAge = std::chrono::hours(24 * 365);  // a DSN is retried, never dropped
    st.nextAttempt = planRetry(notifySchedule, st.attempts, env->arrival, now, true, [this] {
                         return uniform01();
                     }).nextAttempt;
    store_.saveState(id, st);
    ++counts.notifyDeferred;
    return true;
}

bool OutboundDispatcher::handleSubmit(const Envelope& env, DispatchState& st, TimePoint now,
                                      DispatchCounts& counts, std::string& pausedAccount) {
    auto body = store_.body(env.queueId);
    if (!body) {
        giveUp(env, st, dsn_status::kLocalError.code, "the queued message body cannot be read");
        return false;
    }
    const auto started = std::chrono::steady_clock::now();
    const SubmitOutcome out = submitter_.submit(env, *body);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    switch (out.kind) {
        case SubmitOutcome::Kind::Accepted:
            store_.finish(env.queueId);
            ++counts.submitted;
            log().information("event=submitted queue_id=" + env.queueId +
                              " attempts=" + std::to_string(st.attempts + 1) +
                              " duration_ms=" + std::to_string(took.count()) +
                              (out.providerIds.empty() ? "" : " provider_ids=" + out.providerIds) +
                              " detail=\"" + out.detail + "\"");
            // RFC 3461 NOTIFY=SUCCESS: the provider is not an SMTP server, so the message was
            // "relayed" out of the DSN world. Best effort: the mail itself is safe.
            if (!env.sender.empty()) {
                DispatchState done = st;
                done.lastStatus = dsn_status::kRelayed.code;
                done.lastError = "handed to the De-Mail provider";
                sendReport(env, done, DsnAction::Relayed, now, out.remoteHost);
            }
            return true;
        case SubmitOutcome::Kind::Permanent:
            giveUp(env, st, out.status.empty() ? dsn_status::kPermanent.code : out.status,
                   out.detail);
            return false;
        case SubmitOutcome::Kind::OperatorAction:
            // Not the message's fault: no attempt is counted, the queue waits for the operator.
            pause(out.detail, !out.providerRefused);
            st.lastError = out.detail;
            store_.saveState(env.queueId, st);
            ++counts.deferred;
            return false;
        case SubmitOutcome::Kind::AccountPaused:
            // Only this message's account is paused (the submitter keeps the pause): no attempt
            // is counted, nothing else stops, and the message is parked without touching its
            // files until the account is resumed or probed. The state is written once, when the
            // reason is new, so that `demailctl queue` shows why it waits.
            pausedAccount = out.account;
            if (st.lastError != out.detail) {
                st.lastError = out.detail;
                store_.saveState(env.queueId, st);
                log().information("event=deferred queue_id=" + env.queueId +
                                  " account=" + out.account + " reason=\"" + out.detail + "\"");
                ++counts.deferred;
            } else {
                ++counts.skipped;  // still waiting for the same reason: not a new deferral
            }
            return false;
        case SubmitOutcome::Kind::Retryable:
            break;
    }
    ++st.attempts;
    st.lastError = out.detail;
    st.lastStatus = out.status.empty() ? dsn_status::kProviderUnreachable.code : out.status;
    const RetryPlan plan = planRetry(options_.schedule, st.attempts, env.arrival, now,
                                     st.delayWarned, [this] { return uniform01(); });
    if (plan.giveUp) {
        giveUp(env, st, st.lastStatus,
               "not accepted by the De-Mail provider in time; last error: " + out.detail);
        return false;
    }
    st.nextAttempt = plan.nextAttempt;
    if (plan.sendDelayWarning) {
        st.delayWarned = true;  // once, whether or not the warning gets through
        if (sendReport(env, st, DsnAction::Delayed, now, out.remoteHost))
            ++counts.delayWarnings;
    }
    store_.saveState(env.queueId, st);
    ++counts.deferred;
    log().information("event=deferred queue_id=" + env.queueId + " attempts=" +
                      std::to_string(st.attempts) + " reason=\"" + out.detail + "\"");
    return false;
}

void OutboundDispatcher::giveUp(const Envelope& env, DispatchState& st, const std::string& status,
                                const std::string& detail) {
    st.phase = DispatchState::Phase::Notify;
    st.attempts = 0;
    st.nextAttempt = TimePoint{};
    st.lastStatus = status;
    st.lastError = detail;
    store_.saveState(env.queueId, st);
    log().notice("event=give_up queue_id=" + env.queueId + " status=" + status + " reason=\"" +
                 detail + "\"");
}

// Sends a DSN of `action` for the recipients that asked for it. True when there is nothing more
// to do: handed to the relay, nobody wanted one, or the relay refused it for good (a double
// bounce, logged: there is no one left to tell).
bool OutboundDispatcher::sendReport(const Envelope& env, const DispatchState& st, DsnAction action,
                                    TimePoint now, const std::string& remoteHost) {
    DsnReport report;
    report.reportingHost = options_.reportingHost;
    report.queueId = env.queueId;
    report.envelopeSender = env.sender;
    report.envid = env.envid;
    report.arrival = env.arrival;
    report.ret = env.ret == "HDRS" ? DsnReturn::Headers : DsnReturn::Full;
    if (action == DsnAction::Delayed)
        report.willRetryUntil = env.arrival + options_.schedule.maxAge;
    for (const auto& r : env.recipients) {
        if (!notifyWants(r.notify, action))
            continue;
        report.recipients.push_back(
            {r.address, r.orcpt, action, st.lastStatus, st.lastError, remoteHost});
    }
    auto body = store_.body(env.queueId);
    std::istringstream unreadable("X-Demail-Note: the original could not be read\r\n");
    const auto dsn = buildDsn(report, body ? *body : unreadable, env.size, now);
    if (!dsn)
        return true;  // null sender or no recipient wanted it
    const DeliveryResult r = notifier_.send(*dsn);
    if (r.delivered())
        return true;
    if (r.outcome == DeliveryOutcome::Permanent) {
        log().error("event=double_bounce queue_id=" + env.queueId + " reason=\"" + r.detail + "\"");
        return true;
    }
    log().warning("event=dsn_deferred queue_id=" + env.queueId + " reason=\"" + r.detail + "\"");
    return action != DsnAction::Failed;  // only failure reports are retried
}

}  // namespace demail::gateway
