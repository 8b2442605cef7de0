// Control endpoint (plain HTTP, loopback only): inspect what arrived, inject inbound mail,
// switch faults. Not part of the provider contract; tests and the demo use it.
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <sstream>

#include "provider_server.h"

namespace demail::sim::provider {
namespace {

class ControlHandler : public Poco::Net::HTTPRequestHandler {
  public:
    explicit ControlHandler(ProviderServer& server) : server_(server) {}

    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& resp) override {
        std::string body;
        Poco::StreamCopier::copyToString(req.stream(), body);
        Poco::URI uri(req.getURI());
        std::string account;
        bool blocked = true;
        for (const auto& [k, v] : uri.getQueryParameters()) {
            if (k == "account")
                account = v;
            if (k == "blocked")
                blocked = v != "false" && v != "0";
        }
        const std::string& path = uri.getPath();
        const std::string method = req.getMethod();
        int status = 200;
        std::string out, type = "application/json";
        if (method == "GET" && path == "/control/state") {
            out = server_.state().stateJson();
        } else if (method == "GET" && path == "/control/stats") {
            auto& s = server_.stats();
            FaultConfig f = server_.faults().current();
            std::ostringstream o;
            o << "{\"connections\":" << s.connections << ",\"fullHandshakes\":" << s.fullHandshakes
              << ",\"resumedHandshakes\":" << s.resumedHandshakes
              << ",\"clientSignatures\":" << s.clientSignatures << ",\"requests\":" << s.requests
              << ",\"fault\":\"" << f.mode << "\"}";
            out = o.str();
        } else if (method == "GET" && path == "/control/inbox") {
            out = server_.state().inboxJson(account);
        } else if (method == "GET" && path.rfind("/control/message/", 0) == 0) {
            out = server_.state().messageData(path.substr(17));
            type = "message/rfc822";
            if (out.empty()) {
                status = 404;
                type = "application/json";
                out = "{\"error\":\"not found\"}";
            }
        } else if (method == "POST" && path == "/control/inject") {
            std::string id = server_.state().inject(account, body);
            status = id.empty() ? 404 : 201;
            out = id.empty() ? "{\"error\":\"unknown account\"}" : "{\"id\":\"" + id + "\"}";
        } else if (method == "POST" && path == "/control/block") {
            server_.state().setBlocked(account, blocked);
            out = "{}";
        } else if (method == "POST" && path == "/control/address") {
            std::string address, state = "known";
            DirectoryEntry e;
            for (const auto& [k, v] : uri.getQueryParameters()) {
                if (k == "address")
                    address = v;
                if (k == "state")
                    state = v;
                if (k == "authLevel")
                    e.authLevel = v;
                if (k == "accessOpening")
                    e.accessOpening = v == "true" || v == "1";
            }
            if (address.find('@') == std::string::npos ||
                (state != "known" && state != "closed" && state != "unknown") ||
                (e.authLevel != "normal" && e.authLevel != "high")) {
                status = 400;
                out = "{\"error\":\"address=A&state=known|closed|unknown&authLevel=normal|high\"}";
            } else {
                server_.state().setDirectoryEntry(address, state, e);
                out = "{}";
            }
        } else if (method == "POST" && path == "/control/domain") {
            std::string domain;
            for (const auto& [k, v] : uri.getQueryParameters())
                if (k == "domain")
                    domain = v;
            if (domain.find('.') == std::string::npos) {
                status = 400;
                out = "{\"error\":\"domain=D\"}";
            } else {
                server_.state().addDomain(domain);
                out = "{}";
            }
        } else if (method == "POST" && path == "/control/meldung") {
            std::string address, kind;
            for (const auto& [k, v] : uri.getQueryParameters()) {
                if (k == "address")
                    address = v;
                else if (k == "type")
                    kind = v;
            }
            if (address.empty() || !server_.state().setMeldung(address, kind)) {
                status = 400;
                out = "{\"error\":\"address and a known Meldung type required\"}";
            } else {
                out = "{}";
            }
        } else if (method == "POST" && path == "/control/signing") {
            // ?revoked=true puts the signer's certificate on the CRL (SIGNING_CRL in sim.env).
            bool revoked = false;
            for (const auto& [k, v] : uri.getQueryParameters())
                if (k == "revoked")
                    revoked = v == "true" || v == "1";
            std::string error;
            auto* signer = server_.state().signer();
            if (!signer) {
                status = 409;
                out = "{\"error\":\"no signing key (start the simulator with --state)\"}";
            } else if (!signer->setRevoked(revoked, error)) {
                status = 500;
                out = "{\"error\":\"" + error + "\"}";
            } else {
                out = std::string("{\"revoked\":") + (revoked ? "true" : "false") + "}";
            }
        } else if (method == "POST" && path == "/control/idempotency") {
            bool enabled = true;
            for (const auto& [k, v] : uri.getQueryParameters())
                if (k == "enabled")
                    enabled = v != "false" && v != "0";
            server_.state().setIdempotency(enabled);
            out = std::string("{\"idempotency\":") + (enabled ? "true" : "false") + "}";
        } else if (method == "POST" && path == "/control/fault") {
            try {
                Poco::JSON::Parser parser;
                auto o = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
                FaultConfig f;
                f.mode = o->optValue<std::string>("mode", "none");
                f.status = o->optValue("status", 503);
                f.remaining = o->optValue("count", 0);
                f.stallSeconds = o->optValue("stallSeconds", 20);
                static const char* modes[] = {
                    "none",        "refuse",         "tls_alert", "stall_handshake", "stall",
                    "http_status", "reset_mid_body", "malformed", "blocked_account", "drop_reply"};
                bool known = false;
                for (const char* m : modes)
                    known = known || f.mode == m;
                if (!known) {
                    status = 400;
                    out = "{\"error\":\"unknown mode\"}";
                } else {
                    server_.applyFault(f);
                    out = "{\"mode\":\"" + f.mode + "\"}";
                }
            } catch (const Poco::Exception& e) {
                status = 400;
                out = "{\"error\":\"bad fault JSON\"}";
            }
        } else {
            status = 404;
            out = "{\"error\":\"no such control endpoint\"}";
        }
        resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
        resp.setContentType(type);
        resp.setContentLength(static_cast<std::streamsize>(out.size()));
        resp.send() << out;
    }

  private:
    ProviderServer& server_;
};

class ControlFactory : public Poco::Net::HTTPRequestHandlerFactory {
  public:
    explicit ControlFactory(ProviderServer& server) : server_(server) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
        return new ControlHandler(server_);
    }

  private:
    ProviderServer& server_;
};

}  // namespace

Poco::Net::HTTPRequestHandlerFactory* makeControlHandlerFactory(ProviderServer& server) {
    return new ControlFactory(server);
}

}  // namespace demail::sim::provider
