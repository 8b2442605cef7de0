#include "demail/gateway/provider_inbox.h"

namespace demail::gateway {

ProviderInbox::ProviderInbox(connector::ProviderTransport& transport,
                             std::vector<std::string> accounts)
    : transport_(transport), accounts_(std::move(accounts)) {}

void ProviderInbox::setAccounts(std::vector<std::string> accounts) {
    std::lock_guard lock(mutex_);
    accounts_ = std::move(accounts);
}

std::optional<std::vector<InboxItem>> ProviderInbox::list(std::string& error) {
    std::vector<std::string> accounts;
    {
        std::lock_guard lock(mutex_);
        accounts = accounts_;
    }
    std::vector<InboxItem> items;
    std::map<std::string, std::string> failures;
    for (const auto& a : accounts) {
        auto r = transport_.listInbound(a);
        if (!r.ok()) {
            // A refusal of this one account (blocked, not bound to our certificate) must not
            // keep the others from receiving; anything else (connection, TLS, our certificate)
            // fails for every account alike and ends the pass.
            if (r.error().accountLevel) {
                failures[a] = r.error().reason;
                continue;
            }
            error = r.error().reason;
            return std::nullopt;
        }
        for (const auto& ref : r.value())
            items.push_back({ref.id, ref.account.empty() ? a : ref.account});
    }
    {
        std::lock_guard lock(mutex_);
        failures_ = failures;
    }
    if (!accounts.empty() && failures.size() == accounts.size()) {
        error = failures.begin()->second;
        return std::nullopt;
    }
    return items;
}

std::map<std::string, std::string> ProviderInbox::listingFailures() const {
    std::lock_guard lock(mutex_);
    return failures_;
}

namespace {
SourceFailure failureOf(const connector::TransportError& e) {
    if (e.heldElsewhere)
        return SourceFailure::HeldElsewhere;
    return e.kind == connector::ErrorKind::Permanent ? SourceFailure::Permanent
                                                     : SourceFailure::Transient;
}
}  // namespace

std::optional<std::string> ProviderInbox::fetch(const InboxItem& item, std::string& error,
                                                SourceFailure& failure) {
    auto r = transport_.fetch(item.id);
    if (!r.ok()) {
        error = r.error().reason;
        failure = failureOf(r.error());
        return std::nullopt;
    }
    return r.value();
}

bool ProviderInbox::acknowledge(const InboxItem& item, std::string& error, SourceFailure& failure) {
    auto r = transport_.acknowledge(item.id);
    if (!r.ok()) {
        error = r.error().reason;
        failure = failureOf(r.error());
    }
    return r.ok();
}

}  // namespace demail::gateway
