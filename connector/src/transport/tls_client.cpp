// The shared HTTPS client: TLS policy, keep-alive, resumption, proxy tunnel. Poco exceptions end
// here and become TransportError values. Nothing here knows a provider's paths or formats.
#include "demail/connector/transport/tls_client.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPBasicCredentials.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SecureStreamSocket.h>

#include <fstream>
#include <stdexcept>

namespace demail::connector {

TransportError transportFailure(const std::string& code, const std::string& reason) {
    ErrorKind kind = ErrorKind::Retryable;
    if (code == "tls_server_certificate" || code == "tls_client_certificate_refused" ||
        code == "tls_profile_violation" || code == "credentials" || code == "proxy_auth")
        kind = ErrorKind::OperatorAction;
    return {kind, code, reason, 0};
}

namespace {

// The proxy password: the file's first line. Read when a connection is built, so a changed file
// takes effect with the next connection; never logged.
std::string readProxyPassword(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line))
        throw std::runtime_error("provider.proxy_password_file: cannot read " + path);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
        line.pop_back();
    return line;
}

}  // namespace

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
                        Poco::Net::Session::Ptr resume, const TlsPolicy& policy,
                        TlsCounters& counters, HandshakeInfo& last)
        : HTTPSClientSession(host, port, ctx, resume),
          policy_(policy),
          counters_(counters),
          last_(last) {}

  protected:
    // With a proxy, `address` is the proxy's and Poco's HTTPSClientSession::connect sends
    // "CONNECT host:port" (with Proxy-Authorization: Basic when credentials are set) and starts
    // TLS inside the tunnel with this session's context: the same policy, verification, client
    // key and resumption as a direct connection. Requests inside the tunnel carry neither the
    // proxy prefix nor the proxy's credentials (HTTPSClientSession overrides both).
    void connect(const Poco::Net::SocketAddress& address) override {
        resetThreadHandshakeInfo();
        HTTPSClientSession::connect(address);
        Poco::Net::SecureStreamSocket secure(socket());
        secure.completeHandshake();
        last_ = threadHandshakeInfo();
        if (auto bad = checkNegotiated(last_, policy_)) {
            ++counters_.profileViolations;
            abort();
            throw ProfileViolation(*bad);
        }
    }

  private:
    const TlsPolicy& policy_;
    TlsCounters& counters_;
    HandshakeInfo& last_;
};

TlsClient::TlsClient(ProviderEndpoint endpoint, ClientCredentials& credentials,
                     TransportTimeouts timeouts, Poco::Net::Session::Ptr resume)
    : endpoint_(std::move(endpoint)), timeouts_(timeouts) {
    if (auto err = completeEndpoint(endpoint_))
        throw std::runtime_error(*err);
    const auto profile = findProviderProfile(endpoint_.profile);
    policy_ = findTlsPolicy(profile->tlsPolicy);
    if (!policy_)
        throw std::runtime_error("provider.profile: " + profile->name +
                                 " names an unknown TLS policy " + profile->tlsPolicy);
    url_ = *parseHttpsUrl(endpoint_.url);
    context_ = makeClientContext(endpoint_, credentials, counters_, *policy_);
    session_ = std::make_unique<ProfileHttpsSession>(url_.host, url_.port, context_, resume,
                                                     *policy_, counters_, lastHandshake_);
    if (const auto& proxy = endpoint_.proxy; !proxy.host.empty()) {
        session_->setProxy(proxy.host, proxy.port);
        if (!proxy.user.empty())  // Poco 1.11 default: PROXY_AUTH_HTTP_BASIC
            session_->setProxyCredentials(proxy.user, readProxyPassword(proxy.passwordFile));
    }
    session_->setKeepAlive(true);
    session_->setKeepAliveTimeout(Poco::Timespan(60, 0));
    // Poco bounds connect *and* handshake by the connection timeout.
    session_->setTimeout(timeouts_.connect, timeouts_.io, timeouts_.io);
}

TlsClient::~TlsClient() = default;

void TlsClient::disconnect() {
    std::lock_guard lock(mutex_);
    session_->reset();  // closes the socket; the TLS session is kept for resumption
}

Poco::Net::Session::Ptr TlsClient::tlsSession() const {
    std::lock_guard lock(mutex_);
    return session_->sslSession();
}

int TlsClient::proxyConnectStatus() const {
    // The same CONNECT once more on a plain connection, only to read its status line.
    const auto& proxy = endpoint_.proxy;
    try {
        Poco::Net::HTTPClientSession s(proxy.host, proxy.port);
        s.setTimeout(timeouts_.connect, timeouts_.io, timeouts_.io);
        const std::string target = url_.host + ":" + std::to_string(url_.port);
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_CONNECT, target,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
        req.set("Host", target);
        if (!proxy.user.empty())
            Poco::Net::HTTPBasicCredentials(proxy.user, readProxyPassword(proxy.passwordFile))
                .proxyAuthenticate(req);
        s.sendRequest(req);
        Poco::Net::HTTPResponse resp;
        s.receiveResponse(resp);
        const int status = resp.getStatus();
        s.reset();
        return status;
    } catch (const std::exception&) {
        return 0;
    }
}

std::string TlsClient::peerName() const {
    if (endpoint_.proxy.host.empty())
        return endpoint_.url;
    return endpoint_.url + " via proxy " + endpoint_.proxy.host + ":" +
           std::to_string(endpoint_.proxy.port);
}

HandshakeInfo TlsClient::lastHandshake() const {
    std::lock_guard lock(mutex_);
    return lastHandshake_;
}

Result<TlsClient::Response> TlsClient::request(
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
                return transportFailure("short_body",
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
            return transportFailure(
                "truncated_reply",
                "provider reply truncated after " + std::to_string(r.body.size()) + " bytes");
        }
        return r;
    } catch (const ProfileViolation& e) {
        session_->reset();
        return transportFailure("tls_profile_violation", e.what());
    } catch (const Poco::Net::ConnectionRefusedException&) {
        session_->reset();
        return transportFailure("connect_refused", "connection refused by " + peerName());
    } catch (const Poco::Net::HTTPException& e) {
        // Poco 1.11 throws this when the proxy answers CONNECT with anything but 200 and keeps
        // only the reason phrase, which is free text (tinyproxy says "Unauthorized" for 407).
        session_->reset();
        if (endpoint_.proxy.host.empty() ||
            e.message().find("proxy connection") == std::string::npos)
            return transportFailure("io_error", e.displayText());
        const int status = proxyConnectStatus();
        // 407 asks for credentials; tinyproxy answers wrong ones with 401.
        if (status == 407 || status == 401)
            return transportFailure(
                "proxy_auth", "proxy " + endpoint_.proxy.host + ":" +
                                  std::to_string(endpoint_.proxy.port) +
                                  " refused the CONNECT tunnel (" + std::to_string(status) + " " +
                                  (endpoint_.proxy.user.empty()
                                       ? "authentication required: set [provider] proxy_user and "
                                         "proxy_password_file)"
                                       : "credentials of proxy_user " + endpoint_.proxy.user +
                                             " refused: check proxy_password_file)"));
        return transportFailure(
            "proxy_refused",
            "proxy " + endpoint_.proxy.host + ":" + std::to_string(endpoint_.proxy.port) +
                " refused the CONNECT tunnel to " + url_.host + ":" + std::to_string(url_.port) +
                ": " + (status ? std::to_string(status) + " " : std::string{}) + e.message());
    } catch (const Poco::TimeoutException&) {
        session_->reset();
        return transportFailure("timeout", "timeout talking to " + peerName());
    } catch (const Poco::Net::SSLException& e) {
        session_->reset();
        std::string text = e.displayText();
        const HandshakeInfo& info = threadHandshakeInfo();
        if (info.verifyError != 0)
            return transportFailure("tls_server_certificate",
                                    describeHandshakeFailure(endpoint_, text, *policy_));
        for (const char* alert :
             {"alert bad certificate", "alert unknown ca", "alert certificate expired",
              "alert certificate revoked", "alert access denied", "alert certificate unknown",
              "alert certificate required"})
            if (text.find(alert) != std::string::npos)
                return transportFailure("tls_client_certificate_refused",
                                        "server refused the client certificate: " + text);
        if (info.completed)  // this connection's handshake had succeeded: an I/O error
            return transportFailure("tls_io", "TLS connection failed: " + text);
        return transportFailure("tls_handshake",
                                describeHandshakeFailure(endpoint_, text, *policy_));
    } catch (const Poco::Net::ConnectionResetException& e) {
        session_->reset();
        return transportFailure("connection_reset", "connection reset: " + e.displayText());
    } catch (const Poco::Net::MessageException& e) {
        session_->reset();
        return transportFailure("malformed_reply", "malformed HTTP reply: " + e.displayText());
    } catch (const Poco::Exception& e) {
        session_->reset();
        return transportFailure("io_error", e.displayText());
    } catch (const std::exception& e) {
        session_->reset();
        return transportFailure("io_error", e.what());
    }
}

}  // namespace demail::connector
