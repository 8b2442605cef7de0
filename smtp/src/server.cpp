#include "demail/smtp/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <system_error>

#include "session.h"

namespace demail::smtp {
namespace {

// The client's address as text; an IPv4 client of a dual-stack socket (::ffff:a.b.c.d) is shown
// and matched against relay_networks as the IPv4 address it is.
std::string peerAddress(const sockaddr_storage& peer) {
    char ip[INET6_ADDRSTRLEN] = {};
    if (peer.ss_family == AF_INET6) {
        const auto& a6 = reinterpret_cast<const sockaddr_in6&>(peer);
        if (IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) {
            in_addr v4{};
            std::memcpy(&v4, a6.sin6_addr.s6_addr + 12, 4);
            inet_ntop(AF_INET, &v4, ip, sizeof ip);
        } else {
            inet_ntop(AF_INET6, &a6.sin6_addr, ip, sizeof ip);
        }
    } else {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(peer).sin_addr, ip, sizeof ip);
    }
    return ip;
}

void refuse(int fd, const char* why) {
    ::send(fd, why, std::strlen(why), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
}

// The file descriptors one session may hold at once: its socket and the spool file during DATA.
constexpr rlim_t kFdsPerSession = 2;
// Left for everything else of the process: the listeners, provider and relay connections, the
// health server, spool directories, the PKCS#11 module and pcscd.
constexpr rlim_t kFdsReserved = 256;

// Threads kept waiting for the next client (see server.h), how long one waits before it exits,
// and how many start() starts. 16 spares cost about 1 MB (their stacks are mostly untouched).
constexpr int kSpareThreads = 16;
constexpr auto kSpareIdle = std::chrono::seconds(60);
constexpr int kPrestartThreads = 4;

}  // namespace

std::string auditValue(const std::string& v) {
    static const char* hex = "0123456789abcdef";
    std::string out = "\"";
    for (const char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

Server::Server(ServerConfig config, Policy& policy, MessageSink& sink, const UsersFile* users)
    : config_(std::move(config)), policy_(policy), sink_(sink), users_(users) {}

Server::~Server() {
    stop(std::chrono::seconds(5));
    if (tls_)
        SSL_CTX_free(tls_);
    if (reserveFd_ >= 0)
        ::close(reserveFd_);
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
        // TLS 1.3: one session ticket after the handshake instead of OpenSSL's two. A relay
        // that resumes (Postfix's and Exchange's session caches) needs one per connection, and
        // each ticket costs an encryption and a record written before the EHLO reply.
        SSL_CTX_set_num_tickets(tls_, 1);
        if (SSL_CTX_use_certificate_chain_file(tls_, config_.tlsCert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_, config_.tlsKey.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(tls_) != 1) {
            char buf[256];
            ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
            return "[smtp] tls_cert/tls_key: cannot use " + config_.tlsCert + ": " + buf;
        }
    }
    if (auto e = fitConnectionsToFdLimit(); !e.empty())
        return e;

    sockaddr_storage addr{};
    socklen_t addrLen = 0;
    const bool v6 = config_.host.find(':') != std::string::npos;
    if (v6) {
        auto& a6 = reinterpret_cast<sockaddr_in6&>(addr);
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons(config_.port);
        if (inet_pton(AF_INET6, config_.host.c_str(), &a6.sin6_addr) != 1)
            return "[smtp] listen: " + config_.host + " is not an IPv6 address";
        addrLen = sizeof a6;
    } else {
        auto& a4 = reinterpret_cast<sockaddr_in&>(addr);
        a4.sin_family = AF_INET;
        a4.sin_port = htons(config_.port);
        if (inet_pton(AF_INET, config_.host.c_str(), &a4.sin_addr) != 1)
            return "[smtp] listen: " + config_.host +
                   " is not an IP address (use 127.0.0.1, 0.0.0.0, [::1] or [::])";
        addrLen = sizeof a4;
    }
    listenFd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) {
        // [::] takes IPv4 clients too (they appear as ::ffff:a.b.c.d, see peerAddress); a
        // specific IPv6 address takes only IPv6 ones.
        int v6only = 0;
        setsockopt(listenFd_, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), addrLen) != 0 ||
        ::listen(listenFd_, 512) != 0)
        return "[smtp] listen: cannot listen on " + (v6 ? "[" + config_.host + "]" : config_.host) +
               ":" + std::to_string(config_.port) + ": " + std::strerror(errno);
    getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &addrLen);
    boundPort_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6&>(addr).sin6_port
                          : reinterpret_cast<sockaddr_in&>(addr).sin_port);
    reserveFd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (int i = 0; i < std::min(kPrestartThreads, config_.maxConnections); ++i) {
        try {
            std::lock_guard lock(mutex_);
            std::thread([this] { worker(-1, {}); }).detach();
            ++threads_;
        } catch (const std::system_error&) {
            break;  // no spare now; the accept loop starts threads as clients come
        }
    }
    acceptThread_ = std::thread([this] { acceptLoop(); });
    return {};
}

std::string Server::fitConnectionsToFdLimit() {
    // Each session needs kFdsPerSession descriptors: raise the soft limit as far as the hard one
    // allows, and if max_connections still does not fit, lower it (and say so) rather than let
    // the sessions starve the spool and the provider connections of descriptors.
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return {};
    const rlim_t wanted =
        static_cast<rlim_t>(config_.maxConnections) * kFdsPerSession + kFdsReserved;
    if (lim.rlim_cur < wanted && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = std::min(wanted, lim.rlim_max);
        setrlimit(RLIMIT_NOFILE, &lim);
        getrlimit(RLIMIT_NOFILE, &lim);
    }
    if (lim.rlim_cur >= wanted)
        return {};
    if (lim.rlim_cur <= kFdsReserved + kFdsPerSession)
        return "[smtp] max_connections: the open-file limit (" + std::to_string(lim.rlim_cur) +
               ") leaves no room for sessions; raise LimitNOFILE";
    const int fits = static_cast<int>((lim.rlim_cur - kFdsReserved) / kFdsPerSession);
    notice_ = "max_connections lowered from " + std::to_string(config_.maxConnections) + " to " +
              std::to_string(fits) + ": the open-file limit is " + std::to_string(lim.rlim_cur) +
              " (raise LimitNOFILE to " + std::to_string(wanted) + ")";
    config_.maxConnections = fits;
    return {};
}

int Server::acceptOne(sockaddr_storage& peer) {
    socklen_t len = sizeof peer;
    const int fd = ::accept4(listenFd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd >= 0 || (errno != EMFILE && errno != ENFILE))
        return fd;
    // Out of descriptors: the pending client would make poll() report the listener ready for
    // ever (a busy loop). Free the reserve descriptor, take the client, tell it to come back
    // later, close it, take the reserve again, and pause briefly before the next accept.
    if (reserveFd_ >= 0) {
        ::close(reserveFd_);
        reserveFd_ = -1;
        const int late = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (late >= 0)
            refuse(late, "421 4.3.2 Too many open files, try again later\r\n");
        reserveFd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    ++counters_.fdExhaustion;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return -1;
}

void Server::acceptLoop() {
    while (!stopping_) {
        pollfd p{listenFd_, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0)
            continue;
        sockaddr_storage peer{};
        const int fd = acceptOne(peer);
        if (fd < 0)
            continue;
        const std::string client = peerAddress(peer);
        ++counters_.connections;
        const char* why = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (active_ >= config_.maxConnections) {
                why = "421 4.3.2 Too many connections, try again later\r\n";
            } else if (perClient_[client] >= config_.maxConnectionsPerClient) {
                why = "421 4.7.0 Too many connections from your address\r\n";
            } else {
                ++perClient_[client];
                ++active_;
                sessionFds_.insert(fd);
            }
        }
        if (why) {
            refuse(fd, why);
            continue;
        }
        if (!dispatch(fd, client)) {
            // No thread to be had (memory, the task limit): this client is turned away, the
            // daemon goes on.
            ++counters_.threadFailures;
            sessionEnded(fd, client);
            refuse(fd, "421 4.3.2 Server busy, try again later\r\n");
        }
    }
}

bool Server::dispatch(int fd, const std::string& client) {
    std::lock_guard lock(mutex_);
    if (spare_ > static_cast<int>(handovers_.size())) {
        handovers_.push_back({fd, client});
        work_.notify_one();
        return true;
    }
    try {
        std::thread([this, fd, client] { worker(fd, client); }).detach();
    } catch (const std::system_error&) {
        return false;
    }
    ++threads_;
    return true;
}

void Server::worker(int fd, std::string client) {
    while (true) {
        if (fd >= 0)
            runSession(fd, std::move(client));
        std::unique_lock lock(mutex_);
        if (stopping_ || spare_ >= kSpareThreads)
            break;
        ++spare_;
        const bool got =
            work_.wait_for(lock, kSpareIdle, [this] { return stopping_ || !handovers_.empty(); });
        --spare_;
        if (!got || handovers_.empty())
            break;                   // idle too long, or stopping
        fd = handovers_.front().fd;  // the client that came first
        client = std::move(handovers_.front().client);
        handovers_.pop_front();
    }
    // The last use of this Server by the thread: stop() may destroy it once threads_ is 0.
    std::lock_guard lock(mutex_);
    --threads_;
    idle_.notify_all();
}

void Server::enterData() {
    if (config_.maxConcurrentData <= 0)
        return;
    std::unique_lock lock(dataMutex_);
    const std::uint64_t ticket = dataTickets_++;
    const auto limit = static_cast<std::uint64_t>(config_.maxConcurrentData);
    if (ticket < dataEnded_ + limit)
        return;
    ++counters_.dataAdmissionWaits;
    // Past the bound the session goes ahead anyway; its ticket still ends with leaveData(), so
    // the count of DATA phases running stays right (it may exceed the limit for a while).
    if (!dataTurn_[ticket % kDataTurns].wait_for(lock, config_.dataAdmissionWait, [&] {
            return ticket < dataEnded_ + limit || stopping_;
        }))
        ++counters_.dataAdmissionTimeouts;
}

void Server::leaveData() {
    if (config_.maxConcurrentData <= 0)
        return;
    std::lock_guard lock(dataMutex_);
    ++dataEnded_;
    // The ticket this end admits (others sharing its slot in dataTurn_ wake and wait again).
    const std::uint64_t admitted =
        dataEnded_ + static_cast<std::uint64_t>(config_.maxConcurrentData) - 1;
    dataTurn_[admitted % kDataTurns].notify_all();
}

void Server::sessionEnded(int fd, const std::string& client) {
    std::lock_guard lock(mutex_);
    sessionFds_.erase(fd);
    if (--perClient_[client] <= 0)
        perClient_.erase(client);
    --active_;
    idle_.notify_all();
}

void Server::runSession(int fd, std::string client) {
    {
        Session session(*this, fd, client);
        session.run();
        // The session's destructor closes fd: forget it first, so that stop() never shuts
        // down a descriptor number the process has reused for something else.
        std::lock_guard lock(mutex_);
        sessionFds_.erase(fd);
    }
    sessionEnded(-1, client);
}

void Server::stop(std::chrono::seconds grace) {
    if (stopping_.exchange(true))
        return;
    {
        std::lock_guard lock(dataMutex_);  // sessions waiting for their DATA turn go ahead
        for (auto& turn : dataTurn_)
            turn.notify_all();
    }
    if (acceptThread_.joinable())
        acceptThread_.join();
    if (listenFd_ >= 0)
        ::close(listenFd_);
    listenFd_ = -1;
    std::unique_lock lock(mutex_);
    // The accept loop has ended: no client is handed over any more. Spare threads leave.
    work_.notify_all();
    if (!idle_.wait_for(lock, grace, [this] { return active_ == 0; })) {
        // Sessions still running after the grace period (a slow or silent client): wake them by
        // shutting their sockets down, then wait for them all, since they use this Server, its
        // TLS context, the policy and the sink, which the caller is about to destroy.
        for (const int fd : sessionFds_)
            ::shutdown(fd, SHUT_RDWR);
    }
    idle_.wait(lock, [this] { return active_ == 0 && threads_ == 0; });
}

}  // namespace demail::smtp
