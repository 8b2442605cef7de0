// HTTPS side of the simulator: the server TLS profile (same as the client's: TLS 1.2 only,
// ECDHE-RSA-AES256-SHA384, P-521, client certificate required) and the API handlers with fault
// injection.
#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/X509Certificate.h>
#include <Poco/URI.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "provider_server.h"

namespace demail::sim::provider {
namespace {

ServerStats* g_stats = nullptr;  // one server per process; read by the OpenSSL callbacks

void onServerMessage(int writeP, int, int contentType, const void* buf, size_t len, SSL*, void*) {
    if (writeP || contentType != SSL3_RT_HANDSHAKE || len == 0 || !g_stats)
        return;
    if (static_cast<const unsigned char*>(buf)[0] == SSL3_MT_CERTIFICATE_VERIFY)
        ++g_stats->clientSignatures;
}

void onServerInfo(const SSL* ssl, int where, int) {
    if (!(where & SSL_CB_HANDSHAKE_DONE) || !g_stats)
        return;
    if (SSL_session_reused(const_cast<SSL*>(ssl)))
        ++g_stats->resumedHandshakes;
    else
        ++g_stats->fullHandshakes;
}

std::string errorJson(const std::string& code, const std::string& message) {
    return "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}}";
}

void sendReply(Poco::Net::HTTPServerResponse& resp, const ApiReply& r) {
    resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status));
    for (const auto& [n, v] : r.headers)
        resp.set(n, v);
    if (r.status == 204) {
        resp.setContentLength(0);
        resp.send();
        return;
    }
    resp.setContentType(r.contentType);
    resp.setContentLength(static_cast<std::streamsize>(r.body.size()));
    resp.send().write(r.body.data(), static_cast<std::streamsize>(r.body.size()));
}

void resetConnection(Poco::Net::HTTPServerRequest& req);

// Sends half the body, then aborts the TCP connection with a RST: the fd is replaced (dup2) so
// Poco's later close cannot hit a descriptor number reused by another connection.
void sendAndReset(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
                  const ApiReply& r) {
    resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status));
    resp.setContentType(r.contentType);
    resp.setContentLength(static_cast<std::streamsize>(r.body.size()));
    std::ostream& out = resp.send();
    out.write(r.body.data(), static_cast<std::streamsize>(r.body.size() / 2));
    out.flush();
    resetConnection(req);
}

void resetConnection(Poco::Net::HTTPServerRequest& req) {
    auto& impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl&>(req);
    int fd = static_cast<int>(impl.socket().impl()->sockfd());
    struct linger lg {
        1, 0
    };
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    // The replacement is one end of a closed socketpair: reads see EOF at once, so Poco ends
    // this connection quickly instead of polling a never-connected socket.
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0) {
        ::dup2(pair[0], fd);  // closes the TCP socket: with linger 0 that sends a RST
        ::close(pair[0]);
        ::close(pair[1]);
    }
}

// The request body, or nothing with `incomplete` set when the connection ended before the
// Content-Length the client announced: such a request is no request at all, as for any real HTTP
// server, and must change nothing (a client killed mid-body retries with the whole body under
// the same Idempotency-Key, and that retry must not meet a half message remembered for the key).
std::string readBody(Poco::Net::HTTPServerRequest& req, std::size_t limit, bool& tooLarge,
                     bool& incomplete) {
    std::string body;
    std::istream& in = req.stream();
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        body.append(buf, static_cast<size_t>(in.gcount()));
        if (body.size() > limit) {
            tooLarge = true;
            return {};
        }
    }
    incomplete =
        req.hasContentLength() && static_cast<Poco::Int64>(body.size()) != req.getContentLength64();
    if (incomplete)
        return {};
    return body;
}

class ApiHandler : public Poco::Net::HTTPRequestHandler {
  public:
    explicit ApiHandler(ProviderServer& server) : server_(server) {}

    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
        ++server_.stats().requests;
        try {
            handle(req, resp);
        } catch (const Poco::Exception& e) {
            std::fprintf(stderr, "event=request_failed uri=%s error=\"%s\"\n", req.getURI().c_str(),
                         e.displayText().c_str());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "event=request_failed uri=%s error=\"%s\"\n", req.getURI().c_str(),
                         e.what());
        }
    }

  private:
    void handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
        std::vector<std::string> bound;
        LeaseClient client;
        try {
            auto& impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl&>(req);
            Poco::Net::SecureStreamSocket secure(impl.socket());
            if (!secure.havePeerCertificate())
                return sendReply(resp, {401,
                                        "application/json",
                                        errorJson("certificate_unknown", "no client certificate"),
                                        {}});
            Poco::Net::X509Certificate cert = secure.peerCertificate();
            X509* x = const_cast<X509*>(cert.certificate());
            auto [subject, fingerprint] = identity(x);
            bound = server_.state().boundAccounts(subject, fingerprint);
            client = {fingerprint, subject + " (sha256 " + fingerprint.substr(0, 16) + ")"};
            if (bound.empty())
                return sendReply(
                    resp, {403,
                           "application/json",
                           errorJson("certificate_unknown", "no accounts bound to " + subject),
                           {}});
        } catch (const Poco::Exception& e) {
            return sendReply(resp, {401,
                                    "application/json",
                                    errorJson("certificate_unknown", "no client certificate"),
                                    {}});
        }

        FaultConfig fault;
        // drop_reply hits submissions only, so a look-up before the submission is not the one
        // that loses its reply.
        const bool submission =
            req.getMethod() == "POST" && Poco::URI(req.getURI()).getPath() == "/v1/messages";
        std::string mode = submission ? server_.faults().take({"drop_reply"}, &fault) : "";
        if (mode.empty())
            mode = server_.faults().take(
                {"stall", "http_status", "malformed", "blocked_account", "reset_mid_body"}, &fault);
        if (mode == "stall")
            server_.faults().stall(fault.stallSeconds);
        if (mode == "http_status") {
            ApiReply r{fault.status,
                       "application/json",
                       errorJson("http_" + std::to_string(fault.status), "injected fault"),
                       {}};
            if (fault.status == 429 || fault.status == 503)
                r.headers.emplace_back("Retry-After", "1");
            return sendReply(resp, r);
        }
        if (mode == "malformed")
            return sendReply(resp, {200, "application/json", "{\"accounts\": [{\"addr", {}});
        if (mode == "blocked_account")
            return sendReply(resp, {403,
                                    "application/json",
                                    errorJson("account_blocked", "account blocked by provider"),
                                    {}});

        ApiReply reply = route(req, bound, client);
        // One line per request; never the message body.
        std::fprintf(stdout, "event=request method=%s path=%s status=%d account=%s fault=%s\n",
                     req.getMethod().c_str(), Poco::URI(req.getURI()).getPath().c_str(),
                     reply.status, req.get("X-Demail-Account", "-").c_str(),
                     mode.empty() ? "none" : mode.c_str());
        std::fflush(stdout);
        if (mode == "reset_mid_body" && reply.body.size() >= 2)
            return sendAndReset(req, resp, reply);
        if (mode == "drop_reply")  // stored, and not one byte of the answer
            return resetConnection(req);
        sendReply(resp, reply);
    }

    static std::pair<std::string, std::string> identity(X509* x) {
        BIO* bio = BIO_new(BIO_s_mem());
        X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
        char* data = nullptr;
        long len = BIO_get_mem_data(bio, &data);
        std::string subject(data, static_cast<size_t>(len));
        BIO_free(bio);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdLen = 0;
        X509_digest(x, EVP_sha256(), md, &mdLen);
        std::string fp;
        char hex[3];
        for (unsigned i = 0; i < mdLen; ++i) {
            std::snprintf(hex, sizeof hex, "%02x", md[i]);
            fp += hex;
        }
        return {subject, fp};
    }

    ApiReply route(Poco::Net::HTTPServerRequest& req, const std::vector<std::string>& bound,
                   const LeaseClient& client) {
        Poco::URI uri(req.getURI());
        const std::string& path = uri.getPath();
        const std::string method = req.getMethod();
        std::vector<std::string> seg;
        uri.getPathSegments(seg);
        if (method == "GET" && path == "/v1/accounts")
            return server_.state().listAccounts(bound);
        if (method == "POST" && path == "/v1/messages") {
            bool tooLarge = false, incomplete = false;
            std::string body = readBody(req, ProviderState::kMaxMessageSize, tooLarge, incomplete);
            if (incomplete)
                return {400,
                        "application/json",
                        errorJson("incomplete_body", "the body ended before its Content-Length"),
                        {{"Connection", "close"}}};
            if (tooLarge)
                return {413,
                        "application/json",
                        errorJson("too_large", "message exceeds 20 MiB"),
                        {{"Connection", "close"}}};
            SubmitRequest s;
            s.idempotencyKey = req.get("Idempotency-Key", "");
            s.account = req.get("X-Demail-Account", "");
            s.optionsJson = req.get("X-Demail-Options", "");
            s.message = std::move(body);
            return server_.state().submit(bound, s);
        }
        if (method == "GET" && path == "/v1/messages") {  // sent-items look-up by private-id
            std::string account, privateId;
            for (const auto& [k, v] : uri.getQueryParameters()) {
                if (k == "account")
                    account = v;
                if (k == "privateId")
                    privateId = v;
            }
            return server_.state().findSubmissions(bound, account, privateId);
        }
        if (method == "GET" && path == "/v1/inbox") {
            std::string account;
            for (const auto& [k, v] : uri.getQueryParameters())
                if (k == "account")
                    account = v;
            return server_.state().listInbox(bound, client, account);
        }
        if (method == "GET" && seg.size() == 3 && seg[0] == "v1" && seg[1] == "addresses")
            return server_.state().lookupAddress(bound, seg[2]);
        if (method == "GET" && seg.size() == 3 && seg[0] == "v1" && seg[1] == "inbox")
            return server_.state().fetch(bound, client, seg[2]);
        if (method == "POST" && seg.size() == 4 && seg[0] == "v1" && seg[1] == "inbox" &&
            seg[3] == "ack") {
            bool tooLarge = false, incomplete = false;
            readBody(req, 4096, tooLarge, incomplete);
            if (incomplete)
                return {400,
                        "application/json",
                        errorJson("incomplete_body", "the body ended before its Content-Length"),
                        {{"Connection", "close"}}};
            return server_.state().acknowledge(bound, client, seg[2]);
        }
        return {404, "application/json", errorJson("not_found", "no such endpoint"), {}};
    }

    ProviderServer& server_;
};

class ApiFactory : public Poco::Net::HTTPRequestHandlerFactory {
  public:
    explicit ApiFactory(ProviderServer& server) : server_(server) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
        return new ApiHandler(server_);
    }

  private:
    ProviderServer& server_;
};

}  // namespace

Poco::Net::HTTPRequestHandlerFactory* makeApiHandlerFactory(ProviderServer& server) {
    return new ApiFactory(server);
}

Poco::Net::Context::Ptr makeServerContext(const ServerConfig& config, ServerStats& stats) {
    Poco::Net::Context::Params params;
    params.privateKeyFile = config.key;
    params.certificateFile = config.cert;
    params.caLocation = config.clientCa;
    params.verificationMode = Poco::Net::Context::VERIFY_STRICT;  // client certificate required
    params.loadDefaultCAs = false;
    params.cipherList = "ECDHE-RSA-AES256-SHA384";
    params.ecdhCurve = "P-521";
    Poco::Net::Context::Ptr ctx =
        new Poco::Net::Context(Poco::Net::Context::TLSV1_2_SERVER_USE, params);
    ctx->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                          Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1 |
                          Poco::Net::Context::PROTO_TLSV1_3);
    // Poco would otherwise match the client certificate's names against the peer IP address.
    ctx->enableExtendedCertificateVerification(false);
    ctx->enableSessionCache(true, "demail-sim-provider");
    ctx->setSessionTimeout(3600);
    SSL_CTX* s = ctx->sslContext();
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(s, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(s, "ECDHE-RSA-AES256-SHA384") != 1 ||
        SSL_CTX_set1_groups_list(s, "P-521") != 1)
        throw Poco::Exception("OpenSSL refused the TLS profile");
    g_stats = &stats;
    SSL_CTX_set_msg_callback(s, onServerMessage);
    SSL_CTX_set_info_callback(s, onServerInfo);
    return ctx;
}

}  // namespace demail::sim::provider
