// The health endpoint ([health] listen): /healthz (the process answers), /readyz (every component
// ready: 200, else 503 with the reasons), /metrics (Prometheus text), /status (JSON of all of it,
// what `demailctl health` prints). The daemon's parts report into HealthState; the HTTP server
// only reads it. /metrics also carries gauges derived from HealthState (component readiness, the
// card's condition, certificate expiry, inbound backlog), so that alert rules need no other source.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "demail/gateway/config.h"
#include "demail/gateway/metrics.h"

namespace Poco::Net {
class HTTPServer;
}

namespace demail::gateway {

class HealthState {
  public:
    struct Component {
        bool ready = false;
        std::string reason;     // one line, for the operator: "card removed from reader X"
        std::string condition;  // one word, for alerting: "absent", "pin_rejected"; "" if none
    };
    // Components: "card", "provider", "spool", "queue", "inbound", "certificate". A component
    // never reported is not ready. condition (see the kCondition constants) names why a component
    // is not ready; a not-ready report without one keeps the condition already known, so that a
    // repeated "still paused" does not wipe out "absent". A ready report clears it.
    void set(const std::string& component, bool ready, const std::string& reason,
             const std::string& condition = {});
    std::map<std::string, Component> components() const;
    bool ready() const;
    // "card: PIN rejected, 2 tries left; provider: ..." listing the components that are not ready.
    std::string notReadySummary() const;

    // The client certificate's notAfter, where the daemon checks expiry (/metrics: seconds left).
    void setCertificateNotAfter(std::chrono::system_clock::time_point notAfter);
    // The inbound pass's backlog: items left at the provider (deferred) in the last pass, items
    // held in quarantine now.
    void setInbound(std::size_t deferred, std::size_t quarantined);

    struct Inbound {
        std::size_t deferred = 0;
        std::size_t quarantined = 0;
    };
    // Per De-Mail account (ACM_FU §3.6): an account's trouble is shown here and never makes the
    // gateway unready, since the other accounts go on (/readyz stays 200).
    struct Account {
        std::string sendingPaused;  // empty: sending; else why this account's mail waits
        std::string listingFailed;  // empty: its inbox was listed; else why not
    };
    // The accounts the provider lists for our card; states of accounts no longer listed go.
    void setAccounts(const std::vector<std::string>& listed);
    void setAccountSending(const std::string& account, const std::string& pausedReason);
    void setAccountListing(const std::string& account, const std::string& failure);
    std::map<std::string, Account> accounts() const;
    std::optional<std::chrono::system_clock::time_point> certificateNotAfter() const;
    std::optional<Inbound> inbound() const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, Component> components_;
    std::optional<std::chrono::system_clock::time_point> notAfter_;
    std::optional<Inbound> inbound_;
    std::map<std::string, Account> accounts_;
};

// Conditions of the card component the alert rules match on.
inline constexpr const char* kConditionAbsent = "absent";             // no card, reader, pcscd
inline constexpr const char* kConditionPinRejected = "pin_rejected";  // needs the operator

// The gauges derived from health, in Prometheus text (part of /metrics):
//   demail_ready, demail_component_ready{component}, demail_card_absent,
//   demail_card_pin_rejected, demail_certificate_expiry_seconds (once known),
//   demail_inbound_deferred / demail_inbound_quarantined (once the first pass ran),
//   demail_account_paused{account} / demail_account_listing_failed{account} per known account.
std::string healthMetricsText(const HealthState& health, std::chrono::system_clock::time_point now);

// JSON body of /status.
std::string statusJson(const HealthState& health, const Metrics& metrics);

class HealthServer {
  public:
    HealthServer(const HostPort& listen, HealthState& health, Metrics& metrics);
    ~HealthServer();
    HealthServer(const HealthServer&) = delete;
    HealthServer& operator=(const HealthServer&) = delete;
    unsigned port() const;  // the bound port (useful when listen asked for port 0)

  private:
    std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace demail::gateway
