// The provider's inbox as the inbound poller's source: the listing of every account of ours, a
// fetch and an acknowledgement, through the provider transport.
#pragma once

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
    std::optional<std::vector<InboxItem>> list(std::string& error) override;
    std::optional<std::string> fetch(const InboxItem& item, std::string& error,
                                     bool& permanent) override;
    bool acknowledge(const InboxItem& item, std::string& error) override;

  private:
    connector::ProviderTransport& transport_;
    std::mutex mutex_;
    std::vector<std::string> accounts_;
};

}  // namespace demail::gateway
