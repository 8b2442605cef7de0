// The daemon's real implementations of the dispatcher's and the poller's seams: the spool as the
// outbound store, the provider transport (with the De-Mail message layer) as submitter and inbox,
// libcurl SMTP to the internal relay for DSNs and inbound mail, and the sent journal that lets a
// confirmation find the sender of its message.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "demail/connector/message/inbound_prepare.h"
#include "demail/connector/message/outbound.h"
#include "demail/connector/transport/https_provider_transport.h"
#include "demail/connector/transport/provider_transport.h"
#include "demail/gateway/inbound.h"
#include "demail/gateway/outbound.h"
#include "demail/gateway/smtp_delivery.h"
#include "demail/gateway/spool.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {

// The provider connections as the daemon uses them: up to `connections` keep-alive HTTPS
// transports, built when a call needs one and the client key is ready, each used by one call at a
// time (the dispatcher's lanes and the inbound poller share the pool), and all rebuilt after the
// card was logged in again (a TLS context must hold the new key). A new connection resumes the
// TLS session another one established, so the card signs once for all of them, not once per
// connection. Until a key is ready every call answers OperatorAction.
class ProviderConnectionPool final : public connector::ProviderTransport {
  public:
    // Builds a transport (no I/O) that resumes `resume` if not null; null and `error` if the key
    // is not ready or the settings are unusable.
    using Factory = std::function<std::unique_ptr<connector::HttpsProviderTransport>(
        std::string& error, Poco::Net::Session::Ptr resume)>;
    explicit ProviderConnectionPool(Factory factory, std::size_t connections = 1);
    // Waits for the calls in flight, then drops every connection: the next call builds anew.
    void reset();
    struct Totals {
        std::uint64_t cardSignatures = 0, fullHandshakes = 0, resumedHandshakes = 0;
    };
    Totals totals();  // across every transport built so far
    std::size_t capacity() const { return slots_.size(); }

    connector::Result<connector::Done> open() override;
    connector::Result<std::vector<connector::Account>> listAccounts() override;
    connector::Result<connector::SubmitReceipt> submit(const connector::Submission& s) override;
    connector::Result<std::vector<connector::InboundRef>> listInbound(
        const std::string& account) override;
    connector::Result<std::string> fetch(const std::string& id) override;
    connector::Result<connector::Done> acknowledge(const std::string& id) override;

  private:
    struct Slot {
        std::unique_ptr<connector::HttpsProviderTransport> transport;
        bool busy = false;
    };
    // Runs `call` on an idle connection (built first if needed); waits while all are busy.
    template <typename Call>
    auto withConnection(Call call);
    void retire(Slot& slot);  // mutex_ held: counts its handshakes and drops it

    Factory factory_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Slot> slots_;
    bool resetting_ = false;
    Poco::Net::Session::Ptr lastSession_;  // from the last call; cleared with the key (reset)
    Totals retired_;
};

// "<internal address or @domain> <De-Mail account>" lines; empty error on success.
std::string loadAccountsFile(const std::string& path, connector::AccountMap& out);

class SpoolOutboundStore final : public OutboundStore {
  public:
    explicit SpoolOutboundStore(Spool& spool);
    std::vector<std::string> queued() override;
    std::optional<OutboundEnvelope> envelope(const std::string& id) override;
    std::unique_ptr<std::istream> body(const std::string& id) override;
    DispatchState state(const std::string& id) override;
    void saveState(const std::string& id, const DispatchState& state) override;
    void finish(const std::string& id) override;
    // The state file's inode and modification time: every write (ours by rename, demailctl's)
    // changes it; 0 when there is no state file yet.
    std::optional<std::uint64_t> stateStamp(const std::string& id) override;

  private:
    Spool& spool_;
    DispatchStateFiles states_;
};

// queue id -> original envelope sender, kept after submission so that confirmations can be
// delivered to the person who sent the message. Entries older than `keep` ([queue]
// sent_retention, default 120 days) are pruned at construction and by prune().
class SentJournal {
  public:
    explicit SentJournal(std::string dir, std::chrono::seconds keep = std::chrono::hours(24 * 120));
    void record(const std::string& queueId, const std::string& sender);
    std::optional<std::string> senderOf(const std::string& queueId) const;
    std::size_t prune();

  private:
    std::string dir_;
    std::chrono::seconds keep_;
};

struct SubmitterSettings {
    std::vector<std::string> deMailDomains;
    connector::AccountMap accounts;
};

class ProviderSubmitter final : public Submitter {
  public:
    ProviderSubmitter(connector::ProviderTransport& transport, SentJournal& journal,
                      std::string providerHost);
    void update(SubmitterSettings settings);  // domains from the provider, SIGHUP
    SubmitterSettings settings() const;
    SubmitOutcome submit(const OutboundEnvelope& envelope, std::istream& body) override;
    // Asked after a transport failure: is it the card? (Set by the daemon.)
    std::function<std::optional<std::string>()> cardProblem;

  private:
    connector::ProviderTransport& transport_;
    SentJournal& journal_;
    std::string host_;
    mutable std::mutex mutex_;
    SubmitterSettings settings_;
};

class RelayNotifier final : public Notifier {
  public:
    explicit RelayNotifier(SmtpRelayTarget target) : target_(std::move(target)) {}
    DeliveryResult send(const DsnMessage& dsn) override;

  private:
    SmtpRelayTarget target_;
};

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

// Confirmations go to the sender of the message they confirm; everything else to the account's
// internal mailbox; failing both, the postmaster. The Internet -> internal boundary is here: the
// message is prepared (connector/message/inbound_prepare.h: CRLF, 998-octet lines, header
// hygiene, the verdict header) and the envelope validated (an invalid sender becomes <>, an
// invalid recipient the postmaster, or the item is parked). A confirmation whose XML is refused
// (too deep, a DTD, not UTF-8) is parked: the provider never sends such a thing.
struct InboundHygiene {
    std::vector<std::string> stripHeaders = connector::defaultInternalTrustHeaders();
    std::string gatewayName = "localhost";  // in Received:
};

class DeMailRouter final : public InboundRouter {
  public:
    DeMailRouter(const SentJournal& journal, std::function<connector::AccountMap()> accounts,
                 std::string postmaster, InboundHygiene hygiene = {});
    InboundRoute route(const InboxItem& item, const std::string& message) override;

  private:
    const SentJournal& journal_;
    std::function<connector::AccountMap()> accounts_;
    std::string postmaster_;
    InboundHygiene hygiene_;
};

// Quarantine in a spool directory (one <id>.eml with the raw bytes, or <id>.txt when nothing could
// be fetched, plus <id>.reason), and a notice to the postmaster with the raw message attached as
// base64 (always deliverable, whatever it contains).
class SpoolQuarantine final : public InboundQuarantine {
  public:
    SpoolQuarantine(std::string dir, std::string postmaster, InboundDelivery& relay,
                    std::string gatewayName);
    bool park(const InboxItem& item, const std::string* raw, const std::string& reason,
              std::string& error) override;
    std::size_t size() override;
    const std::string& dir() const { return dir_; }

  private:
    std::string dir_;
    std::string postmaster_;
    InboundDelivery& relay_;
    std::string gatewayName_;
};

class RelayInboundDelivery final : public InboundDelivery {
  public:
    explicit RelayInboundDelivery(SmtpRelayTarget target) : target_(std::move(target)) {}
    DeliveryResult deliver(const InboundRoute& route, const std::string& message) override;

  private:
    SmtpRelayTarget target_;
};

}  // namespace demail::gateway
