// A client connection: plain TCP until STARTTLS, then TLS (OpenSSL on the same socket), with a
// line reader that enforces CRLF. Internal to smtp/.
//
// Time limits are absolute deadlines, not per-read timeouts: the socket is non-blocking and every
// wait is a poll(2) for what is left of the deadline, so a client that trickles one byte now and
// then (slowloris), also inside a TLS record or the handshake, cannot hold a session longer than
// the deadline the session set for the command, the DATA phase or the handshake.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <string>

#include "demail/smtp/line_reader.h"

namespace demail::smtp {

class Connection {
  public:
    using Clock = std::chrono::steady_clock;
    // `writeTimeout`: how long one reply may take to leave (a client that stops reading).
    Connection(int fd, std::chrono::seconds writeTimeout);
    ~Connection();
    using LineResult = LineReader::Result;
    // Reads until `deadline`; after it, Timeout. See LineReader::readLine.
    LineResult readLine(std::string& line, std::size_t maxLength, std::size_t maxSkip,
                        Clock::time_point deadline) {
        deadline_ = deadline;
        return reader_.readLine(line, maxLength, maxSkip);
    }
    bool write(const std::string& data);
    // After "220 Ready to start TLS": drops anything the client pipelined before the handshake
    // (RFC 3207 §4.2, CVE-2011-0411), then runs the handshake, which must end by `deadline`.
    bool startTls(SSL_CTX* ctx, std::string& description, Clock::time_point deadline);
    bool secure() const { return ssl_ != nullptr; }
    bool hasBufferedInput() const { return reader_.hasBuffered(); }
    // After AUTH: overwrite the input already consumed (it held the credentials).
    void wipeConsumedInput() { reader_.wipeConsumed(); }

  private:
    long rawRead(char* p, std::size_t n);
    // Waits for `events` on the socket until `deadline`; false on timeout or error.
    bool waitFor(short events, Clock::time_point deadline) const;
    // Runs an OpenSSL call that may want to read or write until it succeeds, fails or the
    // deadline passes. Returns the call's result (> 0 success), or 0 with timedOut set.
    template <typename F>
    int retrySsl(F call, Clock::time_point deadline, bool& timedOut);

    int fd_;
    SSL* ssl_ = nullptr;
    std::chrono::seconds writeTimeout_;
    Clock::time_point deadline_ = Clock::time_point::max();
    LineReader reader_{[this](char* p, std::size_t n) { return rawRead(p, n); }};
};

}  // namespace demail::smtp
