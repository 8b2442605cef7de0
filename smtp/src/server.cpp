#include "demail/smtp/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "session.h"

namespace demail::smtp {

Server::Server(ServerConfig config, Policy& policy, MessageSink& sink, const UsersFile* users)
    : config_(std::move(config)), policy_(policy), sink_(sink), users_(users) {}

Server::~Server() {
    stop(std::chrono::seconds(5));
    if (tls_)
        SSL_CTX_free(tls_);
}

std::string Server::start() {
    // OpenSSL writes to the socket with write(2): a client that vanishes mid-TLS would raise
    // SIGPIPE and end the process (found with sslscan). Plain writes use MSG_NOSIGNAL already.
    signal(SIGPIPE, SIG_IGN);
    if (!config_.tlsCert.empty()) {
        tls_ = SSL_CTX_new(TLS_server_method());
        SSL_CTX_set_min_proto_version(tls_, TLS1_2_VERSION);
        // Forward secrecy and AEAD only for TLS 1.2; TLS 1.3 suites are all strong.
        SSL_CTX_set_cipher_list(tls_, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL");
        SSL_CTX_set_options(tls_, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                      SSL_OP_CIPHER_SERVER_PREFERENCE);
        if (SSL_CTX_use_certificate_chain_file(tls_, config_.tlsCert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_, config_.tlsKey.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(tls_) != 1) {
            char buf[256];
            ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
            return "[smtp] tls_cert/tls_key: cannot use " + config_.tlsCert + ": " + buf;
        }
    }
    listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(config_.port);
    if (inet_pton(AF_INET, config_.host.c_str(), &addr.sin_addr) != 1)
        return "[smtp] listen: " + config_.host + " is not an IPv4 address";
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listenFd_, 512) != 0)
        return "[smtp] listen: cannot listen on " + config_.host + ":" +
               std::to_string(config_.port) + ": " + std::strerror(errno);
    socklen_t len = sizeof addr;
    getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len);
    boundPort_ = ntohs(addr.sin_port);
    acceptThread_ = std::thread([this] { acceptLoop(); });
    return {};
}

void Server::acceptLoop() {
    while (!stopping_) {
        pollfd p{listenFd_, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0)
            continue;
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        const int fd = ::accept4(listenFd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        char ip[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
        const std::string client = ip;
        ++counters_.connections;
        bool refuse = false;
        const char* why = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (active_ >= config_.maxConnections) {
                refuse = true;
                why = "421 4.3.2 Too many connections, try again later\r\n";
            } else if (perClient_[client] >= config_.maxConnectionsPerClient) {
                refuse = true;
                why = "421 4.7.0 Too many connections from your address\r\n";
            } else {
                ++perClient_[client];
                ++active_;
            }
        }
        if (refuse) {
            ::send(fd, why, std::strlen(why), MSG_NOSIGNAL);
            ::close(fd);
            continue;
        }
        std::thread([this, fd, client] { runSession(fd, client); }).detach();
    }
}

void Server::runSession(int fd, std::string client) {
    {
        Session session(*this, fd, client);
        session.run();
    }
    std::lock_guard lock(mutex_);
    if (--perClient_[client] <= 0)
        perClient_.erase(client);
    --active_;
    idle_.notify_all();
}

void Server::stop(std::chrono::seconds grace) {
    if (stopping_.exchange(true))
        return;
    if (acceptThread_.joinable())
        acceptThread_.join();
    if (listenFd_ >= 0)
        ::close(listenFd_);
    listenFd_ = -1;
    std::unique_lock lock(mutex_);
    idle_.wait_for(lock, grace, [this] { return active_ == 0; });
}

}  // namespace demail::smtp
