// Runs `demail-sim provider` with a generated test PKI in a private temp dir for one test, and
// talks to its control endpoint.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "demail/connector/transport/provider_endpoint.h"

namespace demail::connector::testing {

class SimProcess {
  public:
    // Starts `demail-sim provider` with `extraArgs` and waits for readiness; throws
    // std::runtime_error.
    explicit SimProcess(const std::vector<std::string>& extraArgs = {});
    ~SimProcess();
    SimProcess(const SimProcess&) = delete;
    SimProcess& operator=(const SimProcess&) = delete;

    std::string env(const std::string& key) const;
    ProviderEndpoint endpoint() const;
    std::string clientCert() const { return env("CLIENT_CERT"); }
    std::string clientKey() const { return env("CLIENT_KEY"); }

    // Control endpoint; returns the body, status in *status.
    std::string control(const std::string& method, const std::string& path,
                        const std::string& body = "", int* status = nullptr) const;
    void setFault(const std::string& json) const;
    // A number field from /control/stats.
    long stat(const std::string& name) const;

  private:
    std::string dir_;
    pid_t pid_ = -1;
    std::map<std::string, std::string> env_;
};

// Extracts "key":<number> from a flat JSON text (tests only).
long jsonNumber(const std::string& json, const std::string& key);
// Counts occurrences of a substring.
int countOf(const std::string& text, const std::string& needle);

}  // namespace demail::connector::testing
