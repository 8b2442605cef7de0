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
#include "demail/gateway/sending_authority.h"
#include "demail/gateway/spool.h"
#include "demail/smtp/policy.h"

namespace demail::gateway {

class AddressBook;

// IPv4 or IPv6 address inside an "a.b.c.d/n" or "x::/n" network.
bool addressInCidr(const std::string& address, const std::string& cidr);

class IntakePolicy final : public smtp::Policy {
  public:
    // Senders are the sending authority's to judge (mapping, sending policy, daily limits).
    IntakePolicy(std::vector<std::string> relayNetworks, SendingAuthority& authority,
                 std::vector<std::string> deMailDomains);
    void setDeMailDomains(std::vector<std::string> domains);   // refreshed from the provider
    void setRelayNetworks(std::vector<std::string> networks);  // SIGHUP
    // The provider's directory, asked for each recipient in a De-Mail domain (unknown or closed:
    // 550 5.1.1; cannot be asked: 451 4.4.3). Null (the default): the domain decides alone.
    void setAddressBook(std::shared_ptr<AddressBook> book);
    // [smtp] when_paused = refuse: `cannotSend` is asked at MAIL FROM (after the sender's own
    // checks) and a reason refuses the transaction with 451 4.3.2 naming it, so that the client
    // takes the mail to another gateway. Off (queue), or without a function: never asked.
    void setCannotSend(std::function<std::string()> cannotSend);
    void setRefuseWhenPaused(bool refuse);  // SIGHUP

    bool relayAllowed(const smtp::SessionInfo& s) override;
    smtp::Decision checkSender(const smtp::SessionInfo& s, const std::string& sender) override;
    smtp::Decision checkRecipient(const smtp::SessionInfo& s, const std::string& sender,
                                  const std::string& recipient) override;

  private:
    std::mutex mutex_;
    std::vector<std::string> relayNetworks_;
    SendingAuthority& authority_;
    std::vector<std::string> domains_;
    std::shared_ptr<AddressBook> addressBook_;
    std::function<std::string()> cannotSend_;
    bool refuseWhenPaused_ = false;
};

class SpoolSink final : public smtp::MessageSink {
  public:
    // With an authority, each message's header section is judged at the end of DATA (options,
    // daily limits) before it is committed; without one (intake benchmarks), it is not.
    explicit SpoolSink(Spool& spool, SendingAuthority* authority = nullptr)
        : spool_(spool), authority_(authority) {}
    std::unique_ptr<smtp::MessageWriter> begin(const smtp::Envelope& envelope,
                                               smtp::SinkError& error) override;
    // Called with each committed queue id (the dispatcher wakes up).
    std::function<void(const std::string&)> onCommitted;

    SendingAuthority* authority() const { return authority_; }
    // The TR's net limit (decoded text and attachments), checked at the end of DATA; 0: none.
    void setNetSizeLimit(std::uint64_t bytes) { netSizeLimit_ = bytes; }
    std::uint64_t netSizeLimit() const { return netSizeLimit_; }

  private:
    Spool& spool_;
    SendingAuthority* authority_;
    std::uint64_t netSizeLimit_ = 0;
};

}  // namespace demail::gateway
