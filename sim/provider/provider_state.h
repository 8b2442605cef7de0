// The simulated provider's mailboxes and rules (TR-01201 PVD_FU behaviour, simplified):
// accounts bound to client certificates, submission checks, provider headers (step 29), BCC
// split, confirmations with the copied X-de-mail-private-id, inbox with at-least-once listing,
// idempotent submission. No networking here; https_api.cpp and control_api.cpp call it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "provider_signer.h"

namespace demail::sim::provider {

struct SimAccount {
    std::string address;
    std::string domain;
    std::string authLevel = "normal";  // normal | high
    bool retrieveConfirmation = false;
    bool blocked = false;
    bool accessOpening = false;  // Zugangseröffnung (De-Mail-G §7(3)), shown by the look-up
};

// What the simulated directory (ÖVD) says of an address that is not one of our mailboxes: an
// address at another provider, known, or closed.
struct DirectoryEntry {
    std::string authLevel = "normal";
    bool accessOpening = false;
    bool closed = false;
};

struct CertBinding {
    std::string subject;      // RFC 2253, as `openssl x509 -subject -nameopt RFC2253` prints it
    std::string fingerprint;  // SHA-256 hex, lower case, no colons (either may be empty)
    std::vector<std::string> accounts;
};

struct ApiReply {
    int status = 200;
    std::string contentType = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

// Who is asking, for the inbox lease (docs/provider-api.md "Inbox semantics"): the client
// certificate's SHA-256 fingerprint (the lease key) and a readable name for error messages.
struct LeaseClient {
    std::string id;    // fingerprint, lower-case hex
    std::string name;  // "<subject> (sha256 <first 16 hex>)"
};

struct SubmitRequest {
    std::string idempotencyKey;
    std::string account;
    std::string optionsJson;
    std::string message;
};

struct StoredMessage {
    std::string id;
    std::string account;  // mailbox owner
    std::string messageType;
    std::string data;
    bool acked = false;
    bool injected = false;
    // For the Abholbestätigung of a delivered copy:
    bool retrieveRequested = false;
    bool retrieveConfirmed = false;
    std::string origSender, origSubject, origPrivateId, deMailMessageId;
    // The fetch lease: held by one client certificate until leaseUntil (empty: not leased).
    std::string leaseHolder, leaseHolderName;
    std::chrono::steady_clock::time_point leaseUntil{};
    std::string leaseUntilText;  // the same moment in UTC, for replies and /control/state
    unsigned fetches = 0;        // successful fetches, by any client (the tests count them)
};

class ProviderState {
  public:
    // The contract's gross limit of a submission: the encoded message. The TR asks providers to
    // carry at least 45 MiB gross (PVD_FU §4.1), which holds 20 MiB net of attachments.
    static constexpr std::size_t kMaxMessageSize = 45u * 1024u * 1024u;

    // Loads the accounts file (JSON, see README.md). Returns an error text on failure.
    std::optional<std::string> load(const std::string& accountsFile);
    void setProviderDomain(std::string domain) { providerDomain_ = std::move(domain); }
    // Signs confirmations, Meldungen and absenderbestätigt messages; without one (no --state)
    // the simulator only states the hash.
    void setSigner(std::unique_ptr<ProviderSigner> signer) { signer_ = std::move(signer); }
    ProviderSigner* signer() { return signer_.get(); }

    // Accounts bound to a client certificate, by fingerprint first, then subject.
    std::vector<std::string> boundAccounts(const std::string& subject,
                                           const std::string& fingerprint) const;

    ApiReply listAccounts(const std::vector<std::string>& bound) const;
    ApiReply submit(const std::vector<std::string>& bound, const SubmitRequest& req);
    // The account's sent items with this X-de-mail-private-id (GET /v1/messages): their receipts,
    // an empty list when there is none.
    ApiReply findSubmissions(const std::vector<std::string>& bound, const std::string& account,
                             const std::string& privateId) const;
    // GET /v1/addresses/{address}: 200 for a mailbox here or a known address elsewhere, 404
    // address_closed / address_unknown otherwise.
    ApiReply lookupAddress(const std::vector<std::string>& bound, const std::string& address) const;
    // Off: Idempotency-Key is neither required nor remembered, as at a provider without it; a
    // repeated submission is stored again (POST /control/idempotency).
    void setIdempotency(bool enabled);
    // The inbox with its fetch lease (docs/provider-api.md "Inbox semantics"): the listing leaves
    // out what is leased to another client; a fetch leases the item to `client` for the lease
    // time (or renews its lease) and is 409 `leased` while another client holds it; only the
    // holder of a live lease may acknowledge (anyone bound, when nobody holds one); an acknowledged
    // item is 410 `acknowledged` to fetch.
    ApiReply listInbox(const std::vector<std::string>& bound, const LeaseClient& client,
                       const std::string& account) const;
    ApiReply fetch(const std::vector<std::string>& bound, const LeaseClient& client,
                   const std::string& id);
    ApiReply acknowledge(const std::vector<std::string>& bound, const LeaseClient& client,
                         const std::string& id);
    // --inbox-lease: how long a fetch leases an item (default 300 s).
    void setLeaseTime(std::chrono::seconds t);

    // Control side.
    std::string inject(const std::string& account, const std::string& message);  // "" if unknown
    std::string stateJson() const;
    std::string inboxJson(const std::string& account) const;  // including acked messages
    std::string messageData(const std::string& id) const;
    void setBlocked(const std::string& account, bool blocked);
    // POST /control/address: state "known" (with level and Zugangseröffnung), "closed" or
    // "unknown" (forgotten). A closed address also hides a mailbox of that name.
    void setDirectoryEntry(const std::string& address, const std::string& state,
                           DirectoryEntry entry);
    // POST /control/domain: one more De-Mail domain in the listing (GET /v1/accounts "domains").
    void addDomain(const std::string& domain);
    // From now on a submission to `address` is accepted, then answered with a Meldung of `type`
    // (unknown-recipient, closed-account, invalid-format, other, malware-notification) to the
    // sender's account instead of being delivered, as a DMDA that finds out after acceptance.
    // An empty type clears it. False for an unknown type.
    bool setMeldung(const std::string& address, const std::string& type);

  private:
    static bool leasedToOther(const StoredMessage& m, const LeaseClient& client,
                              std::chrono::steady_clock::time_point now);
    static ApiReply leasedError(const StoredMessage& m, std::chrono::steady_clock::time_point now);
    std::string nextId(const char* prefix);
    const SimAccount* findAccount(const std::string& address) const;
    bool knownDomain(const std::string& domain) const;
    void deliver(StoredMessage msg);
    // A message from the provider itself (confirmation, Meldung) into m.account's inbox: the
    // provider's headers, `extra` after them, the private-id, the integrity header.
    void deliverSystemMessage(StoredMessage m, const std::string& systemSender,
                              const std::string& subject, const std::string& boundary,
                              std::vector<std::pair<std::string, std::string>> extra,
                              const std::string& privateId, const std::string& body);
    void meldung(const std::string& type, const std::string& toAccount,
                 const std::string& recipient, const std::string& origSubject,
                 const std::string& privateId);
    void confirm(const std::string& kind, const std::string& toAccount,
                 const std::string& origSender, const std::string& origSubject,
                 const std::string& privateId, const std::string& deMailMessageId,
                 const std::string& origMessage);

    void addIntegrity(HeaderList& headers, const std::string& body, bool sign) const {
        if (signer_)
            signer_->addIntegrity(headers, body, sign);
        else
            addHashOnlyIntegrity(headers, body);
    }

    mutable std::mutex mutex_;
    std::unique_ptr<ProviderSigner> signer_;
    std::string providerDomain_ = "sim-provider.de-mail.de";
    std::map<std::string, SimAccount> accounts_;
    std::vector<CertBinding> bindings_;
    std::vector<std::string> domains_;
    std::map<std::string, DirectoryEntry> directory_;  // addresses known beyond our mailboxes
    std::vector<StoredMessage> messages_;              // every mailbox, in arrival order
    std::vector<std::string> outbound_;  // copies for recipients at other providers (ids)
    struct Idem {
        std::string bodyHash;
        ApiReply reply;
    };
    std::map<std::string, Idem> idempotency_;
    bool idempotencyEnabled_ = true;
    std::map<std::string, std::string> meldungFor_;  // recipient -> Meldung type
    struct Sent {  // one accepted submission, for the sent-items look-up
        std::string account, privateId, id;
        std::vector<std::string> messageIds;
    };
    std::vector<Sent> sent_;
    std::uint64_t counter_ = 0;
    std::uint64_t submissions_ = 0;
    std::chrono::seconds leaseTime_{300};
    std::uint64_t leaseRefusals_ = 0;  // fetches and acks refused with 409 leased
};

}  // namespace demail::sim::provider
