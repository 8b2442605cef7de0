// ProviderTransport over HTTPS (docs/provider-api.md). Poco exceptions end here and become
// TransportError values. To bind a real provider's API, change this file and
// provider_api_binding.cpp; nothing else knows the wire format.
#include "demail/connector/transport/https_provider_transport.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <sstream>
#include <stdexcept>

#include "demail/connector/transport/provider_api_binding.h"

namespace demail::connector {

// Thrown from connect() when the handshake succeeded but negotiated something outside the
// profile; caught in request() and turned into an operator-action error.
class ProfileViolation : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// HTTPSClientSession that checks the negotiated parameters after every new connection, before
// the first byte of a request is sent. Keep-alive and the TLS session (for resumption) live here.
class ProfileHttpsSession : public Poco::Net::HTTPSClientSession {
  public:
    ProfileHttpsSession(const std::string& host, Poco::UInt16 port, Poco::Net::Context::Ptr ctx,
                        Poco::Net::Session::Ptr resume, TlsCounters& counters, HandshakeInfo& last)
        : HTTPSClientSession(host, port, ctx, resume), counters_(counters), last_(last) {}

  protected:
    void connect(const Poco::Net::SocketAddress& address) override {
        resetThreadHandshakeInfo();
        HTTPSClientSession::connect(address);
        Poco::Net::SecureStreamSocket secure(socket());
        secure.completeHandshake();
        last_ = threadHandshakeInfo();
        if (auto bad = checkNegotiated(last_)) {
            ++counters_.profileViolations;
            abort();
            throw ProfileViolation(*bad);
        }
    }

  private:
    TlsCounters& counters_;
    HandshakeInfo& last_;
};

HttpsProviderTransport::HttpsProviderTransport(ProviderEndpoint endpoint,
                                               ClientCredentials& credentials,
                                               TransportTimeouts timeouts,
                                               Poco::Net::Session::Ptr resume)
    : endpoint_(std::move(endpoint)), timeouts_(timeouts) {
    if (auto err = completeEndpoint(endpoint_))
        throw std::runtime_error(*err);
    url_ = *parseHttpsUrl(endpoint_.url);
    context_ = makeClientContext(endpoint_, credentials, counters_);
    session_ = std::make_unique<ProfileHttpsSession>(url_.host, url_.port, context_, resume,
                                                     counters_, lastHandshake_);
    session_->setKeepAlive(true);
    session_->setKeepAliveTimeout(Poco::Timespan(60, 0));
    // Poco bounds connect *and* handshake by the connection timeout.
    session_->setTimeout(timeouts_.connect, timeouts_.io, timeouts_.io);
}

HttpsProviderTransport::~HttpsProviderTransport() = default;

void HttpsProviderTransport::disconnect() {
    std::lock_guard lock(mutex_);
    session_->reset();  // closes the socket; the TLS session is kept for resumption
}

Poco::Net::Session::Ptr HttpsProviderTransport::tlsSession() const {
    std::lock_guard lock(mutex_);
    return session_->sslSession();
}

HandshakeInfo HttpsProviderTransport::lastHandshake() const {
    std::lock_guard lock(mutex_);
    return lastHandshake_;
}

Result<HttpsProviderTransport::Response> HttpsProviderTransport::request(
    const std::string& method, const std::string& path, const std::string& contentType,
    const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers,
    StreamedTail tail, std::size_t maxReply) {
    std::lock_guard lock(mutex_);
    try {
        // A kept-alive connection that has become readable while idle was closed by the
        // provider (servers close idle connections, often sooner than our keep-alive timeout):
        // a request sent on it fails with "No message received". Drop it; the request goes
        // out on a new connection that resumes the TLS session (no card signature).
        if (session_->connected() &&
            session_->socket().poll(Poco::Timespan(0), Poco::Net::Socket::SELECT_READ |
                                                           Poco::Net::Socket::SELECT_ERROR)) {
            session_->reset();
        }
        Poco::Net::HTTPRequest req(method, url_.basePath + path, Poco::Net::HTTPMessage::HTTP_1_1);
        req.setKeepAlive(true);
        req.set("Accept", "application/json");
        for (const auto& [name, value] : headers)
            req.set(name, value);
        if (!body.empty() || method == Poco::Net::HTTPRequest::HTTP_POST) {
            req.setContentType(contentType.empty() ? "application/json" : contentType);
            req.setContentLength(static_cast<std::streamsize>(body.size() + tail.length));
        }
        std::ostream& out = session_->sendRequest(req);
        out.write(body.data(), static_cast<std::streamsize>(body.size()));
        if (tail.stream) {
            char chunk[64 * 1024];
            std::uint64_t left = tail.length;
            while (left > 0 && out) {
                tail.stream->read(chunk, static_cast<std::streamsize>(
                                             std::min<std::uint64_t>(left, sizeof chunk)));
                const auto n = tail.stream->gcount();
                if (n <= 0)
                    break;
                out.write(chunk, n);
                left -= static_cast<std::uint64_t>(n);
            }
            if (left > 0) {  // the server waits for bytes that will not come: drop the connection
                session_->reset();
                return api::connectFailure("short_body",
                                           out ? "the message ended " + std::to_string(left) +
                                                     " bytes before its declared length"
                                               : "connection lost while sending the message");
            }
        }
        Poco::Net::HTTPResponse resp;
        std::istream& in = session_->receiveResponse(resp);
        Response r;
        r.status = resp.getStatus();
        const auto tooLarge = [&] {
            session_->reset();  // the rest of the reply is never read
            return TransportError{
                maxReply == kMaxJsonReply ? ErrorKind::Retryable : ErrorKind::Permanent,
                "reply_too_large",
                "provider reply larger than " + std::to_string(maxReply) + " bytes refused",
                r.status};
        };
        if (resp.hasContentLength() && resp.getContentLength64() >= 0 &&
            static_cast<std::uint64_t>(resp.getContentLength64()) > maxReply)
            return tooLarge();
        char chunk[64 * 1024];
        while (in) {
            in.read(chunk, sizeof chunk);
            const auto n = static_cast<std::size_t>(in.gcount());
            if (n == 0)
                break;
            if (r.body.size() + n > maxReply)
                return tooLarge();
            r.body.append(chunk, n);
        }
        if (resp.hasContentLength() &&
            static_cast<std::streamsize>(r.body.size()) != resp.getContentLength()) {
            session_->reset();
            return api::connectFailure(
                "truncated_reply",
                "provider reply truncated after " + std::to_string(r.body.size()) + " bytes");
        }
        return r;
    } catch (const ProfileViolation& e) {
        session_->reset();
        return api::connectFailure("tls_profile_violation", e.what());
    } catch (const Poco::Net::ConnectionRefusedException&) {
        session_->reset();
        return api::connectFailure("connect_refused", "connection refused by " + endpoint_.url);
    } catch (const Poco::TimeoutException&) {
        session_->reset();
        return api::connectFailure("timeout", "timeout talking to " + endpoint_.url);
    } catch (const Poco::Net::SSLException& e) {
        session_->reset();
        std::string text = e.displayText();
        const HandshakeInfo& info = threadHandshakeInfo();
        if (info.verifyError != 0)
            return api::connectFailure("tls_server_certificate",
                                       describeHandshakeFailure(endpoint_, text));
        for (const char* alert :
             {"alert bad certificate", "alert unknown ca", "alert certificate expired",
              "alert certificate revoked", "alert access denied", "alert certificate unknown",
              "alert certificate required"})
            if (text.find(alert) != std::string::npos)
                return api::connectFailure("tls_client_certificate_refused",
                                           "server refused the client certificate: " + text);
        if (info.completed)  // this connection's handshake had succeeded: an I/O error
            return api::connectFailure("tls_io", "TLS connection failed: " + text);
        return api::connectFailure("tls_handshake", describeHandshakeFailure(endpoint_, text));
    } catch (const Poco::Net::ConnectionResetException& e) {
        session_->reset();
        return api::connectFailure("connection_reset", "connection reset: " + e.displayText());
    } catch (const Poco::Net::MessageException& e) {
        session_->reset();
        return api::connectFailure("malformed_reply", "malformed HTTP reply: " + e.displayText());
    } catch (const Poco::Exception& e) {
        session_->reset();
        return api::connectFailure("io_error", e.displayText());
    } catch (const std::exception& e) {
        session_->reset();
        return api::connectFailure("io_error", e.what());
    }
}

Result<Done> HttpsProviderTransport::open() {
    auto accounts = listAccounts();
    if (!accounts)
        return accounts.error();
    return Done{};
}

Result<std::vector<Account>> HttpsProviderTransport::listAccounts() {
    auto r = request("GET", "/v1/accounts", "", "");
    if (!r)
        return r.error();
    if (r.value().status != 200)
        return api::mapHttpError(r.value().status, r.value().body);
    return api::parseAccounts(r.value().body);
}

Result<SubmitReceipt> HttpsProviderTransport::submit(const Submission& s) {
    if (s.idempotencyKey.empty())
        return TransportError{ErrorKind::Permanent, "no_idempotency_key",
                              "submission without idempotency key", 0};
    auto r = request("POST", "/v1/messages", "message/rfc822", s.rfc5322,
                     {{"Idempotency-Key", s.idempotencyKey},
                      {"X-Demail-Account", s.account},
                      {"X-Demail-Options", api::submitOptionsJson(s.options)}},
                     {s.bodyStream, s.bodyStream ? s.bodyLength : 0});
    if (!r)
        return r.error();
    int status = r.value().status;
    if (status != 200 && status != 201)
        return api::mapHttpError(status, r.value().body);
    return api::parseSubmitReceipt(status, r.value().body);
}

Result<std::vector<InboundRef>> HttpsProviderTransport::listInbound(const std::string& account) {
    std::string encoded;
    Poco::URI::encode(account, "&=+?#/", encoded);
    auto r = request("GET", "/v1/inbox?account=" + encoded, "", "");
    if (!r)
        return r.error();
    if (r.value().status != 200)
        return api::mapHttpError(r.value().status, r.value().body);
    return api::parseInbox(r.value().body);
}

namespace {
bool validId(const std::string& id) {
    return !id.empty() && id.size() <= 200 &&
           id.find_first_not_of(
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
               std::string::npos;
}
TransportError badId(const std::string& id) {
    return {ErrorKind::Permanent, "bad_id", "invalid inbound message id '" + id + "'", 0};
}
}  // namespace

Result<std::string> HttpsProviderTransport::fetch(const std::string& id) {
    if (!validId(id))
        return badId(id);
    auto r = request("GET", "/v1/inbox/" + id, "", "", {{"Accept", "message/rfc822"}}, {},
                     kMaxFetchReply);
    if (!r)
        return r.error();
    if (r.value().status != 200)
        return api::mapHttpError(r.value().status, r.value().body);
    return r.value().body;
}

Result<Done> HttpsProviderTransport::acknowledge(const std::string& id) {
    if (!validId(id))
        return badId(id);
    auto r = request("POST", "/v1/inbox/" + id + "/ack", "application/json", "{}");
    if (!r)
        return r.error();
    if (r.value().status != 200 && r.value().status != 204)
        return api::mapHttpError(r.value().status, r.value().body);
    return Done{};
}

}  // namespace demail::connector
