#include "connection.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>

namespace demail::smtp {

Connection::Connection(int fd, std::chrono::seconds timeout) : fd_(fd) {
    setTimeout(timeout);
}

Connection::~Connection() {
    if (ssl_) {
        SSL_shutdown(ssl_);
        SSL_free(ssl_);
    }
    ::close(fd_);
}

void Connection::setTimeout(std::chrono::seconds t) {
    timeval tv{static_cast<time_t>(t.count()), 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

long Connection::rawRead(char* p, std::size_t n) {
    if (ssl_) {
        const int r = SSL_read(ssl_, p, static_cast<int>(n));
        if (r > 0)
            return r;
        const int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -2;
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    while (true) {
        const ssize_t r = ::recv(fd_, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -2;
        return r;
    }
}

bool Connection::write(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        long w;
        if (ssl_) {
            w = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
        } else {
            w = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return false;
        off += static_cast<std::size_t>(w);
    }
    return true;
}

bool Connection::startTls(SSL_CTX* ctx, std::string& description) {
    reader_.discardBuffered();  // whatever came before the handshake is not trusted
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    if (SSL_accept(ssl_) != 1) {
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
