// The HTTPS/JSON binding of ProviderTransport (docs/provider-api.md): pure functions that map
// HTTP responses to results and the error taxonomy. Kept apart from I/O so they are unit-tested.
// This and https_provider_transport.cpp are the one place to change for a real provider's API.
#pragma once

#include <string>
#include <vector>

#include "demail/connector/transport/provider_transport.h"

namespace demail::connector::api {

// Maps an HTTP status and body (JSON error object {"error":{"code","message"}} when present)
// to the taxonomy. Only called for non-2xx statuses.
TransportError mapHttpError(int status, const std::string& body);

// Transport-level failures (no HTTP response): all retryable except those naming credentials.
TransportError connectFailure(const std::string& code, const std::string& reason);

Result<std::vector<Account>> parseAccounts(const std::string& body);
Result<SubmitReceipt> parseSubmitReceipt(int status, const std::string& body);
Result<std::vector<InboundRef>> parseInbox(const std::string& body);

std::string submitOptionsJson(const SubmitOptions& options);  // the X-Demail-Options header value

}  // namespace demail::connector::api
