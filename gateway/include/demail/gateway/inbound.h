// The inbound poller: takes what the provider holds for our De-Mail accounts (mail, the
// provider's confirmations, notifications) to the internal mail server, and acknowledges each
// item to the provider only after the internal server answered 250. An item delivered but not yet
// acknowledged (crash, provider outage between the two) is remembered, so that when the provider
// offers it again it is acknowledged without a second delivery.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "demail/gateway/smtp_delivery.h"

namespace demail::gateway {

struct InboxItem {
    std::string id;       // the provider's id for it
    std::string account;  // the De-Mail account it was addressed to
};

// What the provider transport offers; each call may fail (retryable or not): the poller tries
// again on the next poll.
class InboxSource {
  public:
    virtual ~InboxSource() = default;
    virtual std::optional<std::vector<InboxItem>> list(std::string& error) = 0;
    virtual std::optional<std::string> fetch(const InboxItem& item, std::string& error) = 0;
    virtual bool acknowledge(const InboxItem& item, std::string& error) = 0;
};

// Where a fetched message goes on the internal side.
struct InboundRoute {
    std::string mailFrom;                 // envelope sender
    std::vector<std::string> recipients;  // internal addresses
    std::string kind;                     // for logs and metrics: "message", "confirmation", ...
};

class InboundRouter {
  public:
    virtual ~InboundRouter() = default;
    virtual InboundRoute route(const InboxItem& item, const std::string& message) = 0;
};

class InboundDelivery {
  public:
    virtual ~InboundDelivery() = default;
    virtual DeliveryResult deliver(const InboundRoute& route, const std::string& message) = 0;
};

// Durable set of provider ids already delivered to the internal server.
class DeliveredLedger {
  public:
    virtual ~DeliveredLedger() = default;
    virtual bool contains(const std::string& id) = 0;
    virtual void add(const std::string& id) = 0;  // durable when it returns
};

struct InboundCounts {
    int delivered = 0;
    int acknowledged = 0;
    int duplicates = 0;  // offered again after delivery: acknowledged, not delivered twice
    int deferred = 0;    // internal server or provider failed: stays at the provider
    int misrouted = 0;   // refused for good by the internal server, sent to the postmaster
    std::string lastError;
};

class InboundPoller {
  public:
    InboundPoller(InboxSource& source, InboundRouter& router, InboundDelivery& delivery,
                  DeliveredLedger& ledger, std::string postmaster);
    InboundCounts pollOnce();

  private:
    InboxSource& source_;
    InboundRouter& router_;
    InboundDelivery& delivery_;
    DeliveredLedger& ledger_;
    std::string postmaster_;
};

}  // namespace demail::gateway
