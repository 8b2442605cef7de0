// The two listeners of `demail-sim provider`: the HTTPS API (docs/provider-api.md) with the
// enforced TLS profile and client certificates, and the plain-HTTP control endpoint on loopback.
#pragma once

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "provider_state.h"

namespace demail::sim::provider {

// Switchable faults (POST /control/fault). `remaining` 0 means until switched off.
struct FaultConfig {
    std::string mode = "none";  // none refuse tls_alert stall_handshake stall http_status
                                // reset_mid_body malformed blocked_account drop_reply
    int status = 503;           // for http_status
    int remaining = 0;
    int stallSeconds = 20;
};

class Faults {
  public:
    void set(const FaultConfig& f);
    FaultConfig current() const;
    // Returns the fault to apply now for one of the given modes ("" if none) and counts it.
    std::string take(std::initializer_list<const char*> modes, FaultConfig* out = nullptr);
    // Waits up to seconds, returns early when the fault is switched (stall).
    void stall(int seconds);

  private:
    mutable std::mutex mutex_;
    std::condition_variable switched_;
    unsigned long generation_ = 0;  // bumped by set(): no wake-up is lost
    FaultConfig config_;
};

struct ServerStats {
    std::atomic<unsigned long> connections{0};
    std::atomic<unsigned long> fullHandshakes{0};
    std::atomic<unsigned long> resumedHandshakes{0};
    std::atomic<unsigned long> clientSignatures{0};  // CertificateVerify messages received
    std::atomic<unsigned long> requests{0};
};

struct ServerConfig {
    Poco::Net::SocketAddress listen{"127.0.0.1", 0};
    Poco::Net::SocketAddress control{"127.0.0.1", 0};
    std::string cert, key, clientCa;
    // How long a keep-alive connection may wait for its next request before the provider closes
    // it (real providers close idle connections; clients must then reconnect, and should resume).
    int idleTimeoutSeconds = 60;
};

class ProviderServer {
  public:
    ProviderServer(ServerConfig config, ProviderState& state);
    ~ProviderServer();
    void start();  // throws Poco::Exception on bind or TLS setup errors
    void stop();
    unsigned short httpsPort() const { return httpsPort_; }
    unsigned short controlPort() const { return controlPort_; }

    // Fault "refuse": really closes the HTTPS listener (connect() then gets ECONNREFUSED).
    void setRefusing(bool refusing);
    void applyFault(const FaultConfig& f);

    ProviderState& state() { return state_; }
    Faults& faults() { return faults_; }
    ServerStats& stats() { return stats_; }

  private:
    void startHttps();
    ServerConfig config_;
    ProviderState& state_;
    Faults faults_;
    ServerStats stats_;
    Poco::Net::Context::Ptr context_;
    // A keep-alive connection holds a server thread, and a gateway keeps up to 32 open (plus
    // the tests' own clients): Poco's default pool (16 threads) would queue the 17th for good.
    std::unique_ptr<Poco::ThreadPool> httpsThreads_;
    std::unique_ptr<Poco::Net::HTTPServer> https_;
    std::unique_ptr<Poco::Net::HTTPServer> control_;
    // Rewritten (same value) when the listener comes back after a "refuse" fault, on a control
    // thread, while the main thread may read it: atomic (found by make tsan).
    std::atomic<unsigned short> httpsPort_{0};
    unsigned short controlPort_ = 0;
    std::mutex lifecycle_;
    bool refusing_ = false;
};

// Factories, defined in https_api.cpp and control_api.cpp.
Poco::Net::HTTPRequestHandlerFactory* makeApiHandlerFactory(ProviderServer& server);
Poco::Net::HTTPRequestHandlerFactory* makeControlHandlerFactory(ProviderServer& server);
Poco::Net::Context::Ptr makeServerContext(const ServerConfig& config, ServerStats& stats);

}  // namespace demail::sim::provider
