// AccountDirectory's De-Mail domains: the configured ones, plus what the provider lists (its
// "domains" and our account domains) unless the operator pinned the list (review L14).
#include <gtest/gtest.h>

#include <algorithm>

#include "demail/gateway/services/account_directory.h"

using namespace demail;
using namespace demail::gateway;

namespace {

class ListingTransport : public connector::ProviderTransport {
  public:
    connector::AccountListing listing;
    connector::Result<connector::Done> open() override { return connector::Done{}; }
    connector::Result<connector::AccountListing> listAccounts() override { return listing; }
    connector::Result<connector::AddressInfo> lookupAddress(const std::string&) override {
        return connector::AddressInfo{};
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
    connector::Result<std::vector<connector::InboundRef>> listInbound(const std::string&) override {
        return std::vector<connector::InboundRef>{};
    }
    connector::Result<std::string> fetch(const std::string&) override { return std::string(); }
    connector::Result<connector::Done> acknowledge(const std::string&) override {
        return connector::Done{};
    }
};

ListingTransport provider() {
    ListingTransport t;
    connector::Account a;
    a.address = "poststelle@firma.sammel.example";
    a.domain = "firma.sammel.example";
    t.listing.accounts.push_back(a);
    connector::Account bare;  // a provider naming a bare label must not make ".de" De-Mail
    bare.address = "x@de";
    bare.domain = "de";
    t.listing.accounts.push_back(bare);
    t.listing.domains = {"de-mail.de", "sammel.example", "b.de-mail.de"};
    return t;
}

bool has(const std::vector<std::string>& v, const std::string& d) {
    return std::find(v.begin(), v.end(), d) != v.end();
}

TEST(AccountDirectoryDomains, ProviderListWidensWhenNotPinned) {
    AccountDirectory dir({"de-mail.de"}, true, {});
    EXPECT_EQ(dir.snapshot()->deMailDomains, std::vector<std::string>{"de-mail.de"});
    auto t = provider();
    std::string error;
    ASSERT_TRUE(dir.refreshFromProvider(t, error)) << error;
    const auto s = dir.snapshot();
    EXPECT_TRUE(s->providerListed);
    EXPECT_TRUE(has(s->deMailDomains, "sammel.example"));
    EXPECT_FALSE(has(s->deMailDomains, "b.de-mail.de"));  // already below de-mail.de
    EXPECT_FALSE(has(s->deMailDomains, "de"));
    EXPECT_EQ(s->deMailDomains.size(), 2u);
    EXPECT_EQ(s->ownAccounts.size(), 2u);
}

TEST(AccountDirectoryDomains, PinnedListIgnoresTheProvider) {
    AccountDirectory dir({"de-mail.de", "eigene.example"}, false, {});
    auto t = provider();
    std::string error;
    ASSERT_TRUE(dir.refreshFromProvider(t, error)) << error;
    EXPECT_EQ(dir.snapshot()->deMailDomains,
              (std::vector<std::string>{"de-mail.de", "eigene.example"}));
    EXPECT_EQ(dir.snapshot()->ownAccounts.size(), 2u);  // the accounts are still ours
}

TEST(AccountDirectoryDomains, ANewDomainInTheListingIsPublished) {
    AccountDirectory dir({"de-mail.de"}, true, {});
    int published = 0;
    std::vector<std::string> last;
    dir.subscribe([&](const AccountSnapshot& s) {
        ++published;
        last = s.deMailDomains;
    });
    ListingTransport t;
    std::string error;
    ASSERT_TRUE(dir.refreshFromProvider(t, error));
    ASSERT_TRUE(dir.refreshFromProvider(t, error));  // the same listing: nothing new
    EXPECT_EQ(published, 2);
    t.listing.domains = {"neu.example"};
    ASSERT_TRUE(dir.refreshFromProvider(t, error));
    EXPECT_EQ(published, 3);
    EXPECT_TRUE(has(last, "neu.example"));
}

}  // namespace
