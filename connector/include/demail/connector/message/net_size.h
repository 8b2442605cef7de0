// The net size of a message as TR PVD_FU §4.1 counts it: the payload a user sends (text and
// attachments, decoded), at most 20 MiB, not the encoded RFC 5322 bytes (base64 adds a third).
// Fed the message line by line as it streams in (no copy kept), it follows the MIME structure:
// each leaf part's body counts with its Content-Transfer-Encoding undone (base64: 3 bytes per
// 4 characters; quoted-printable: "=XX" one byte, soft line breaks none; anything else as it
// is, line ends included); header sections, boundaries and multipart preambles do not count.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace demail::connector {

// TR_De_Mail_PVD_FU §4.1: a user's message may carry 20 MiB of payload.
inline constexpr std::uint64_t kNetSizeLimit = 20ull << 20;

class NetSizeCounter {
  public:
    // One line without its CRLF, in order, the message's header section first.
    void line(std::string_view text);
    // Bytes of arbitrary chunks: split into lines at LF (a CR before it is dropped).
    void feed(const char* data, std::size_t n);
    std::uint64_t netBytes() const;  // so far, the part in hand included

  private:
    enum class Encoding { Identity, Base64, QuotedPrintable };
    enum class State { Headers, Body, Preamble };
    struct Part {
        std::string contentType, encoding, boundary;
    };
    void endOfHeaders();
    void headerField(const std::string& field);
    void bodyLine(std::string_view text);

    State state_ = State::Headers;
    std::string field_;  // the header field being unfolded
    Part part_;          // the part whose headers are being read
    Encoding encoding_ = Encoding::Identity;
    std::vector<std::string> boundaries_;  // of the enclosing multiparts, innermost last
    std::string pending_;                  // feed(): a line not yet ended
    std::uint64_t net_ = 0;
    std::uint64_t base64Chars_ = 0;  // of the current part, decoded when it ends
    void flushBase64();
};

}  // namespace demail::connector
