// The HTTPS+JSON binding of docs/provider-api.md, the project's own provider contract: routes,
// headers and JSON of one provider API, over the shared TlsClient. The pure functions (JSON <->
// values, HTTP status -> taxonomy) are unit-tested and fuzzed on their own; Poco::JSON stays in
// json_api_binding.cpp. Registered twice (provider_binding.cpp): with Idempotency-Key, and without
// it for a provider that offers only the sent-items look-up.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "demail/connector/transport/provider_binding.h"
#include "demail/connector/transport/provider_transport.h"
#include "demail/connector/transport/tls_client.h"

namespace demail::connector {

namespace api {

// Maps an HTTP status and body (JSON error object {"error":{"code","message"}} when present)
// to the taxonomy. Only called for non-2xx statuses.
TransportError mapHttpError(int status, const std::string& body);

Result<AccountListing> parseAccounts(const std::string& body);
// GET /v1/addresses/{address}: a 200 body, or a 404 whose error code is address_unknown or
// address_closed (exists=false); anything else is an error. The answer must name `address`.
Result<AddressInfo> parseAddress(int status, const std::string& body, const std::string& address);
Result<SubmitReceipt> parseSubmitReceipt(int status, const std::string& body);
Result<std::vector<InboundRef>> parseInbox(const std::string& body);
// GET /v1/messages?account=&privateId= -> the receipt of the submission with that private-id
// (the first, should there be more), nullopt for an empty list. An entry naming another
// private-id is a malformed reply, never a match.
Result<std::optional<SubmitReceipt>> parseLookup(const std::string& body,
                                                 const std::string& privateId);

std::string submitOptionsJson(const SubmitOptions& options);  // the X-Demail-Options header value

}  // namespace api

class JsonApiConnection final : public ProviderConnection {
  public:
    // Throws std::runtime_error (one line) when the endpoint or credentials are unusable.
    // `resolution`: IdempotencyKey sends the queue id as Idempotency-Key; LookupByPrivateId sends
    // none (the provider keeps none) and relies on findSubmission.
    JsonApiConnection(ProviderEndpoint endpoint, ClientCredentials& credentials,
                      TransportTimeouts timeouts = {}, Poco::Net::Session::Ptr resume = nullptr,
                      OutcomeResolution resolution = OutcomeResolution::IdempotencyKey);

    Result<Done> open() override;
    Result<AccountListing> listAccounts() override;
    Result<AddressInfo> lookupAddress(const std::string& address) override;
    Result<SubmitReceipt> submit(const Submission& submission) override;
    OutcomeResolution outcomeResolution() const override { return resolution_; }
    Result<std::optional<SubmitReceipt>> findSubmission(const std::string& account,
                                                        const std::string& privateId) override;
    Result<std::vector<InboundRef>> listInbound(const std::string& account) override;
    Result<std::string> fetch(const std::string& id) override;
    Result<Done> acknowledge(const std::string& id) override;

    void disconnect() override { client_.disconnect(); }
    const TlsCounters& counters() const override { return client_.counters(); }
    HandshakeInfo lastHandshake() const override { return client_.lastHandshake(); }
    Poco::Net::Session::Ptr tlsSession() const override { return client_.tlsSession(); }
    TlsClient& client() { return client_; }

  private:
    TlsClient client_;
    OutcomeResolution resolution_;
};

}  // namespace demail::connector
