#include "demail/gateway/services/account_directory.h"

#include <Poco/Logger.h>

#include <algorithm>

#include "demail/connector/message/demail_headers.h"
#include "demail/smtp/server.h"

namespace demail::gateway {

AccountDirectory::AccountDirectory(std::vector<std::string> configuredDomains,
                                   connector::AccountMap map)
    : configuredDomains_(std::move(configuredDomains)), map_(std::move(map)) {
    std::lock_guard lock(mutex_);
    publish();
}

void AccountDirectory::subscribe(Listener listener) {
    std::lock_guard lock(mutex_);
    listener(*current_);
    listeners_.push_back(std::move(listener));
}

std::shared_ptr<const AccountSnapshot> AccountDirectory::snapshot() const {
    std::lock_guard lock(mutex_);
    return current_;
}

void AccountDirectory::replaceMap(connector::AccountMap map) {
    std::lock_guard lock(mutex_);
    map_ = std::move(map);
    publish();
}

bool AccountDirectory::refreshFromProvider(connector::ProviderTransport& transport,
                                           std::string& error) {
    // Asked without the lock: a slow provider must not hold up a reload.
    auto r = transport.listAccounts();
    if (!r.ok()) {
        error = r.error().reason;
        return false;
    }
    std::lock_guard lock(mutex_);
    // Asked at every inbox poll; a listing like the last one changes nothing, so nothing is
    // published (each publication copies the map into every subscriber).
    const auto same = [](const connector::Account& a, const connector::Account& b) {
        return a.address == b.address && a.domain == b.domain && a.authLevel == b.authLevel &&
               a.retrieveConfirmationAllowed == b.retrieveConfirmationAllowed &&
               a.blocked == b.blocked;
    };
    if (providerListed_ &&
        std::equal(listed_.begin(), listed_.end(), r.value().begin(), r.value().end(), same))
        return true;
    listed_ = r.value();
    providerListed_ = true;
    std::string names;
    for (const auto& a : listed_)
        names += (names.empty() ? "" : ",") + a.address + "/" + a.authLevel +
                 (a.blocked ? "/blocked" : "");
    Poco::Logger::get("accounts")
        .notice("event=accounts_listed count=" + std::to_string(listed_.size()) +
                " accounts=" + smtp::auditValue(names));
    publish();
    return true;
}

void AccountDirectory::publish() {
    auto next = std::make_shared<AccountSnapshot>();
    next->map = map_;
    next->deMailDomains = configuredDomains_;
    next->providerListed = providerListed_;
    next->listed = listed_;
    for (const auto& a : listed_) {
        next->ownAccounts.push_back(a.address);
        if (a.blocked)
            next->blockedAccounts.push_back(a.address);
        // An account domain widens the accepted recipient domains only below the configured
        // De-Mail domains: the provider's list must not turn the gateway into a relay for any
        // domain it names (review L14).
        if (connector::inDomains("x@" + a.domain, configuredDomains_))
            next->deMailDomains.push_back(a.domain);
        else if (ignoredDomains_.insert(a.domain).second)  // said once per domain
            Poco::Logger::get("accounts")
                .warning("event=account_domain_ignored domain=" + smtp::auditValue(a.domain) +
                         " reason=\"not below [provider] demail_domains\"");
    }
    next->map.ownAccounts = next->ownAccounts;
    current_ = std::move(next);
    for (const auto& l : listeners_)
        l(*current_);
}

}  // namespace demail::gateway
