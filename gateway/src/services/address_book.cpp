#include "demail/gateway/services/address_book.h"

#include <Poco/Logger.h>

#include <cctype>

#include "demail/smtp/server.h"

namespace demail::gateway {
namespace {

Poco::Logger& log() {
    return Poco::Logger::get("addresses");
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

AddressBook::AddressBook(Settings settings, Lookup lookup, std::function<Clock::time_point()> now)
    : settings_(settings),
      lookup_(std::move(lookup)),
      now_(now ? std::move(now) : [] { return Clock::now(); }) {
    for (std::size_t i = 0; i < std::max<std::size_t>(settings_.workers, 1); ++i)
        workers_.emplace_back([this] { work(); });
}

AddressBook::~AddressBook() {
    stop();
}

void AddressBook::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && workers_.empty())
            return;
        stopping_ = true;
    }
    work_.notify_all();
    answered_.notify_all();
    for (auto& t : workers_)
        if (t.joinable())
            t.join();
    std::lock_guard lock(mutex_);
    workers_.clear();
}

void AddressBook::clear() {
    std::lock_guard lock(mutex_);
    cache_.clear();
    lru_.clear();
}

AddressBook::Counters AddressBook::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

std::size_t AddressBook::size() const {
    std::lock_guard lock(mutex_);
    return cache_.size();
}

void AddressBook::touch(Entry& e) {
    lru_.splice(lru_.begin(), lru_, e.lru);
}

void AddressBook::store(const std::string& key, const connector::AddressInfo& info) {
    const auto now = now_();
    auto it = cache_.find(key);
    if (it == cache_.end()) {
        lru_.push_front(key);
        it = cache_.emplace(key, Entry{{}, {}, {}, lru_.begin()}).first;
    } else {
        touch(it->second);
    }
    Entry& e = it->second;
    e.info = info;
    e.info.address = key;
    if (info.exists) {
        e.expires = now + settings_.positiveTtl;
        e.confirmed = now;
    } else {
        e.expires = now + settings_.negativeTtl;
        e.confirmed = {};  // a closed address is never "recently confirmed" again
    }
    while (cache_.size() > std::max<std::size_t>(settings_.maxEntries, 1)) {
        cache_.erase(lru_.back());
        lru_.pop_back();
    }
}

AddressBook::Answer AddressBook::unavailable(const std::string& key, std::string why) {
    Answer a;
    a.why = std::move(why);
    a.info.address = key;
    if (auto it = cache_.find(key); it != cache_.end() && it->second.info.exists &&
                                    now_() - it->second.confirmed <= settings_.staleLimit) {
        ++counters_.stale;
        a.verdict = Verdict::Known;
        a.info = it->second.info;
        a.stale = true;
        return a;
    }
    if (settings_.acceptWhenUnavailable) {
        a.verdict = Verdict::Known;
        a.unchecked = true;
        return a;
    }
    a.verdict = Verdict::Unavailable;
    return a;
}

AddressBook::Answer AddressBook::check(const std::string& address) {
    const std::string key = lower(address);
    std::unique_lock lock(mutex_);
    if (stopping_)
        return unavailable(key, "the gateway is stopping");
    if (auto it = cache_.find(key); it != cache_.end() && now_() < it->second.expires) {
        touch(it->second);
        ++counters_.hits;
        Answer a;
        a.verdict = it->second.info.exists ? Verdict::Known : Verdict::Unknown;
        a.info = it->second.info;
        a.cached = true;
        return a;
    }
    std::shared_ptr<Pending> pending;
    if (auto f = inFlight_.find(key); f != inFlight_.end()) {
        pending = f->second;  // another session asks already: wait for the same answer
    } else {
        if (queue_.size() >= settings_.maxPending)
            return unavailable(key, "too many address look-ups waiting for the provider");
        pending = std::make_shared<Pending>();
        inFlight_.emplace(key, pending);
        queue_.push_back(key);
        work_.notify_one();
    }
    // Waits on the real clock (the injected one is for the cache's ages only). The lock is
    // released while waiting; the worker asks the provider without it.
    const bool answered =
        answered_.wait_for(lock, settings_.timeout, [&] { return pending->done || stopping_; });
    if (!answered) {
        ++counters_.timeouts;
        return unavailable(key, "no answer from the De-Mail provider within " +
                                    std::to_string(settings_.timeout.count()) + " ms");
    }
    if (!pending->done)
        return unavailable(key, "the gateway is stopping");
    if (!pending->ok)
        return unavailable(key, pending->error);
    Answer a;
    a.verdict = pending->info.exists ? Verdict::Known : Verdict::Unknown;
    a.info = pending->info;
    return a;
}

void AddressBook::work() {
    std::string lastFailure;  // said once until it changes or a look-up works again
    std::unique_lock lock(mutex_);
    for (;;) {
        work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_)
            return;
        const std::string key = queue_.front();
        queue_.pop_front();
        lock.unlock();
        connector::Result<connector::AddressInfo> r = connector::TransportError{};
        try {
            r = lookup_(key);
        } catch (const std::exception& e) {  // a bug in a lookup must not end the thread
            r = connector::TransportError{connector::ErrorKind::Retryable, "exception", e.what(),
                                          0};
        }
        if (r.ok() && lastFailure.size()) {
            log().notice("event=address_check_recovered");
            lastFailure.clear();
        } else if (!r.ok() && r.error().code + r.error().reason != lastFailure) {
            lastFailure = r.error().code + r.error().reason;
            log().warning("event=address_check_failed code=" + smtp::auditValue(r.error().code) +
                          " reason=" + smtp::auditValue(r.error().reason) +
                          (r.error().code == "lookup_not_offered"
                               ? " action=\"set [provider] address_check = no\""
                               : ""));
        }
        lock.lock();
        ++counters_.lookups;
        auto pending = inFlight_[key];
        inFlight_.erase(key);
        if (r.ok()) {
            store(key, r.value());
            pending->ok = true;
            pending->info = r.value();
            pending->info.address = key;
        } else {
            ++counters_.failures;
            pending->error = r.error().reason;
        }
        pending->done = true;
        answered_.notify_all();
    }
}

smtp::Decision recipientDecision(const AddressBook::Answer& answer, const std::string& recipient) {
    switch (answer.verdict) {
        case AddressBook::Verdict::Known:
            return smtp::Decision::accept();
        case AddressBook::Verdict::Unknown:
            return smtp::Decision::refuse(
                smtp::Reply::UnknownRecipient,
                "<" + recipient + ">: " +
                    (answer.info.reason == "closed"
                         ? "this De-Mail address has been closed; it cannot receive De-Mail"
                         : "the De-Mail provider knows no De-Mail address of this name; please "
                           "check the address"));
        case AddressBook::Verdict::Unavailable:
            break;
    }
    return smtp::Decision::refuse(
        smtp::Reply::RecipientCheckFailed,
        "<" + recipient +
            ">: the De-Mail provider cannot be asked right now whether this address exists; "
            "try again later");
}

}  // namespace demail::gateway
