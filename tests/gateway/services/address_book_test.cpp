// AddressBook: the RCPT-time look-up of a recipient at the provider, with its cache. A fake
// look-up stands for the provider; a fake clock ages the cache. Nothing here asserts a duration:
// a look-up that must not finish in time is held until the test releases it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <thread>

#include "demail/gateway/services/address_book.h"
#include "demail/smtp/reply.h"

using namespace demail;
using namespace demail::gateway;
using namespace std::chrono_literals;

namespace {

struct FakeDirectory {
    std::mutex mutex;
    std::map<std::string, connector::AddressInfo> known;  // address -> entry (exists or closed)
    std::optional<connector::TransportError> failure;
    std::map<std::string, int> asked;
    std::shared_future<void> gate;  // when valid, every look-up waits for it

    connector::Result<connector::AddressInfo> lookup(const std::string& address) {
        std::shared_future<void> wait;
        {
            std::lock_guard lock(mutex);
            ++asked[address];
            wait = gate;
        }
        if (wait.valid())
            wait.wait();
        std::lock_guard lock(mutex);
        if (failure)
            return *failure;
        if (auto it = known.find(address); it != known.end())
            return it->second;
        connector::AddressInfo none;
        none.address = address;
        none.reason = "unknown";
        return none;
    }
    int askedFor(const std::string& a) {
        std::lock_guard lock(mutex);
        return asked[a];
    }
};

connector::AddressInfo entry(const std::string& address, bool exists, const char* reason = "") {
    connector::AddressInfo i;
    i.address = address;
    i.exists = exists;
    i.reason = reason;
    i.authLevel = "high";
    i.accessOpening = exists;
    return i;
}

struct Fixture : ::testing::Test {
    FakeDirectory dir;
    AddressBook::Clock::time_point now = AddressBook::Clock::now();
    std::unique_ptr<AddressBook> book;
    void make(AddressBook::Settings s = {}) {
        book = std::make_unique<AddressBook>(
            s, [this](const std::string& a) { return dir.lookup(a); }, [this] { return now; });
    }
    void SetUp() override {
        dir.known["amt@behoerde.de-mail.de"] = entry("amt@behoerde.de-mail.de", true);
        dir.known["weg@behoerde.de-mail.de"] = entry("weg@behoerde.de-mail.de", false, "closed");
    }
    // Waits (generously, no timing asserted) until the book has finished `n` look-ups.
    void waitForLookups(std::uint64_t n) {
        for (int i = 0; i < 3000 && book->counters().lookups < n; ++i)
            std::this_thread::sleep_for(10ms);
        ASSERT_GE(book->counters().lookups, n);
    }
};

TEST_F(Fixture, KnownAddressIsAskedOnceThenCached) {
    make();
    auto a = book->check("Amt@Behoerde.de-mail.de");
    EXPECT_EQ(a.verdict, AddressBook::Verdict::Known);
    EXPECT_FALSE(a.cached);
    EXPECT_EQ(a.info.authLevel, "high");
    EXPECT_TRUE(a.info.accessOpening);
    auto b = book->check("amt@behoerde.de-mail.de");  // same address, other case
    EXPECT_EQ(b.verdict, AddressBook::Verdict::Known);
    EXPECT_TRUE(b.cached);
    EXPECT_EQ(dir.askedFor("amt@behoerde.de-mail.de"), 1);
    EXPECT_TRUE(recipientDecision(a, "amt@behoerde.de-mail.de").accepted);
}

TEST_F(Fixture, UnknownAndClosedAreRefusedWith511) {
    make();
    auto u = book->check("niemand@behoerde.de-mail.de");
    EXPECT_EQ(u.verdict, AddressBook::Verdict::Unknown);
    auto d = recipientDecision(u, "niemand@behoerde.de-mail.de");
    EXPECT_FALSE(d.accepted);
    EXPECT_EQ(smtp::formatReply(d.reply, d.detail).substr(0, 10), "550 5.1.1 ");
    EXPECT_NE(d.detail.find("knows no De-Mail address"), std::string::npos) << d.detail;

    auto c = book->check("weg@behoerde.de-mail.de");
    EXPECT_EQ(c.verdict, AddressBook::Verdict::Unknown);
    auto dc = recipientDecision(c, "weg@behoerde.de-mail.de");
    EXPECT_EQ(smtp::formatReply(dc.reply, dc.detail).substr(0, 10), "550 5.1.1 ");
    EXPECT_NE(dc.detail.find("closed"), std::string::npos) << dc.detail;
    // The negative answer is cached too.
    EXPECT_TRUE(book->check("niemand@behoerde.de-mail.de").cached);
    EXPECT_EQ(dir.askedFor("niemand@behoerde.de-mail.de"), 1);
}

TEST_F(Fixture, PositiveAndNegativeTtls) {
    AddressBook::Settings s;
    s.positiveTtl = 3600s;
    s.negativeTtl = 60s;
    make(s);
    book->check("amt@behoerde.de-mail.de");
    book->check("neu@behoerde.de-mail.de");
    now += 61s;  // the negative answer is old, the positive not
    EXPECT_TRUE(book->check("amt@behoerde.de-mail.de").cached);
    // Meanwhile the address was opened: asked again, now known.
    dir.known["neu@behoerde.de-mail.de"] = entry("neu@behoerde.de-mail.de", true);
    auto n = book->check("neu@behoerde.de-mail.de");
    EXPECT_FALSE(n.cached);
    EXPECT_EQ(n.verdict, AddressBook::Verdict::Known);
    now += 3600s;
    // ... and then closed: the positive answer expires and the closure is seen.
    dir.known["amt@behoerde.de-mail.de"] = entry("amt@behoerde.de-mail.de", false, "closed");
    EXPECT_EQ(book->check("amt@behoerde.de-mail.de").verdict, AddressBook::Verdict::Unknown);
    EXPECT_EQ(dir.askedFor("amt@behoerde.de-mail.de"), 2);
}

TEST_F(Fixture, SizeIsBoundedLeastRecentlyUsedGoesFirst) {
    AddressBook::Settings s;
    s.maxEntries = 3;
    make(s);
    for (const char* a : {"a@x.de-mail.de", "b@x.de-mail.de", "c@x.de-mail.de"})
        book->check(a);
    book->check("a@x.de-mail.de");  // used again: b is now the oldest
    book->check("d@x.de-mail.de");
    book->check("e@x.de-mail.de");
    EXPECT_EQ(book->size(), 3u);
    EXPECT_TRUE(book->check("e@x.de-mail.de").cached);
    EXPECT_FALSE(book->check("b@x.de-mail.de").cached);  // evicted first
    EXPECT_LE(book->size(), 3u);
}

TEST_F(Fixture, ProviderErrorIsUnavailableAndNotCached) {
    make();
    dir.failure = connector::TransportError{connector::ErrorKind::Retryable, "connect_refused",
                                            "connection refused", 0};
    auto a = book->check("amt@behoerde.de-mail.de");
    EXPECT_EQ(a.verdict, AddressBook::Verdict::Unavailable);
    EXPECT_EQ(a.why, "connection refused");
    auto d = recipientDecision(a, "amt@behoerde.de-mail.de");
    EXPECT_EQ(smtp::formatReply(d.reply, d.detail).substr(0, 10), "451 4.4.3 ");
    EXPECT_NE(d.detail.find("try again later"), std::string::npos);
    dir.failure.reset();
    EXPECT_EQ(book->check("amt@behoerde.de-mail.de").verdict, AddressBook::Verdict::Known);
    EXPECT_EQ(dir.askedFor("amt@behoerde.de-mail.de"), 2);
}

// During an outage an address the provider confirmed recently is still accepted (the provider
// checks again at submission); one it never confirmed, or too long ago, is not.
TEST_F(Fixture, RecentlyConfirmedAddressSurvivesAnOutage) {
    AddressBook::Settings s;
    s.positiveTtl = 600s;
    s.staleLimit = 3600s;
    make(s);
    book->check("amt@behoerde.de-mail.de");
    book->check("niemand@behoerde.de-mail.de");
    now += 601s;
    dir.failure = connector::TransportError{connector::ErrorKind::OperatorAction,
                                            "client_credentials", "the card key is not loaded", 0};
    auto a = book->check("amt@behoerde.de-mail.de");
    EXPECT_EQ(a.verdict, AddressBook::Verdict::Known);
    EXPECT_TRUE(a.stale);
    EXPECT_EQ(book->check("niemand@behoerde.de-mail.de").verdict,
              AddressBook::Verdict::Unavailable);
    now += 3600s;
    EXPECT_EQ(book->check("amt@behoerde.de-mail.de").verdict, AddressBook::Verdict::Unavailable);
}

TEST_F(Fixture, AcceptWhenUnavailableIsExplicit) {
    AddressBook::Settings s;
    s.acceptWhenUnavailable = true;
    make(s);
    dir.failure = connector::TransportError{connector::ErrorKind::Retryable, "timeout", "t", 0};
    auto a = book->check("wer@behoerde.de-mail.de");
    EXPECT_EQ(a.verdict, AddressBook::Verdict::Known);
    EXPECT_TRUE(a.unchecked);
    dir.failure.reset();
    EXPECT_EQ(book->check("niemand@behoerde.de-mail.de").verdict, AddressBook::Verdict::Unknown);
}

// A provider that does not answer: the session gets 451 after the book's timeout; the answer
// that comes later fills the cache; and meanwhile other sessions are not held up (no lock is
// held while the provider is asked: a cached address is answered while the look-up hangs).
TEST_F(Fixture, HangingProviderTimesOutWithoutBlockingOthers) {
    AddressBook::Settings s;
    s.timeout = 50ms;
    make(s);
    book->check("amt@behoerde.de-mail.de");  // cached before the provider hangs
    std::promise<void> release;
    dir.gate = release.get_future().share();
    auto slow = book->check("neu@behoerde.de-mail.de");
    EXPECT_EQ(slow.verdict, AddressBook::Verdict::Unavailable);
    EXPECT_NE(slow.why.find("no answer"), std::string::npos) << slow.why;
    EXPECT_EQ(book->check("amt@behoerde.de-mail.de").verdict, AddressBook::Verdict::Known);
    // Sessions asking for the same address while the first look-up hangs share it.
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(book->check("neu@behoerde.de-mail.de").verdict,
                  AddressBook::Verdict::Unavailable);
    {
        std::lock_guard lock(dir.mutex);
        dir.known["neu@behoerde.de-mail.de"] = entry("neu@behoerde.de-mail.de", true);
    }
    release.set_value();
    waitForLookups(2);
    auto later = book->check("neu@behoerde.de-mail.de");
    EXPECT_EQ(later.verdict, AddressBook::Verdict::Known);
    EXPECT_TRUE(later.cached);
    EXPECT_EQ(dir.askedFor("neu@behoerde.de-mail.de"), 1);
    EXPECT_GE(book->counters().timeouts, 4u);
}

TEST_F(Fixture, ConcurrentSessionsAskTheProviderOnce) {
    AddressBook::Settings s;
    s.timeout = 60s;  // generous: the look-up is released long before
    make(s);
    std::promise<void> release;
    dir.gate = release.get_future().share();
    std::vector<std::future<AddressBook::Verdict>> sessions;
    for (int i = 0; i < 8; ++i)
        sessions.push_back(std::async(
            std::launch::async, [this] { return book->check("amt@behoerde.de-mail.de").verdict; }));
    for (int i = 0; i < 3000 && dir.askedFor("amt@behoerde.de-mail.de") < 1; ++i)
        std::this_thread::sleep_for(10ms);
    release.set_value();
    for (auto& f : sessions)
        EXPECT_EQ(f.get(), AddressBook::Verdict::Known);
    EXPECT_EQ(dir.askedFor("amt@behoerde.de-mail.de"), 1);
}

TEST_F(Fixture, StoppedBookAnswersUnavailable) {
    make();
    book->stop();
    EXPECT_EQ(book->check("amt@behoerde.de-mail.de").verdict, AddressBook::Verdict::Unavailable);
}

}  // namespace
