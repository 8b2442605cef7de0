// ProviderInbox over a transport that refuses one account's inbox: the others are still listed
// (issue 20: one account's trouble stays that account's).
#include <gtest/gtest.h>

#include "demail/gateway/provider_inbox.h"

using namespace demail;
using namespace demail::gateway;

namespace {

class TwoInboxes : public connector::ProviderTransport {
  public:
    connector::Result<connector::Done> open() override { return connector::Done{}; }
    connector::Result<connector::AccountListing> listAccounts() override {
        return connector::AccountListing{};
    }
    connector::Result<connector::AddressInfo> lookupAddress(const std::string& a) override {
        return connector::AddressInfo{a, true, "", "high", false};
    }
    connector::Result<connector::SubmitReceipt> submit(const connector::Submission&) override {
        return connector::SubmitReceipt{};
    }
    connector::OutcomeResolution outcomeResolution() const override {
        return connector::OutcomeResolution::IdempotencyKey;
    }
    connector::Result<std::optional<connector::SubmitReceipt>> findSubmission(
        const std::string&, const std::string&) override {
        return std::optional<connector::SubmitReceipt>{};
    }
    connector::Result<std::vector<connector::InboundRef>> listInbound(
        const std::string& account) override {
        if (refuse.count(account))
            return refuse.at(account);
        return std::vector<connector::InboundRef>{{"in-" + account, account, "normal", 10}};
    }
    connector::Result<std::string> fetch(const std::string&) override { return std::string(); }
    connector::Result<connector::Done> acknowledge(const std::string&) override {
        return connector::Done{};
    }
    std::map<std::string, connector::TransportError> refuse;
};

}  // namespace

TEST(ProviderInboxListing, ARefusedAccountIsLeftOutAndTheOthersAreListed) {
    TwoInboxes transport;
    transport.refuse["b@x.de-mail.de"] = {connector::ErrorKind::OperatorAction, "not_authorised",
                                          "provider answered 403 not_authorised", 403, true};
    ProviderInbox inbox(transport, {"a@x.de-mail.de", "b@x.de-mail.de", "c@x.de-mail.de"});
    std::string error;
    const auto items = inbox.list(error);
    ASSERT_TRUE(items) << error;
    ASSERT_EQ(items->size(), 2u);
    EXPECT_EQ((*items)[0].account, "a@x.de-mail.de");
    EXPECT_EQ((*items)[1].account, "c@x.de-mail.de");
    const auto failures = inbox.listingFailures();
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(failures.begin()->first, "b@x.de-mail.de");
}

TEST(ProviderInboxListing, AFailureOfTheConnectionEndsThePass) {
    TwoInboxes transport;
    // Not the account's trouble (our certificate, the network): every account would fail alike.
    transport.refuse["a@x.de-mail.de"] = {connector::ErrorKind::OperatorAction,
                                          "certificate_revoked", "certificate revoked", 403, false};
    ProviderInbox inbox(transport, {"a@x.de-mail.de", "b@x.de-mail.de"});
    std::string error;
    EXPECT_FALSE(inbox.list(error));
    EXPECT_EQ(error, "certificate revoked");
}

TEST(ProviderInboxListing, EveryAccountRefusedIsAFailedListing) {
    TwoInboxes transport;
    transport.refuse["a@x.de-mail.de"] = {connector::ErrorKind::OperatorAction, "account_blocked",
                                          "blocked", 403, true};
    ProviderInbox inbox(transport, {"a@x.de-mail.de"});
    std::string error;
    EXPECT_FALSE(inbox.list(error));
    EXPECT_EQ(error, "blocked");
}
