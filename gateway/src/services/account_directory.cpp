#include "demail/gateway/services/account_directory.h"

#include <Poco/Logger.h>

#include <algorithm>

#include "demail/connector/message/demail_headers.h"
#include "demail/smtp/server.h"

namespace demail::gateway {

AccountDirectory::AccountDirectory(std::vector<std::string> configuredDomains, bool fromProvider,
                                   connector::AccountMap map)
    : configuredDomains_(std::move(configuredDomains)),
      fromProvider_(fromProvider),
      map_(std::move(map)) {
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
    const auto& accounts = r.value().accounts;
    if (providerListed_ && listedDomains_ == r.value().domains &&
        std::equal(listed_.begin(), listed_.end(), accounts.begin(), accounts.end(), same))
        return true;
    listed_ = accounts;
    listedDomains_ = r.value().domains;
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
    // A domain the provider names (its `domains`, or one of our accounts') is a De-Mail domain
    // (TR ACM_FU §2.1.2 allows DMDA domains and Sammeldomänen outside de-mail.de), unless the
    // operator pinned the list (review L14): then only what is below the configured ones counts,
    // and every other domain is said once.
    const auto add = [&](const std::string& domain) {
        if (connector::inDomains("x@" + domain, next->deMailDomains))
            return;  // already covered
        // An account's domain is checked less than `domains` by the binding: never a bare
        // label such as "de", which would make a whole top-level domain De-Mail.
        if (fromProvider_ && domain.find('.') != std::string::npos) {
            next->deMailDomains.push_back(domain);
        } else if (ignoredDomains_.insert(domain).second) {
            Poco::Logger::get("accounts")
                .warning("event=provider_domain_ignored domain=" + smtp::auditValue(domain) +
                         " reason=\"[provider] demail_domains_from_provider = no pins the "
                         "De-Mail domains to demail_domains\"");
        }
    };
    for (const auto& d : listedDomains_)
        add(d);
    next->listed = listed_;
    for (const auto& a : listed_) {
        next->ownAccounts.push_back(a.address);
        if (a.blocked)
            next->blockedAccounts.push_back(a.address);
        if (!a.domain.empty())
            add(a.domain);
    }
    next->map.ownAccounts = next->ownAccounts;
    current_ = std::move(next);
    for (const auto& l : listeners_)
        l(*current_);
}

}  // namespace demail::gateway
