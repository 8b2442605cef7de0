// The CRLF-strict line reader of the intake, apart from the socket so that it can be fuzzed and
// tested with any chunking of the input (tests/fuzz/fuzz_smtp_line.cpp).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace demail::smtp {

class LineReader {
  public:
    // Reads up to n bytes into p: the count (> 0), 0 at end of input, -1 on error, -2 on timeout.
    using Source = std::function<long(char* p, std::size_t n)>;
    explicit LineReader(Source source) : source_(std::move(source)) {}

    enum class Result { Ok, Eof, Timeout, TooLong, BareNewline, Overflow };

    // One line without its CRLF. Every line end the reader reports, for a line of any length, is
    // a CRLF: a CR or LF that is not part of a CRLF is BareNewline (the SMTP smuggling defence,
    // RFC 5321 §2.3.8), also inside or at the end of an over-long line, so that a bare LF can
    // never be where the reader resynchronises; the reader then stands after that LF and the
    // session must end. A line whose bytes before the LF (its CR included) exceed maxLength is
    // TooLong; the rest of it is skipped, up to maxSkip bytes, so the session can go on after its
    // 500. A line longer than maxLength + maxSkip is Overflow: the session must end.
    Result readLine(std::string& line, std::size_t maxLength, std::size_t maxSkip = 64 * 1024);

    // STARTTLS: whatever came before the handshake is not trusted (RFC 3207 §4.2).
    void discardBuffered();
    bool hasBuffered() const { return pos_ < end_; }
    // Overwrites the bytes already returned (e.g. AUTH credentials); what is still buffered stays.
    void wipeConsumed();

  private:
    // Refills the buffer when it is used up; Ok or the source's Eof/Timeout.
    Result fill();
    // Skips the rest of an over-long line whose last byte so far was `last` ('\0' if none).
    Result skipRestOfLine(char last, std::size_t maxSkip);

    Source source_;
    std::unique_ptr<char[]> buf_;
    std::size_t pos_ = 0;  // the next byte to return
    std::size_t end_ = 0;  // the end of what the last read brought
};

}  // namespace demail::smtp
