// The SMTP line reader (smtp/line_reader.h) under any input, cut into reads of any size.
// Input: byte 0 picks maxLength, byte 1 seeds the read sizes and maxSkip, the rest is what the
// client sent.
// Checks, for every result the reader reports:
// - Ok lines hold no CR or LF, respect maxLength, and are exactly the input between the previous
//   line end and a CRLF;
// - every line end the reader reports (Ok and TooLong) sits right after a CRLF of the input, and
//   the bytes of that line hold no other CR or LF: a bare LF or CR can never be where the reader
//   resynchronises (the smuggling defence, also for over-long lines);
// - TooLong is reported only for a line that really exceeds maxLength;
// - BareNewline is reported only when the line really holds a bare CR or LF;
// - after BareNewline, Overflow, Eof or Timeout the session ends, so the check stops there.
#include <cstdint>
#include <cstring>
#include <string>

#include "demail/smtp/line_reader.h"

namespace {
bool holdsBareCrOrLf(const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            return true;
        if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n'))
            return true;
    }
    return false;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using demail::smtp::LineReader;
    if (size < 2)
        return 0;
    const std::size_t maxLength = 1 + static_cast<std::size_t>(data[0]) * 4;
    unsigned seed = data[1];
    const std::size_t maxSkip = static_cast<std::size_t>(data[1]) * 8;
    const std::string input(reinterpret_cast<const char*>(data) + 2, size - 2);
    std::size_t offset = 0;
    LineReader reader([&](char* p, std::size_t n) -> long {
        if (offset == input.size())
            return 0;
        seed = seed * 1103515245U + 12345U;
        std::size_t chunk = 1 + (seed >> 16) % 97;
        chunk = std::min({chunk, n, input.size() - offset});
        std::memcpy(p, input.data() + offset, chunk);
        offset += chunk;
        return static_cast<long>(chunk);
    });
    std::string line;
    std::size_t lineStart = 0;  // where the current line begins in the input
    for (int guard = 0; guard < 100000; ++guard) {
        const LineReader::Result r = reader.readLine(line, maxLength, maxSkip);
        if (r == LineReader::Result::Ok || r == LineReader::Result::TooLong) {
            // The line ends at the first LF after lineStart, and it must be a CRLF.
            const std::size_t lf = input.find('\n', lineStart);
            if (lf == std::string::npos || lf == lineStart || input[lf - 1] != '\r')
                __builtin_trap();
            const std::string whole = input.substr(lineStart, lf - 1 - lineStart);
            if (whole.find('\r') != std::string::npos)
                __builtin_trap();
            if (r == LineReader::Result::Ok && (line != whole || line.size() + 1 > maxLength))
                __builtin_trap();
            if (r == LineReader::Result::TooLong && whole.size() + 1 <= maxLength)
                __builtin_trap();
            lineStart = lf + 1;
            continue;
        }
        if (r == LineReader::Result::BareNewline) {
            // The line up to the next LF (or what there is) holds a bare CR or LF.
            const std::size_t lf = input.find('\n', lineStart);
            const std::string rest = input.substr(
                lineStart, lf == std::string::npos ? std::string::npos : lf + 1 - lineStart);
            if (!holdsBareCrOrLf(rest))
                __builtin_trap();
        }
        break;  // BareNewline, Overflow, Eof, Timeout: the session is over
    }
    return 0;
}
