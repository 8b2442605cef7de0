// Per-account pauses of sending (ACM_FU §3.6: an account blocked at the provider, or not bound to
// our certificate, still receives, and the other accounts go on). The card and the client
// certificate concern every account and pause the whole dispatcher instead (OutboundDispatcher::
// pause); an account's trouble pauses only that account here, so the card supervisor never sees
// it and never logs in again because of it.
//
// Who writes: the submitter, when the provider refuses an account (403 account_blocked,
// not_authorised) and when a submission for a paused account gets through again; the inbound
// service, from the provider's account listing (blocked / not blocked) at every poll. Who reads:
// the submitter (no request for a paused account until its next probe), the dispatcher (messages
// of a paused account are parked without touching their files), health (/status, /metrics).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace demail::gateway {

class AccountPauses {
  public:
    using Clock = std::chrono::system_clock;
    struct Pause {
        std::string reason;  // one line, for the operator
        Clock::time_point since;
        Clock::time_point probe;  // from then on one submission may try again
    };
    // `probeInterval`: how long a paused account waits before one submission tries again when
    // nothing else tells it is unblocked ([queue] retry_max).
    explicit AccountPauses(std::chrono::seconds probeInterval);

    // Called (outside the lock) whenever an account is paused (reason) or resumed (nullopt).
    void onChange(
        std::function<void(const std::string& account, const std::optional<std::string>& reason)>
            listener);

    // Pauses (or keeps paused with a new reason) `account`; the next probe after probeInterval.
    void pause(const std::string& account, const std::string& reason, Clock::time_point now);
    // True when it was paused.
    bool resume(const std::string& account, const std::string& why);

    // True while `account` is paused and its probe time has not come.
    bool holds(const std::string& account, Clock::time_point now) const;
    // For a submission about to be made: true when it may go to the provider (not paused, or
    // paused and this caller is the one probe of this interval; the next probe is then moved on).
    bool mayTry(const std::string& account, Clock::time_point now);

    bool paused(const std::string& account) const;
    std::optional<std::string> reason(const std::string& account) const;
    std::map<std::string, Pause> all() const;
    std::chrono::seconds probeInterval() const { return interval_; }

  private:
    void notify(const std::string& account, const std::optional<std::string>& reason);

    const std::chrono::seconds interval_;
    mutable std::mutex mutex_;
    std::map<std::string, Pause> paused_;  // lower-case account address
    std::function<void(const std::string&, const std::optional<std::string>&)> listener_;
};

}  // namespace demail::gateway
