// The provider connections as the daemon uses them: up to `connections` keep-alive connections of
// the profile's binding (connector/transport/provider_binding.h; the pool knows no provider API),
// built when a call needs one and the client key is ready, each used by one call at a time (the
// dispatcher's lanes and the inbound poller share the pool), and all rebuilt after the card was
// logged in again (a TLS context must hold the new key). A new connection resumes the TLS session
// another one established, so the card signs once for all of them, not once per connection. Until a
// key is ready every call answers OperatorAction.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "demail/connector/transport/provider_binding.h"
#include "demail/connector/transport/provider_transport.h"

namespace demail::gateway {

// Whether the provider answers at all, from the outcome of every call: unreachable once
// kNoAnswersInARow calls in a row got no HTTP reply (refused connection, TLS handshake failure,
// timeout, reset), reachable again with the first reply of any kind (an HTTP error is an answer).
// One lost keep-alive connection is not an outage, hence more than one. [smtp] when_paused = refuse
// refuses new mail while it says unreachable, so that a peer gateway takes it.
class ProviderReachability {
  public:
    static constexpr int kNoAnswersInARow = 2;
    void record(const connector::TransportError* error);  // null: the call succeeded
    // Empty while reachable; else the last failure's reason.
    std::string unreachable() const;

  private:
    mutable std::mutex mutex_;
    int noAnswers_ = 0;
    std::string lastReason_;
};

class ProviderConnectionPool final : public connector::ProviderTransport {
  public:
    // Builds a connection (no I/O) that resumes `resume` if not null; null and `error` if the key
    // is not ready or the settings are unusable.
    using Factory = std::function<std::unique_ptr<connector::ProviderConnection>(
        std::string& error, Poco::Net::Session::Ptr resume)>;
    // `resolution`: what the binding the factory builds offers (ProviderBinding::resolution).
    ProviderConnectionPool(Factory factory, connector::OutcomeResolution resolution,
                           std::size_t connections = 1);
    // Waits for the calls in flight, then drops every connection: the next call builds anew.
    void reset();
    struct Totals {
        std::uint64_t cardSignatures = 0, fullHandshakes = 0, resumedHandshakes = 0;
    };
    Totals totals();  // across every transport built so far
    std::size_t capacity() const { return slots_.size(); }
    // Empty while the provider answers; else why it is taken as unreachable (ProviderReachability).
    std::string unreachable() const { return reachability_.unreachable(); }

    connector::Result<connector::Done> open() override;
    connector::Result<connector::AccountListing> listAccounts() override;
    connector::Result<connector::AddressInfo> lookupAddress(const std::string& address) override;
    connector::Result<connector::SubmitReceipt> submit(const connector::Submission& s) override;
    connector::OutcomeResolution outcomeResolution() const override { return resolution_; }
    connector::Result<std::optional<connector::SubmitReceipt>> findSubmission(
        const std::string& account, const std::string& privateId) override;
    connector::Result<std::vector<connector::InboundRef>> listInbound(
        const std::string& account) override;
    connector::Result<std::string> fetch(const std::string& id) override;
    connector::Result<connector::Done> acknowledge(const std::string& id) override;

  private:
    struct Slot {
        std::unique_ptr<connector::ProviderConnection> transport;
        bool busy = false;
    };
    // Runs `call` on an idle connection (built first if needed); waits while all are busy.
    template <typename Call>
    auto withConnection(Call call);
    void retire(Slot& slot);  // mutex_ held: counts its handshakes and drops it

    Factory factory_;
    connector::OutcomeResolution resolution_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Slot> slots_;
    bool resetting_ = false;
    Poco::Net::Session::Ptr lastSession_;  // from the last call; cleared with the key (reset)
    Totals retired_;
    ProviderReachability reachability_;
};

}  // namespace demail::gateway
