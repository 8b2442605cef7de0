#include "demail/gateway/health.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <cctype>
#include <sstream>

namespace demail::gateway {

void HealthState::set(const std::string& component, bool ready, const std::string& reason,
                      const std::string& condition) {
    std::lock_guard lock(mutex_);
    Component& c = components_[component];
    std::string keep = (!ready && condition.empty() && !c.ready) ? c.condition : condition;
    c = Component{ready, reason, ready ? std::string() : std::move(keep)};
}

void HealthState::setCertificateNotAfter(std::chrono::system_clock::time_point notAfter) {
    std::lock_guard lock(mutex_);
    notAfter_ = notAfter;
}

void HealthState::setInbound(std::size_t deferred, std::size_t quarantined) {
    std::lock_guard lock(mutex_);
    inbound_ = Inbound{deferred, quarantined};
}

namespace {

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

void HealthState::setAccounts(const std::vector<std::string>& listed) {
    std::lock_guard lock(mutex_);
    std::map<std::string, Account> next;
    for (const auto& a : listed)
        next[lower(a)] = accounts_[lower(a)];
    // A paused account the provider no longer lists (not bound to our card any more) still
    // holds mail: it stays visible.
    for (auto& [name, a] : accounts_)
        if (!a.sendingPaused.empty())
            next.emplace(name, a);
    accounts_ = std::move(next);
}

void HealthState::setAccountSending(const std::string& account, const std::string& pausedReason) {
    std::lock_guard lock(mutex_);
    accounts_[lower(account)].sendingPaused = pausedReason;
}

void HealthState::setAccountListing(const std::string& account, const std::string& failure) {
    std::lock_guard lock(mutex_);
    accounts_[lower(account)].listingFailed = failure;
}

std::map<std::string, HealthState::Account> HealthState::accounts() const {
    std::lock_guard lock(mutex_);
    return accounts_;
}

std::optional<std::chrono::system_clock::time_point> HealthState::certificateNotAfter() const {
    std::lock_guard lock(mutex_);
    return notAfter_;
}

std::optional<HealthState::Inbound> HealthState::inbound() const {
    std::lock_guard lock(mutex_);
    return inbound_;
}

std::map<std::string, HealthState::Component> HealthState::components() const {
    std::lock_guard lock(mutex_);
    return components_;
}

bool HealthState::ready() const {
    std::lock_guard lock(mutex_);
    if (components_.empty())
        return false;
    for (const auto& [name, c] : components_)
        if (!c.ready)
            return false;
    return true;
}

std::string HealthState::notReadySummary() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& [name, c] : components_) {
        if (c.ready)
            continue;
        if (!out.empty())
            out += "; ";
        out += name + ": " + c.reason;
    }
    return out;
}

namespace {

void gaugeHeader(std::ostream& out, const char* name, const char* help) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n";
}

}  // namespace

std::string healthMetricsText(const HealthState& health,
                              std::chrono::system_clock::time_point now) {
    const auto components = health.components();
    std::ostringstream out;
    gaugeHeader(out, "demail_ready", "1 when every component is ready (as /readyz)");
    out << "demail_ready " << (health.ready() ? 1 : 0) << "\n";
    gaugeHeader(out, "demail_component_ready",
                "1 when the component is ready; /readyz and /status say why not");
    for (const auto& [name, c] : components)  // names are fixed words of the daemon: no escaping
        out << "demail_component_ready{component=\"" << name << "\"} " << (c.ready ? 1 : 0) << "\n";
    const auto card = components.find("card");
    const auto cardIs = [&](const char* condition) {
        return card != components.end() && !card->second.ready &&
                       card->second.condition == condition
                   ? 1
                   : 0;
    };
    gaugeHeader(out, "demail_card_absent", "1 while no card (or no reader, no pcscd) is seen");
    out << "demail_card_absent " << cardIs(kConditionAbsent) << "\n";
    gaugeHeader(out, "demail_card_pin_rejected",
                "1 while the card's PIN was rejected or is blocked: only the operator can fix it");
    out << "demail_card_pin_rejected " << cardIs(kConditionPinRejected) << "\n";
    if (const auto notAfter = health.certificateNotAfter()) {
        gaugeHeader(out, "demail_certificate_expiry_seconds",
                    "Seconds until the client certificate expires (negative: expired)");
        out << "demail_certificate_expiry_seconds "
            << std::chrono::duration_cast<std::chrono::seconds>(*notAfter - now).count() << "\n";
    }
    if (const auto inbound = health.inbound()) {
        gaugeHeader(out, "demail_inbound_deferred",
                    "Inbound items the last pass left at the provider (delivery failed)");
        out << "demail_inbound_deferred " << inbound->deferred << "\n";
        gaugeHeader(out, "demail_inbound_quarantined", "Inbound items held in quarantine now");
        out << "demail_inbound_quarantined " << inbound->quarantined << "\n";
    }
    if (const auto accounts = health.accounts(); !accounts.empty()) {
        gaugeHeader(out, "demail_account_paused",
                    "1 while this De-Mail account's sending is paused (blocked at the provider, "
                    "not bound to the certificate); the other accounts go on");
        for (const auto& [name, a] : accounts)
            out << "demail_account_paused{account=\"" << escapeLabel(name) << "\"} "
                << (a.sendingPaused.empty() ? 0 : 1) << "\n";
        gaugeHeader(out, "demail_account_listing_failed",
                    "1 when the last inbox listing of this De-Mail account was refused");
        for (const auto& [name, a] : accounts)
            out << "demail_account_listing_failed{account=\"" << escapeLabel(name) << "\"} "
                << (a.listingFailed.empty() ? 0 : 1) << "\n";
    }
    return out.str();
}

std::string statusJson(const HealthState& health, const Metrics& metrics) {
    Poco::JSON::Object root;
    root.set("ready", health.ready());
    Poco::JSON::Object components;
    for (const auto& [name, c] : health.components()) {
        Poco::JSON::Object o;
        o.set("ready", c.ready);
        o.set("reason", c.reason);
        if (!c.condition.empty())
            o.set("condition", c.condition);
        components.set(name, o);
    }
    root.set("components", components);
    // Per account: "state" is "paused" (sending held back), "listing_failed" (its inbox could
    // not be listed) or "ok"; the reasons say why.
    Poco::JSON::Object accounts;
    for (const auto& [name, a] : health.accounts()) {
        Poco::JSON::Object o;
        o.set("state", !a.sendingPaused.empty()   ? "paused"
                       : !a.listingFailed.empty() ? "listing_failed"
                                                  : "ok");
        o.set("sending", a.sendingPaused.empty() ? "ok" : "paused");
        if (!a.sendingPaused.empty())
            o.set("sendingReason", a.sendingPaused);
        o.set("receiving", a.listingFailed.empty() ? "ok" : "listing_failed");
        if (!a.listingFailed.empty())
            o.set("receivingReason", a.listingFailed);
        accounts.set(name, o);
    }
    root.set("accounts", accounts);
    Poco::JSON::Object m;
    for (const auto& s : metrics.samples())
        m.set(s.name, s.value);
    root.set("metrics", m);
    std::ostringstream out;
    Poco::JSON::Stringifier::stringify(root, out, 2);
    out << "\n";
    return out.str();
}

namespace {

class Handler : public Poco::Net::HTTPRequestHandler {
  public:
    Handler(HealthState& health, Metrics& metrics) : health_(health), metrics_(metrics) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override {
        using Poco::Net::HTTPResponse;
        std::string body;
        std::string type = "text/plain; charset=utf-8";
        auto status = HTTPResponse::HTTP_OK;
        const std::string& uri = request.getURI();
        if (request.getMethod() != "GET" && request.getMethod() != "HEAD") {
            status = HTTPResponse::HTTP_METHOD_NOT_ALLOWED;
            body = "only GET\n";
        } else if (uri == "/healthz") {
            body = "ok\n";
        } else if (uri == "/readyz") {
            if (health_.ready()) {
                body = "ready\n";
            } else {
                status = HTTPResponse::HTTP_SERVICE_UNAVAILABLE;
                body = "not ready: " + health_.notReadySummary() + "\n";
            }
        } else if (uri == "/metrics") {
            type = "text/plain; version=0.0.4; charset=utf-8";
            body = metrics_.prometheusText() +
                   healthMetricsText(health_, std::chrono::system_clock::now());
        } else if (uri == "/status") {
            type = "application/json";
            body = statusJson(health_, metrics_);
        } else {
            status = HTTPResponse::HTTP_NOT_FOUND;
            body = "not found; try /healthz /readyz /metrics /status\n";
        }
        response.setStatus(status);
        response.setContentType(type);
        response.setContentLength(static_cast<std::streamsize>(body.size()));
        response.send() << body;
    }

  private:
    HealthState& health_;
    Metrics& metrics_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
  public:
    Factory(HealthState& health, Metrics& metrics) : health_(health), metrics_(metrics) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
        return new Handler(health_, metrics_);
    }

  private:
    HealthState& health_;
    Metrics& metrics_;
};

}  // namespace

HealthServer::HealthServer(const HostPort& listen, HealthState& health, Metrics& metrics) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(listen.host, listen.port));
    auto params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(4);
    params->setKeepAlive(false);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(health, metrics), socket, params);
    server_->start();
}

HealthServer::~HealthServer() {
    server_->stopAll(true);
}

unsigned HealthServer::port() const {
    return server_->port();
}

}  // namespace demail::gateway
