#include "demail/gateway/inbound.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace demail::gateway;

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
    std::optional<std::string> fetch(const InboxItem& item, std::string&) override {
        ++fetches;
        return messages.at(item.id);
    }
    bool acknowledge(const InboxItem& item, std::string& error) override {
        if (ackFails) {
            error = "503";
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
    int fetches = 0;
};

class FixedRouter : public InboundRouter {
  public:
    InboundRoute route(const InboxItem&, const std::string&) override {
        return {"absender@behoerde.de-mail.de", {"poststelle@firma.de"}, "message"};
    }
};

class FakeRelay : public InboundDelivery {
  public:
    DeliveryResult deliver(const InboundRoute& route, const std::string& message) override {
        DeliveryResult r;
        const bool refuse = refused.count(route.recipients.front()) > 0;
        r.outcome = refuse ? DeliveryOutcome::Permanent : next;
        if (r.outcome == DeliveryOutcome::Delivered)
            delivered.push_back(route.recipients.front() + ":" + message);
        r.detail = "relay said " + std::to_string(static_cast<int>(r.outcome));
        return r;
    }
    DeliveryOutcome next = DeliveryOutcome::Delivered;
    std::set<std::string> refused;
    std::vector<std::string> delivered;
};

class MemoryLedger : public DeliveredLedger {
  public:
    bool contains(const std::string& id) override { return ids.count(id) > 0; }
    void add(const std::string& id) override { ids.insert(id); }
    std::set<std::string> ids;
};

class Inbound : public ::testing::Test {
  protected:
    FakeInbox inbox;
    FixedRouter router;
    FakeRelay relay;
    MemoryLedger ledger;
    InboundPoller poller{inbox, router, relay, ledger, "postmaster@firma.de"};
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
