#include "provider_server.h"

#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/TCPServer.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

namespace demail::sim::provider {

void Faults::set(const FaultConfig& f) {
    {
        std::lock_guard lock(mutex_);
        config_ = f;
        ++generation_;
    }
    switched_.notify_all();  // release stalled requests
}

void Faults::stall(int seconds) {
    std::unique_lock lock(mutex_);
    const unsigned long start = generation_;
    switched_.wait_for(lock, std::chrono::seconds(seconds), [&] { return generation_ != start; });
}

FaultConfig Faults::current() const {
    std::lock_guard lock(mutex_);
    return config_;
}

std::string Faults::take(std::initializer_list<const char*> modes, FaultConfig* out) {
    std::lock_guard lock(mutex_);
    for (const char* m : modes) {
        if (config_.mode != m)
            continue;
        if (out)
            *out = config_;
        if (config_.remaining > 0 && --config_.remaining == 0)
            config_.mode = "none";
        return m;
    }
    return {};
}

namespace {

// Counts connections and implements the "tls_alert" and "stall_handshake" faults before Poco's lazy
// server handshake starts: read the ClientHello, answer with a fatal handshake_failure alert
// record, close.
class AlertFilter : public Poco::Net::TCPServerConnectionFilter {
  public:
    explicit AlertFilter(ProviderServer& server) : server_(server) {}
    bool accept(const Poco::Net::StreamSocket& socket) override {
        ++server_.stats().connections;
        FaultConfig fault;
        std::string mode = server_.faults().take({"tls_alert", "stall_handshake"}, &fault);
        if (mode.empty())
            return true;
        if (mode == "stall_handshake") {
            // Keep the connection open without ever answering the ClientHello: a copy of the
            // socket lives in a detached thread until the stall ends or the fault is switched.
            std::thread([this, held = Poco::Net::StreamSocket(socket),
                         seconds = fault.stallSeconds]() mutable {
                server_.faults().stall(seconds);
                held.close();
            }).detach();
            return false;
        }
        int fd = static_cast<int>(socket.impl()->sockfd());
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 2000) > 0) {
            char buf[4096];
            (void)::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        }
        static const unsigned char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
        (void)::send(fd, alert, sizeof alert, MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_WR);
        return false;
    }

  private:
    ProviderServer& server_;
};

}  // namespace

ProviderServer::ProviderServer(ServerConfig config, ProviderState& state)
    : config_(std::move(config)), state_(state) {}

ProviderServer::~ProviderServer() {
    stop();
}

void ProviderServer::startHttps() {
    Poco::Net::SecureServerSocket socket(context_);
    socket.bind(Poco::Net::SocketAddress(config_.listen.host(), httpsPort_.load()), true);
    socket.listen(64);
    httpsPort_ = socket.address().port();
    auto params = new Poco::Net::HTTPServerParams;
    params->setKeepAlive(true);
    params->setMaxKeepAliveRequests(10000);
    params->setKeepAliveTimeout(Poco::Timespan(config_.idleTimeoutSeconds, 0));
    params->setTimeout(Poco::Timespan(30, 0));
    params->setMaxThreads(64);
    if (!httpsThreads_)
        httpsThreads_ = std::make_unique<Poco::ThreadPool>(4, 64);
    https_ = std::make_unique<Poco::Net::HTTPServer>(makeApiHandlerFactory(*this), *httpsThreads_,
                                                     socket, params);
    https_->setConnectionFilter(new AlertFilter(*this));
    https_->start();
}

void ProviderServer::start() {
    std::lock_guard lock(lifecycle_);
    context_ = makeServerContext(config_, stats_);
    httpsPort_ = config_.listen.port();
    startHttps();
    Poco::Net::ServerSocket control;
    control.bind(config_.control, true);
    control.listen(16);
    controlPort_ = control.address().port();
    auto params = new Poco::Net::HTTPServerParams;
    params->setKeepAlive(true);
    control_ =
        std::make_unique<Poco::Net::HTTPServer>(makeControlHandlerFactory(*this), control, params);
    control_->start();
}

void ProviderServer::stop() {
    std::lock_guard lock(lifecycle_);
    faults_.set(FaultConfig{});
    if (https_)
        https_->stopAll(true);
    if (control_)
        control_->stopAll(true);
    https_.reset();
    control_.reset();
}

void ProviderServer::setRefusing(bool refusing) {
    std::lock_guard lock(lifecycle_);
    if (refusing == refusing_)
        return;
    refusing_ = refusing;
    if (refusing) {
        https_->stopAll(true);  // closes the listening socket: connect() gets ECONNREFUSED
        https_.reset();
    } else {
        startHttps();
    }
}

void ProviderServer::applyFault(const FaultConfig& f) {
    faults_.set(f);
    setRefusing(f.mode == "refuse");
}

}  // namespace demail::sim::provider
