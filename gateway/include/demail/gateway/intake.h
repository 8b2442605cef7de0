// The gateway's side of the SMTP intake: who may relay (relay_networks or AUTH), which senders
// map to a De-Mail account and which recipients are De-Mail (connector's rules, with the domain
// list the provider reports), and the spool as the message sink.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "demail/connector/message/outbound.h"
#include "demail/gateway/spool.h"
#include "demail/smtp/policy.h"

namespace demail::gateway {

class AddressBook;

// IPv4 or IPv6 address inside an "a.b.c.d/n" or "x::/n" network.
bool addressInCidr(const std::string& address, const std::string& cidr);

class IntakePolicy final : public smtp::Policy {
  public:
    IntakePolicy(std::vector<std::string> relayNetworks, connector::AccountMap accounts,
                 std::vector<std::string> deMailDomains);
    void setDeMailDomains(std::vector<std::string> domains);   // refreshed from the provider
    void setAccounts(connector::AccountMap accounts);          // SIGHUP
    void setRelayNetworks(std::vector<std::string> networks);  // SIGHUP
    // False until the provider listed our accounts: an unmapped sender may then still be one of
    // them, so it is told to try again later (4xx), never refused for good on a guess.
    void setAccountsListed(bool listed);
    // The provider's directory, asked for each recipient in a De-Mail domain (unknown or closed:
    // 550 5.1.1; cannot be asked: 451 4.4.3). Null (the default): the domain decides alone.
    void setAddressBook(std::shared_ptr<AddressBook> book);

    bool relayAllowed(const smtp::SessionInfo& s) override;
    smtp::Decision checkSender(const smtp::SessionInfo& s, const std::string& sender) override;
    smtp::Decision checkRecipient(const smtp::SessionInfo& s, const std::string& sender,
                                  const std::string& recipient) override;

  private:
    std::mutex mutex_;
    std::vector<std::string> relayNetworks_;
    connector::AccountMap accounts_;
    std::vector<std::string> domains_;
    bool accountsListed_ = true;
    std::shared_ptr<AddressBook> addressBook_;
};

class SpoolSink final : public smtp::MessageSink {
  public:
    explicit SpoolSink(Spool& spool) : spool_(spool) {}
    std::unique_ptr<smtp::MessageWriter> begin(const smtp::Envelope& envelope,
                                               smtp::SinkError& error) override;
    // Called with each committed queue id (the dispatcher wakes up).
    std::function<void(const std::string&)> onCommitted;

  private:
    Spool& spool_;
};

}  // namespace demail::gateway
