// A client connection: plain TCP until STARTTLS, then TLS (OpenSSL on the same socket), with a
// line reader that enforces CRLF. Internal to smtp/.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <string>

namespace demail::smtp {

class Connection {
  public:
    Connection(int fd, std::chrono::seconds timeout);
    ~Connection();
    enum class LineResult { Ok, Eof, Timeout, TooLong, BareNewline };
    // One line without its CRLF. A CR or LF that is not part of a CRLF is BareNewline (the SMTP
    // smuggling defence, RFC 5321 §2.3.8). maxLength counts the CRLF.
    LineResult readLine(std::string& line, std::size_t maxLength);
    bool write(const std::string& data);
    // After "220 Ready to start TLS": drops anything the client pipelined before the handshake
    // (RFC 3207 §4.2, CVE-2011-0411), then runs the handshake.
    bool startTls(SSL_CTX* ctx, std::string& description);
    bool secure() const { return ssl_ != nullptr; }
    void setTimeout(std::chrono::seconds t);
    bool hasBufferedInput() const { return pos_ < buf_.size(); }

  private:
    long rawRead(char* p, std::size_t n);
    int fd_;
    SSL* ssl_ = nullptr;
    std::string buf_;
    std::size_t pos_ = 0;
};

}  // namespace demail::smtp
