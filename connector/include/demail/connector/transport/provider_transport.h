// The provider transport: one small interface the gateway talks to, whatever the provider's
// real API is. Every call returns a value; no exception crosses this interface.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace demail::connector {

// The error taxonomy drives what the gateway does next:
//   Retryable       -> keep the message queued, retry with backoff (SMTP 4xx before acceptance)
//   Permanent       -> give up on this message (SMTP 5xx / DSN) with the reason
//   OperatorAction  -> stop sending; a human must act (PIN, token, certificate, account blocked).
//                      With `accountLevel` only the account the request named is concerned (it is
//                      blocked at the provider, or not bound to our certificate): the gateway
//                      stops that account's sending and nothing else.
enum class ErrorKind { Retryable, Permanent, OperatorAction };

struct TransportError {
    ErrorKind kind = ErrorKind::Retryable;
    std::string code;    // machine code, e.g. "connect_refused", "http_503", "sender_not_owned"
    std::string reason;  // one line for logs and operators
    int httpStatus = 0;  // 0 when no HTTP response was read
    bool accountLevel = false;  // OperatorAction for the named account only (see above)
    // fetch/acknowledge of an inbox item: another client holds its lease, or has acknowledged it
    // (docs/provider-api.md "Inbox semantics"). Not a failure of ours: a peer gateway has it.
    bool heldElsewhere = false;
};

const char* toString(ErrorKind kind);

template <typename T>
class Result {
  public:
    Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
    Result(TransportError error) : v_(std::move(error)) {}
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    const T& value() const { return std::get<0>(v_); }
    T& value() { return std::get<0>(v_); }
    const TransportError& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, TransportError> v_;
};

struct Done {};

struct Account {
    std::string address;                       // poststelle@firma.de-mail.de
    std::string domain;                        // firma.de-mail.de
    std::string authLevel;                     // "normal" | "high"
    bool retrieveConfirmationAllowed = false;  // Abholbestätigung permission
    bool blocked = false;
};

// GET /v1/accounts: our accounts, and the De-Mail domains the provider delivers to (TR ACM_FU
// §2.1.2: de-mail.de, the provider's own DMDA domain, Sammeldomänen). Either list may be empty.
struct AccountListing {
    std::vector<Account> accounts;
    std::vector<std::string> domains;  // lower case, each a domain name with at least one dot
};

// What the provider's directory says of one address (the ÖVD look-up, docs/provider-api.md).
struct AddressInfo {
    std::string address;
    bool exists = false;         // false: unknown to De-Mail, or closed
    std::string reason;          // when !exists: "unknown" | "closed"
    std::string authLevel;       // "normal" | "high": the highest level the holder logs in with
    bool accessOpening = false;  // Zugangseröffnung (De-Mail-G §7(3)) for public bodies
};

struct SubmitOptions {  // the five TR-01201 shipping options
    bool personal = false;
    bool authoritative = false;
    bool dispatchConfirmation = false;
    bool receiptConfirmation = false;
    bool retrieveConfirmation = false;
};

// How a submission whose outcome is unknown is settled before the message is sent again. Unknown:
// the body may have reached the provider but no reply did (connection reset, read timeout, a
// truncated or garbled reply, the gateway killed mid-request). "Never sent twice" then rests on
// what the provider's API offers, and each binding declares which it is:
enum class OutcomeResolution {
    // The provider keeps a submission under Submission::idempotencyKey (our queue id) and answers
    // a repeat with the first receipt: sending again *is* the resolution.
    IdempotencyKey,
    // The provider keeps no key. Before any further attempt the account's sent items are searched
    // for X-de-mail-private-id = queue id (findSubmission): found means sent, never sent twice.
    LookupByPrivateId,
};
const char* toString(OutcomeResolution resolution);

struct Submission {
    std::string idempotencyKey;  // the queue id: a retry never sends twice
    std::string account;         // sending De-Mail account (address)
    std::string rfc5322;         // the message with user metadata (X-de-mail-* options, private-id)
    SubmitOptions options;
    // Optional: the rest of the message, streamed after `rfc5322` (then only the header section
    // and any start of the body), exactly `bodyLength` bytes, so that memory does not grow with
    // the message. Read once: a retry needs a fresh stream.
    std::istream* bodyStream = nullptr;
    std::uint64_t bodyLength = 0;
};

struct SubmitReceipt {
    std::vector<std::string> messageIds;  // one per delivered copy (BCC split)
    bool duplicate = false;  // true when the key had been seen before, or found by look-up
};

struct InboundRef {
    std::string id;
    std::string account;
    std::string messageType;  // X-de-mail-message-type of the stored message
    std::uint64_t size = 0;
};

class ProviderTransport {
  public:
    virtual ~ProviderTransport() = default;
    // Establishes (or re-establishes) the authenticated session; cheap when already open.
    virtual Result<Done> open() = 0;
    virtual Result<AccountListing> listAccounts() = 0;
    // Whether `address` is a De-Mail address that can receive (exists, not closed). A provider
    // that does not offer the look-up answers an error (code "lookup_not_offered"), never
    // "does not exist".
    virtual Result<AddressInfo> lookupAddress(const std::string& address) = 0;
    virtual Result<SubmitReceipt> submit(const Submission& submission) = 0;
    // What the binding offers to settle an unknown outcome (see OutcomeResolution).
    virtual OutcomeResolution outcomeResolution() const = 0;
    // The receipt of the submission of `account` whose X-de-mail-private-id is `privateId`, or
    // nullopt when the provider holds none. An error means "not known": never send then.
    virtual Result<std::optional<SubmitReceipt>> findSubmission(const std::string& account,
                                                                const std::string& privateId) = 0;
    virtual Result<std::vector<InboundRef>> listInbound(const std::string& account) = 0;
    // Leases the item to this client (our certificate) for the provider's lease time, or renews
    // our lease; an error with heldElsewhere when another client holds it or acknowledged it.
    virtual Result<std::string> fetch(const std::string& id) = 0;
    // Only the lease holder (or anyone while nobody holds one); heldElsewhere when another
    // client holds a live lease.
    virtual Result<Done> acknowledge(const std::string& id) = 0;
};

}  // namespace demail::connector
