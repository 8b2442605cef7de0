// What the gateway knows of its De-Mail accounts, in one place: the operator's accounts file
// (which internal sender sends as which account), the accounts the provider lists for our card,
// and the De-Mail domains that follow from both. Every change (a reload of the accounts file, a
// listing from the provider) publishes one new immutable snapshot to every subscriber in the
// order the changes happened, under one lock: a SIGHUP can no longer be overwritten by a
// provider refresh that began before it.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "demail/connector/message/outbound.h"
#include "demail/connector/transport/provider_transport.h"

namespace demail::gateway {

struct AccountSnapshot {
    connector::AccountMap map;  // accounts file: internal sender -> De-Mail account
    // Recipient domains (and everything below them) that count as De-Mail: `[provider]
    // demail_domains`, plus the provider's `domains` and our account domains unless pinned.
    std::vector<std::string> deMailDomains;
    std::vector<std::string> ownAccounts;      // the accounts the provider lists for our card
    std::vector<std::string> blockedAccounts;  // of those, the ones it lists as blocked
    std::vector<connector::Account> listed;    // the same, with level, permission and state
    bool providerListed = false;               // false until the provider was asked successfully
};

class AccountDirectory {
  public:
    using Listener = std::function<void(const AccountSnapshot&)>;
    // `fromProvider` false pins the De-Mail domains to `configuredDomains` (`[provider]
    // demail_domains_from_provider = no`): the provider's list can then not widen them (L14).
    AccountDirectory(std::vector<std::string> configuredDomains, bool fromProvider,
                     connector::AccountMap map);

    // Called at once with the current snapshot, then with every new one.
    void subscribe(Listener listener);
    std::shared_ptr<const AccountSnapshot> snapshot() const;

    // The accounts file was read again (SIGHUP).
    void replaceMap(connector::AccountMap map);
    // Asks the provider for our accounts; false with the reason when it could not be asked.
    bool refreshFromProvider(connector::ProviderTransport& transport, std::string& error);

  private:
    void publish();  // mutex_ held

    mutable std::mutex mutex_;
    const std::vector<std::string> configuredDomains_;
    const bool fromProvider_;
    connector::AccountMap map_;
    std::vector<connector::Account> listed_;
    std::vector<std::string> listedDomains_;
    bool providerListed_ = false;
    std::set<std::string> ignoredDomains_;
    std::shared_ptr<const AccountSnapshot> current_;
    std::vector<Listener> listeners_;
};

}  // namespace demail::gateway
