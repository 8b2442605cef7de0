// The health endpoint ([health] listen): /healthz (the process answers), /readyz (every component
// ready: 200, else 503 with the reasons), /metrics (Prometheus text), /status (JSON of all of it,
// what `demailctl health` prints). The daemon's parts report into HealthState; the HTTP server
// only reads it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

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
        std::string reason;  // one line, for the operator: "card removed from reader X"
    };
    // Components: "card", "provider", "spool", "queue". A component never reported is not ready.
    void set(const std::string& component, bool ready, const std::string& reason);
    std::map<std::string, Component> components() const;
    bool ready() const;
    // "card: PIN rejected, 2 tries left; provider: ..." listing the components that are not ready.
    std::string notReadySummary() const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, Component> components_;
};

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
