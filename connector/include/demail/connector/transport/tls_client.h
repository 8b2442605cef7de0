// The HTTPS client every HTTPS binding shares: one keep-alive connection with the profile's TLS
// policy enforced (tls_profile.h), TLS session resumption (the card signs once per new TLS
// session, not once per message), an optional HTTP proxy (CONNECT tunnel), counters, and transport
// failures as TransportError values. It knows no provider API: paths, headers and bodies come from
// the binding (json_api_binding.h is one).
#pragma once

#include <Poco/Net/Context.h>
#include <Poco/Net/Session.h>
#include <Poco/Timespan.h>

#include <cstdint>
#include <istream>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "demail/connector/transport/client_credentials.h"
#include "demail/connector/transport/provider_endpoint.h"
#include "demail/connector/transport/provider_transport.h"
#include "demail/connector/transport/tls_profile.h"

namespace demail::connector {

struct TransportTimeouts {
    Poco::Timespan connect{10, 0};  // TCP connect
    Poco::Timespan io{30, 0};       // handshake, each send and each read
};

// More request body, copied from a stream after the in-memory part (exactly `length` bytes).
struct StreamedTail {
    std::istream* stream = nullptr;
    std::uint64_t length = 0;
};

// Failures without an HTTP response: all retryable except those naming credentials, the TLS
// policy or the proxy's authentication, which need an operator.
TransportError transportFailure(const std::string& code, const std::string& reason);

class ProfileHttpsSession;  // internal: HTTPSClientSession with the post-handshake check

class TlsClient {
  public:
    // Throws std::runtime_error (one line) when the endpoint, its profile's TLS policy, the
    // credentials or the proxy password file are unusable. `resume`: a TLS session another
    // connection established with the same credentials; the first connection then resumes it
    // instead of a full handshake, which costs no signature on the card (TLS 1.2 resumption
    // carries the client's authentication over).
    TlsClient(ProviderEndpoint endpoint, ClientCredentials& credentials,
              TransportTimeouts timeouts = {}, Poco::Net::Session::Ptr resume = nullptr);
    ~TlsClient();

    struct Response {
        int status = 0;
        std::string body;
    };
    // Replies are untrusted input (M8): JSON replies are capped at 1 MiB, a fetched message at
    // 64 MiB (above any provider's message size limit); a longer reply is an error
    // ("reply_too_large": retryable for JSON, permanent for a fetched message).
    static constexpr std::size_t kMaxJsonReply = 1u << 20;
    static constexpr std::size_t kMaxFetchReply = 64u << 20;

    // One request; on success the HTTP status and body (any status), else a transport error.
    // `path` is relative to the endpoint URL's path.
    Result<Response> request(const std::string& method, const std::string& path,
                             const std::string& contentType, const std::string& body,
                             const std::vector<std::pair<std::string, std::string>>& headers = {},
                             StreamedTail tail = {}, std::size_t maxReply = kMaxJsonReply);

    // Drops the TCP/TLS connection but keeps the TLS session for resumption.
    void disconnect();
    const TlsCounters& counters() const { return counters_; }
    // What the last handshake negotiated (empty before the first one).
    HandshakeInfo lastHandshake() const;
    // The TLS session of the current or last connection, for `resume` (null before one).
    Poco::Net::Session::Ptr tlsSession() const;
    const ProviderEndpoint& endpoint() const { return endpoint_; }

  private:
    std::string peerName() const;    // the URL, and the proxy when there is one (for reasons)
    int proxyConnectStatus() const;  // the proxy's status for our CONNECT, 0 if unknown
    ProviderEndpoint endpoint_;
    const TlsPolicy* policy_;
    ParsedUrl url_;
    TransportTimeouts timeouts_;
    TlsCounters counters_;
    Poco::Net::Context::Ptr context_;
    std::unique_ptr<ProfileHttpsSession> session_;
    HandshakeInfo lastHandshake_;
    mutable std::mutex mutex_;  // one request at a time on the keep-alive connection
};

}  // namespace demail::connector
