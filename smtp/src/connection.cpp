#include "connection.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include <algorithm>
#include <cerrno>

namespace demail::smtp {

Connection::Connection(int fd, std::chrono::seconds writeTimeout)
    : fd_(fd), writeTimeout_(writeTimeout) {
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    // Every reply leaves in one write; Nagle would only hold a reply back until the client ACKs
    // what came before (e.g. TLS 1.3 session tickets), a delayed-ACK stall of ~40 ms.
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Connection::~Connection() {
    if (ssl_) {
        SSL_shutdown(ssl_);  // non-blocking: sends close_notify if it can, never waits
        SSL_free(ssl_);
    }
    ::close(fd_);
}

bool Connection::waitFor(short events, Clock::time_point deadline) const {
    while (true) {
        const auto now = Clock::now();
        if (now >= deadline)
            return false;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
        pollfd p{fd_, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
        if (r > 0)
            return true;  // ready, or an error/hangup the next call reports
        if (r < 0 && errno != EINTR)
            return false;
    }
}

template <typename F>
int Connection::retrySsl(F call, Clock::time_point deadline, bool& timedOut) {
    timedOut = false;
    while (true) {
        ERR_clear_error();
        const int r = call();
        if (r > 0)
            return r;
        const int e = SSL_get_error(ssl_, r);
        short want = 0;
        if (e == SSL_ERROR_WANT_READ)
            want = POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            want = POLLOUT;
        else
            return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
        if (!waitFor(want, deadline)) {
            timedOut = true;
            return 0;
        }
    }
}

long Connection::rawRead(char* p, std::size_t n) {
    // The deadline holds also for a client that keeps sending: reads never wait past it, and a
    // stream that never ends is cut off when it is reached.
    if (Clock::now() >= deadline_)
        return -2;
    if (ssl_) {
        bool timedOut = false;
        const int r =
            retrySsl([&] { return SSL_read(ssl_, p, static_cast<int>(n)); }, deadline_, timedOut);
        if (timedOut)
            return -2;
        return r > 0 ? r : (r == 0 ? 0 : -1);
    }
    while (true) {
        const ssize_t r = ::recv(fd_, p, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (!waitFor(POLLIN, deadline_))
            return -2;
    }
}

bool Connection::write(const std::string& data) {
    const auto deadline = Clock::now() + writeTimeout_;
    std::size_t off = 0;
    while (off < data.size()) {
        if (ssl_) {
            bool timedOut = false;
            const int w = retrySsl(
                [&] {
                    return SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
                },
                deadline, timedOut);
            if (w <= 0)
                return false;
            off += static_cast<std::size_t>(w);
            continue;
        }
        const ssize_t w = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += static_cast<std::size_t>(w);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waitFor(POLLOUT, deadline))
            continue;
        return false;
    }
    return true;
}

bool Connection::startTls(SSL_CTX* ctx, std::string& description, Clock::time_point deadline) {
    reader_.discardBuffered();  // whatever came before the handshake is not trusted
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    bool timedOut = false;
    if (retrySsl([&] { return SSL_accept(ssl_); }, deadline, timedOut) != 1) {
        SSL_free(ssl_);
        ssl_ = nullptr;
        return false;
    }
    int secretBits = 0;
    const int bits = SSL_get_cipher_bits(ssl_, &secretBits);
    description = std::string(SSL_get_version(ssl_)) + " with cipher " + SSL_get_cipher_name(ssl_) +
                  " (" + std::to_string(bits) + "/" + std::to_string(secretBits) + " bits)";
    return true;
}

}  // namespace demail::smtp
