#include "demail/gateway/inbound.h"
#include "demail/gateway/state_files.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

using namespace demail::gateway;
namespace fs = std::filesystem;

namespace {

class FakeInbox : public InboxSource {
  public:
    std::optional<std::vector<InboxItem>> list(std::string& error) override {
        if (down) {
            error = "connection refused";
            return std::nullopt;
        }
        std::vector<InboxItem> out;
        for (const auto& [id, m] : messages)
            out.push_back({id, "poststelle@firma.de-mail.de"});
        return out;
    }
    std::optional<std::string> fetch(const InboxItem& item, std::string& error,
                                     SourceFailure& failure) override {
        ++fetches;
        if (fetchFailsPermanently) {
            error = "provider reply larger than 67108864 bytes refused";
            failure = SourceFailure::Permanent;
            return std::nullopt;
        }
        if (leasedElsewhere.count(item.id)) {
            error = "provider answered 409 leased: message " + item.id + " is leased to peer";
            failure = SourceFailure::HeldElsewhere;
            return std::nullopt;
        }
        return messages.at(item.id);
    }
    bool acknowledge(const InboxItem& item, std::string& error, SourceFailure& failure) override {
        if (ackFails) {
            error = "503";
            return false;
        }
        if (ackLeasedElsewhere) {
            error = "provider answered 409 leased";
            failure = SourceFailure::HeldElsewhere;
            return false;
        }
        messages.erase(item.id);
        acked.push_back(item.id);
        return true;
    }
    std::map<std::string, std::string> messages;
    std::vector<std::string> acked;
    bool down = false;
    bool ackFails = false;
    bool fetchFailsPermanently = false;
    bool ackLeasedElsewhere = false;
    std::set<std::string> leasedElsewhere;  // fetch answers 409 leased for these
    int fetches = 0;
};

class FixedRouter : public InboundRouter {
  public:
    InboundRoute route(const InboxItem&, const std::string& message) override {
        if (message == "throw")
            throw std::runtime_error("hostile item");
        InboundRoute r{
            "absender@behoerde.de-mail.de", {"poststelle@firma.de"}, "message", {}, {}, {}};
        if (message == "park")
            r.park = "confirmation XML refused: nested deeper than 32 levels";
        return r;
    }
};

class MemoryQuarantine : public InboundQuarantine {
  public:
    bool park(const InboxItem& item, const std::string* raw, const std::string& reason,
              std::string& error) override {
        if (full) {
            error = "No space left on device";
            return false;
        }
        parked.push_back(item.id + ":" + (raw ? *raw : "-") + ":" + reason);
        return true;
    }
    std::size_t size() override { return parked.size(); }
    std::vector<std::string> parked;
    bool full = false;
};

class FakeRelay : public InboundDelivery {
  public:
    DeliveryResult deliver(const InboundRoute& route, const std::string& message) override {
        DeliveryResult r;
        const bool refuse = refused.count(route.recipients.front()) > 0;
        r.outcome = refuse ? DeliveryOutcome::Permanent : next;
        // The poller stamps the retrieval time first; kept apart, so that the rest reads as sent.
        std::string body = message;
        const std::string stamp = "X-Demail-Gateway-Retrieved: ";
        if (body.rfind(stamp, 0) == 0) {
            stamps.push_back(body.substr(0, body.find("\r\n")));
            body.erase(0, body.find("\r\n") + 2);
        }
        if (r.outcome == DeliveryOutcome::Delivered)
            delivered.push_back(route.recipients.front() + ":" + body);
        r.detail = "relay said " + std::to_string(static_cast<int>(r.outcome));
        return r;
    }
    DeliveryOutcome next = DeliveryOutcome::Delivered;
    std::set<std::string> refused;
    std::vector<std::string> delivered;
    std::vector<std::string> stamps;  // the X-Demail-Gateway-Retrieved line of each attempt
};

class MemoryLedger : public DeliveredLedger {
  public:
    bool contains(const std::string& id) override { return ids.count(id) > 0; }
    void add(const std::string& id) override {
        if (full)
            throw std::runtime_error("No space left on device");
        ids.insert(id);
    }
    std::set<std::string> ids;
    bool full = false;
};

class Inbound : public ::testing::Test {
  protected:
    Inbound() { fs::create_directories(dir); }
    ~Inbound() override { fs::remove_all(dir); }
    const fs::path dir = fs::temp_directory_path() /
                         ("inbound-test-" + std::to_string(::getpid()) + "-" +
                          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    FakeInbox inbox;
    FixedRouter router;
    FakeRelay relay;
    MemoryLedger ledger;
    MemoryQuarantine quarantine;
    FileAttempts attempts{(dir / "attempts").string()};
    InboundPoller poller{inbox,      router,   relay, ledger, "postmaster@firma.de",
                         quarantine, attempts, 3};
};

}  // namespace

TEST_F(Inbound, DeliversThenAcknowledges) {
    inbox.messages = {{"m1", "one"}, {"m2", "two"}};
    const auto c = poller.pollOnce();
    EXPECT_EQ(c.delivered, 2);
    EXPECT_EQ(c.acknowledged, 2);
    EXPECT_EQ(relay.delivered,
              (std::vector<std::string>{"poststelle@firma.de:one", "poststelle@firma.de:two"}));
    EXPECT_TRUE(inbox.messages.empty());
    // Each carries the moment of its retrieval (no archive here: the time alone) and its account.
    ASSERT_EQ(relay.stamps.size(), 2u);
    EXPECT_NE(relay.stamps[0].find("Z; account=poststelle@firma.de-mail.de"), std::string::npos)
        << relay.stamps[0];
}

TEST_F(Inbound, InternalServerDownMeansNoAcknowledgement) {
    inbox.messages = {{"m1", "one"}};
    relay.next = DeliveryOutcome::Temporary;
    const auto c = poller.pollOnce();
    EXPECT_EQ(c.deferred, 1);
    EXPECT_TRUE(inbox.acked.empty());
    relay.next = DeliveryOutcome::Delivered;
    EXPECT_EQ(poller.pollOnce().delivered, 1);
    EXPECT_EQ(inbox.acked, std::vector<std::string>{"m1"});
}

TEST_F(Inbound, OfferedAgainAfterAFailedAcknowledgementIsNotDeliveredTwice) {
    inbox.messages = {{"m1", "one"}};
    inbox.ackFails = true;
    EXPECT_EQ(poller.pollOnce().delivered, 1);
    inbox.ackFails = false;
    const auto c = poller.pollOnce();
    EXPECT_EQ(c.duplicates, 1);
    EXPECT_EQ(c.acknowledged, 1);
    EXPECT_EQ(relay.delivered.size(), 1u);
    EXPECT_EQ(inbox.fetches, 1) << "a known item is not even fetched again";
}

TEST_F(Inbound, AnItemLeasedToAPeerGatewayIsSkippedQuietlyAndNeverParked) {
    inbox.messages = {{"m1", "one"}, {"m2", "two"}};
    inbox.leasedElsewhere = {"m1"};
    for (int pass = 1; pass <= 5; ++pass) {  // more passes than the 3 attempts before parking
        const auto c = poller.pollOnce();
        EXPECT_EQ(c.leasedElsewhere, 1);
        EXPECT_EQ(c.deferred, 0) << "not an error: the health stays green";
        EXPECT_TRUE(c.lastError.empty()) << c.lastError;
        EXPECT_EQ(c.parked, 0);
    }
    EXPECT_EQ(relay.delivered, std::vector<std::string>{"poststelle@firma.de:two"});
    EXPECT_EQ(inbox.acked, std::vector<std::string>{"m2"});
    EXPECT_TRUE(quarantine.parked.empty());
    inbox.leasedElsewhere.clear();  // the peer's lease ran out unacknowledged: ours now
    EXPECT_EQ(poller.pollOnce().delivered, 1);
    EXPECT_EQ(inbox.acked, (std::vector<std::string>{"m2", "m1"}));
}

TEST_F(Inbound, AnAcknowledgementRefusedBecauseAPeerTookTheLeaseIsCountedNotRetried) {
    inbox.messages = {{"m1", "one"}};
    inbox.ackLeasedElsewhere = true;
    const auto c = poller.pollOnce();
    EXPECT_EQ(c.delivered, 1);
    EXPECT_EQ(c.lostLease, 1);
    EXPECT_EQ(c.acknowledged, 0);
    EXPECT_TRUE(c.lastError.empty()) << c.lastError;
    EXPECT_EQ(c.deferred, 0);
}

TEST_F(Inbound, RefusedForGoodGoesToThePostmaster) {
    inbox.messages = {{"m1", "one"}};
    relay.refused = {"poststelle@firma.de"};
    const auto c = poller.pollOnce();
    EXPECT_EQ(c.misrouted, 1);
    EXPECT_EQ(relay.delivered, std::vector<std::string>{"postmaster@firma.de:one"});
    EXPECT_EQ(inbox.acked, std::vector<std::string>{"m1"});
}

TEST_F(Inbound, ProviderDownIsReportedAndNothingChanges) {
    inbox.messages = {{"m1", "one"}};
    inbox.down = true;
    const auto c = poller.pollOnce();
    EXPECT_NE(c.lastError.find("connection refused"), std::string::npos);
    EXPECT_TRUE(relay.delivered.empty());
}

TEST_F(Inbound, AnExceptionForOneItemNeitherEndsThePassNorLoopsForever) {
    inbox.messages = {{"a-bad", "throw"}, {"b-good", "two"}};
    for (int pass = 1; pass <= 2; ++pass) {
        const auto c = poller.pollOnce();
        EXPECT_EQ(c.delivered, pass == 1 ? 1 : 0) << "the good item is not held up";
        EXPECT_EQ(c.parked, 0);
    }
    const auto c = poller.pollOnce();  // third failure: parked, then acknowledged
    EXPECT_EQ(c.parked, 1);
    EXPECT_EQ(c.quarantined, 1u);
    ASSERT_EQ(quarantine.parked.size(), 1u);
    EXPECT_EQ(quarantine.parked[0].rfind("a-bad:-:hostile item (3 failed attempts)", 0), 0u)
        << quarantine.parked[0];
    EXPECT_TRUE(inbox.messages.empty());
    EXPECT_EQ(poller.pollOnce().parked, 0);
}

TEST_F(Inbound, AnItemThatCannotBeMadeSafeIsParkedAtOnce) {
    inbox.messages = {{"c1", "park"}};
    const auto c = poller.pollOnce();
    EXPECT_EQ(c.parked, 1);
    EXPECT_TRUE(relay.delivered.empty());
    EXPECT_EQ(inbox.acked, std::vector<std::string>{"c1"});
    EXPECT_NE(quarantine.parked[0].find("deeper than 32"), std::string::npos);
}

TEST_F(Inbound, TheRouterDeliversOnlySmtpSafeText) {
    inbox.messages = {{"m1", "Subject: x\n\nbody\n.\nMAIL FROM:<chef@firma.de>\n"}};
    const auto c = poller.pollOnce();  // FixedRouter did not prepare it: the poller fails closed
    EXPECT_EQ(c.parked, 1);
    EXPECT_TRUE(relay.delivered.empty());
}

TEST_F(Inbound, ACrashWhileHandlingAnItemCountsAgainstItAtTheNextStart) {
    inbox.messages = {{"boom", "one"}};
    {
        FileAttempts before((dir / "attempts").string());
        before.begin("boom");  // ... and the process dies here
    }
    for (int start = 1; start <= 2; ++start) {
        FileAttempts after((dir / "attempts").string());
        EXPECT_EQ(after.crashedItem(), "boom");
        after.begin("boom");
    }
    FileAttempts third((dir / "attempts").string());
    EXPECT_EQ(third.fail("boom"), 4) << "three crashes, then one more failure";
    third.clear("boom");
    EXPECT_EQ(FileAttempts((dir / "attempts").string()).crashedItem(), "");
}

TEST_F(Inbound, RefusedByRelayAndPostmasterIsParkedAfterBoundedAttempts) {
    inbox.messages = {{"m1", "one"}};
    relay.refused = {"poststelle@firma.de", "postmaster@firma.de"};
    EXPECT_EQ(poller.pollOnce().parked, 0);
    EXPECT_EQ(poller.pollOnce().parked, 0);
    EXPECT_EQ(poller.pollOnce().parked, 1);
    EXPECT_EQ(inbox.acked, std::vector<std::string>{"m1"});
}

TEST_F(Inbound, ARelayThatIsDownNeverCountsTowardsParking) {
    inbox.messages = {{"m1", "one"}};
    relay.next = DeliveryOutcome::Temporary;
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(poller.pollOnce().parked, 0);
    EXPECT_TRUE(inbox.acked.empty());
}

TEST_F(Inbound, APermanentFetchErrorIsParkedAfterBoundedAttempts) {
    inbox.messages = {{"big", "x"}};
    inbox.fetchFailsPermanently = true;
    EXPECT_EQ(poller.pollOnce().parked, 0);
    EXPECT_EQ(poller.pollOnce().parked, 0);
    EXPECT_EQ(poller.pollOnce().parked, 1);
    EXPECT_NE(quarantine.parked[0].find("big:-:fetching failed"), std::string::npos);
}

TEST_F(Inbound, ALedgerWriteFailureDefersWithoutADuplicateDelivery) {
    inbox.messages = {{"m1", "one"}};
    ledger.full = true;
    auto c = poller.pollOnce();
    EXPECT_EQ(c.delivered, 1);
    EXPECT_EQ(c.deferred, 1);
    EXPECT_TRUE(inbox.acked.empty()) << "not recorded, so not acknowledged";
    c = poller.pollOnce();  // disk still full
    EXPECT_EQ(c.deferred, 1);
    ledger.full = false;
    c = poller.pollOnce();
    EXPECT_EQ(c.acknowledged, 1);
    EXPECT_EQ(relay.delivered.size(), 1u) << "delivered once";
    EXPECT_TRUE(ledger.contains("m1"));
}

TEST_F(Inbound, AFullQuarantineLeavesTheItemAtTheProvider) {
    inbox.messages = {{"c1", "park"}};
    quarantine.full = true;
    EXPECT_EQ(poller.pollOnce().parked, 0);
    EXPECT_TRUE(inbox.acked.empty());
    quarantine.full = false;
    EXPECT_EQ(poller.pollOnce().parked, 1);
}
