#include "demail/gateway/account_pauses.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <cctype>

namespace demail::gateway {
namespace {

Poco::Logger& log() {
    return Poco::Logger::get("outbound");
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

AccountPauses::AccountPauses(std::chrono::seconds probeInterval)
    : interval_(std::max(probeInterval, std::chrono::seconds(1))) {}

void AccountPauses::onChange(
    std::function<void(const std::string&, const std::optional<std::string>&)> listener) {
    std::lock_guard lock(mutex_);
    listener_ = std::move(listener);
}

void AccountPauses::notify(const std::string& account, const std::optional<std::string>& reason) {
    std::function<void(const std::string&, const std::optional<std::string>&)> l;
    {
        std::lock_guard lock(mutex_);
        l = listener_;
    }
    if (l)
        l(account, reason);
}

void AccountPauses::pause(const std::string& account, const std::string& reason,
                          Clock::time_point now) {
    const std::string key = lower(account);
    bool fresh = false, changed = false;
    {
        std::lock_guard lock(mutex_);
        auto it = paused_.find(key);
        fresh = it == paused_.end();
        if (fresh)
            it = paused_.emplace(key, Pause{reason, now, now}).first;
        changed = fresh || it->second.reason != reason;
        it->second.reason = reason;
        it->second.probe = now + interval_;
    }
    if (fresh)
        log().warning("event=account_paused account=" + key + " reason=\"" + reason +
                      "\" probe_in_s=" + std::to_string(interval_.count()));
    if (changed)
        notify(key, reason);
}

bool AccountPauses::resume(const std::string& account, const std::string& why) {
    const std::string key = lower(account);
    {
        std::lock_guard lock(mutex_);
        if (paused_.erase(key) == 0)
            return false;
    }
    log().notice("event=account_resumed account=" + key + " reason=\"" + why + "\"");
    notify(key, std::nullopt);
    return true;
}

bool AccountPauses::holds(const std::string& account, Clock::time_point now) const {
    std::lock_guard lock(mutex_);
    const auto it = paused_.find(lower(account));
    return it != paused_.end() && now < it->second.probe;
}

bool AccountPauses::mayTry(const std::string& account, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    const auto it = paused_.find(lower(account));
    if (it == paused_.end())
        return true;
    if (now < it->second.probe)
        return false;
    it->second.probe = now + interval_;  // one probe per interval, whatever the lanes do
    return true;
}

bool AccountPauses::paused(const std::string& account) const {
    std::lock_guard lock(mutex_);
    return paused_.count(lower(account)) != 0;
}

std::optional<std::string> AccountPauses::reason(const std::string& account) const {
    std::lock_guard lock(mutex_);
    const auto it = paused_.find(lower(account));
    if (it == paused_.end())
        return std::nullopt;
    return it->second.reason;
}

std::map<std::string, AccountPauses::Pause> AccountPauses::all() const {
    std::lock_guard lock(mutex_);
    return paused_;
}

}  // namespace demail::gateway
