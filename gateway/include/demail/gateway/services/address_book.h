// The recipient check at RCPT time: is this address a De-Mail address that can receive? The
// provider's directory is asked (ProviderTransport::lookupAddress, GET /v1/addresses/{address})
// and the answer is cached: a known address for `positiveTtl`, an unknown or closed one for
// `negativeTtl`, at most `maxEntries` addresses (the least recently used go first).
//
// The SMTP session thread never talks to the provider itself: a small set of worker threads asks,
// and the session waits at most `timeout` for the answer (then "unavailable": 451, and the answer
// that comes later fills the cache for the client's retry). No lock is held while the provider is
// asked; the same address asked by many sessions at once is asked once. When the provider cannot
// be asked (unreachable, card away, timeout, busy), an address the provider confirmed within the
// last `staleLimit` is still taken as known: the provider checks again at submission anyway, and
// an outage must not turn away mail for a correspondent it just confirmed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "demail/connector/transport/provider_transport.h"
#include "demail/smtp/policy.h"

namespace demail::gateway {

class AddressBook {
  public:
    using Clock = std::chrono::steady_clock;
    using Lookup = std::function<connector::Result<connector::AddressInfo>(const std::string&)>;

    struct Settings {
        std::chrono::milliseconds timeout{5000};
        std::chrono::seconds positiveTtl{3600};
        std::chrono::seconds negativeTtl{300};
        std::size_t maxEntries = 10000;
        std::chrono::seconds staleLimit{24 * 3600};
        // True: an address that cannot be checked now is accepted (and the provider decides at
        // submission, a bounce if it refuses); false: 451, the client tries again.
        bool acceptWhenUnavailable = false;
        std::size_t workers = 2;
        std::size_t maxPending = 64;  // addresses waiting for a worker; more: "unavailable"
    };

    enum class Verdict { Known, Unknown, Unavailable };
    struct Answer {
        Verdict verdict = Verdict::Unavailable;
        connector::AddressInfo info;  // Known/Unknown: what the provider said
        std::string why;              // Unavailable (or a stale/unchecked Known): the reason
        bool cached = false;          // answered from the cache, no question to the provider
        bool stale = false;           // Known from an expired entry because asking failed
        bool unchecked = false;       // Known only because acceptWhenUnavailable
    };

    struct Counters {
        std::uint64_t lookups = 0, hits = 0, failures = 0, timeouts = 0, stale = 0;
    };

    AddressBook(Settings settings, Lookup lookup, std::function<Clock::time_point()> now = {});
    ~AddressBook();  // stop()
    AddressBook(const AddressBook&) = delete;
    AddressBook& operator=(const AddressBook&) = delete;

    // Blocks for at most settings.timeout (no wait when cached).
    Answer check(const std::string& address);
    // Waits for the lookups in flight (each bounded by the transport's timeouts) and ends the
    // workers; check() then answers Unavailable.
    void stop();
    // Forget every cached answer (a reload that changed the provider, say).
    void clear();

    Counters counters() const;
    std::size_t size() const;

  private:
    struct Entry {
        connector::AddressInfo info;
        Clock::time_point expires;
        Clock::time_point confirmed;  // when the provider last said "exists" (positive only)
        std::list<std::string>::iterator lru;
    };
    struct Pending {
        bool done = false;
        bool ok = false;
        connector::AddressInfo info;
        std::string error;
    };

    void work();
    void store(const std::string& key, const connector::AddressInfo& info);  // mutex_ held
    void touch(Entry& e);                                                    // mutex_ held
    Answer unavailable(const std::string& key, std::string why);             // mutex_ held

    const Settings settings_;
    const Lookup lookup_;
    const std::function<Clock::time_point()> now_;
    mutable std::mutex mutex_;
    std::condition_variable work_, answered_;
    std::unordered_map<std::string, Entry> cache_;
    std::list<std::string> lru_;  // front: most recently used
    std::unordered_map<std::string, std::shared_ptr<Pending>> inFlight_;
    std::deque<std::string> queue_;
    std::vector<std::thread> workers_;
    bool stopping_ = false;
    Counters counters_;
};

// The SMTP answer for an RCPT, with a text a user understands: 250, 550 5.1.1 for an unknown or
// closed address, 451 4.4.3 when the provider cannot be asked now.
smtp::Decision recipientDecision(const AddressBook::Answer& answer, const std::string& recipient);

}  // namespace demail::gateway
