// The inbound poller: takes what the provider holds for our De-Mail accounts (mail, the
// provider's confirmations, notifications) to the internal mail server, and acknowledges each
// item to the provider only after the internal server answered 250. An item delivered but not yet
// acknowledged (crash, provider outage between the two) is remembered, so that when the provider
// offers it again it is acknowledged without a second delivery.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "demail/gateway/evidence.h"
#include "demail/gateway/provider_signatures.h"
#include "demail/gateway/smtp_delivery.h"

namespace demail::gateway {

struct InboxItem {
    std::string id;       // the provider's id for it
    std::string account;  // the De-Mail account it was addressed to
};

// Why a fetch or an acknowledgement did not succeed.
enum class SourceFailure {
    Transient,  // try again at the next poll
    Permanent,  // trying again cannot help (an oversize reply, an invalid id): counts to parking
    // Another gateway bound to the same account holds the item's lease, or acknowledged it
    // (docs/provider-api.md "Inbox semantics"): it is theirs to deliver. Not an error.
    HeldElsewhere,
};

// What the provider transport offers; each call may fail: the poller tries again on the next
// poll unless `failure` says otherwise.
class InboxSource {
  public:
    virtual ~InboxSource() = default;
    virtual std::optional<std::vector<InboxItem>> list(std::string& error) = 0;
    // Leases the item to this gateway at the provider (or renews the lease).
    virtual std::optional<std::string> fetch(const InboxItem& item, std::string& error,
                                             SourceFailure& failure) = 0;
    virtual bool acknowledge(const InboxItem& item, std::string& error, SourceFailure& failure) = 0;
};

// Where a fetched message goes on the internal side.
struct InboundRoute {
    std::string mailFrom;                 // envelope sender (validated; empty: <>)
    std::vector<std::string> recipients;  // internal addresses (validated)
    std::string kind;                     // for logs and metrics: "message", "confirmation", ...
    std::string message;  // what goes to the relay (normalised, header hygiene); empty: as fetched
    std::string park;     // set: the item must not be delivered (why); it is quarantined
    std::string queueId;  // a confirmation of one of our messages: its queue id (the log trail)
    // Persönlich (X-de-mail-private: yes): only for the person mapped to the account; never the
    // postmaster: held (quarantined without its content in the notice) when it cannot go there.
    bool personal = false;
    // The sender asked for an Abholbestätigung: this retrieval is the moment of formal service.
    bool retrieveConfirmation = false;
};

// Parked items whose reason begins with this are Persönlich: the quarantine notice to the
// postmaster carries no content.
inline constexpr const char* kHeldPersonal = "Persönlich";

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

// Where items go that must not or cannot be delivered (hostile or unrepairable content, or
// refused/failing again and again): kept for the operator, the postmaster told, then the item
// is acknowledged so that it cannot block or crash the intake in a loop.
class InboundQuarantine {
  public:
    virtual ~InboundQuarantine() = default;
    // raw is null when the item could not even be fetched. False (with error) if nothing could
    // be kept: then the item stays at the provider.
    virtual bool park(const InboxItem& item, const std::string* raw, const std::string& reason,
                      std::string& error) = 0;
    virtual std::size_t size() = 0;  // items held now (the health alarm stays on while > 0)
};

// Failed attempts per provider id, surviving restarts: a crash while an item was being handled
// (begin without end) counts as a failure of that item at the next start.
class InboundAttempts {
  public:
    virtual ~InboundAttempts() = default;
    virtual void begin(const std::string& id) = 0;
    virtual void end() = 0;
    virtual int fail(const std::string& id) = 0;  // returns the failures so far
    virtual void clear(const std::string& id) = 0;
};

struct InboundCounts {
    int delivered = 0;
    int acknowledged = 0;
    int duplicates = 0;  // offered again after delivery: acknowledged, not delivered twice
    int deferred = 0;    // internal server or provider failed: stays at the provider
    int misrouted = 0;   // refused for good by the internal server, sent to the postmaster
    int parked = 0;      // quarantined in this pass, then acknowledged
    // Leased to (or acknowledged by) a peer gateway: skipped, theirs to deliver. Not an error.
    int leasedElsewhere = 0;
    // Delivered by us, but a peer took the lease before our acknowledgement (our lease ran
    // out): the peer delivers it too. The residual duplicate window (docs/operations.md).
    int lostLease = 0;
    std::size_t quarantined = 0;  // items held in quarantine now
    int signatureFailures = 0;    // items whose provider signature did not hold (delivered, marked)
    std::string lastError;
};

class InboundPoller {
  public:
    // maxAttempts: failures (exception, crash, refusal by relay and postmaster, permanent fetch
    // error) of one item before it is parked. A relay that is down or answers 4xx is not the
    // item's fault and does not count.
    InboundPoller(InboxSource& source, InboundRouter& router, InboundDelivery& delivery,
                  DeliveredLedger& ledger, std::string postmaster, InboundQuarantine& quarantine,
                  InboundAttempts& attempts, int maxAttempts = 5);
    // Never throws: a failure of one item is that item's failure, not the pass's.
    InboundCounts pollOnce();
    // Where each item is kept as retrieved (set by the daemon). An item whose evidence cannot be
    // kept is neither delivered nor acknowledged: it is fetched again at the next poll.
    Evidence* evidence = nullptr;
    // Checks the provider's signatures on each item as retrieved (set by the daemon); the result
    // goes into the archive record and the X-Demail-Gateway-Verified header.
    SignatureVerifier* signatures = nullptr;

  private:
    void handle(const InboxItem& item, InboundCounts& counts);
    bool park(const InboxItem& item, const std::string* raw, const std::string& reason,
              InboundCounts& counts);
    bool failed(const InboxItem& item, const std::string* raw, const std::string& reason,
                InboundCounts& counts);  // true if the item was parked
    void acknowledge(const InboxItem& item, InboundCounts& counts);

    InboxSource& source_;
    InboundRouter& router_;
    InboundDelivery& delivery_;
    DeliveredLedger& ledger_;
    std::string postmaster_;
    InboundQuarantine& quarantine_;
    InboundAttempts& attempts_;
    int maxAttempts_;
    std::set<std::string> unrecorded_;  // delivered, but the ledger write failed: never again
};

}  // namespace demail::gateway
