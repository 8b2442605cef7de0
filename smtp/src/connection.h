// A client connection: plain TCP until STARTTLS, then TLS (OpenSSL on the same socket), with a
// line reader that enforces CRLF. Internal to smtp/.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <string>

#include "demail/smtp/line_reader.h"

namespace demail::smtp {

class Connection {
  public:
    Connection(int fd, std::chrono::seconds timeout);
    ~Connection();
    using LineResult = LineReader::Result;
    // See LineReader::readLine.
    LineResult readLine(std::string& line, std::size_t maxLength) {
        return reader_.readLine(line, maxLength);
    }
    bool write(const std::string& data);
    // After "220 Ready to start TLS": drops anything the client pipelined before the handshake
    // (RFC 3207 §4.2, CVE-2011-0411), then runs the handshake.
    bool startTls(SSL_CTX* ctx, std::string& description);
    bool secure() const { return ssl_ != nullptr; }
    void setTimeout(std::chrono::seconds t);
    bool hasBufferedInput() const { return reader_.hasBuffered(); }

  private:
    long rawRead(char* p, std::size_t n);
    int fd_;
    SSL* ssl_ = nullptr;
    LineReader reader_{[this](char* p, std::size_t n) { return rawRead(p, n); }};
};

}  // namespace demail::smtp
