// The provider's inbox as the inbound poller's source: the listing of every account of ours, a
// fetch and an acknowledgement, through the provider transport.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "demail/connector/transport/provider_transport.h"
#include "demail/gateway/inbound.h"

namespace demail::gateway {

class ProviderInbox final : public InboxSource {
  public:
    ProviderInbox(connector::ProviderTransport& transport, std::vector<std::string> accounts);
    void setAccounts(std::vector<std::string> accounts);
    // The items of every account that could be listed. An account the provider refuses (403
    // account_blocked, not_authorised) is left out and named in listingFailures(); the listing
    // fails as a whole only when every account was refused or the provider was not reached.
    std::optional<std::vector<InboxItem>> list(std::string& error) override;
    // Account -> reason, from the last list() that reached the provider.
    std::map<std::string, std::string> listingFailures() const;
    std::optional<std::string> fetch(const InboxItem& item, std::string& error,
                                     SourceFailure& failure) override;
    bool acknowledge(const InboxItem& item, std::string& error, SourceFailure& failure) override;

  private:
    connector::ProviderTransport& transport_;
    mutable std::mutex mutex_;
    std::vector<std::string> accounts_;
    std::map<std::string, std::string> failures_;
};

}  // namespace demail::gateway
