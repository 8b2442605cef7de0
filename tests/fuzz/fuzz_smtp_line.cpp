// The SMTP line reader (smtp/line_reader.h) under any input, cut into reads of any size.
// Input: byte 0 picks maxLength, byte 1 seeds the read sizes, the rest is what the client sent.
// Checks: lines never hold CR or LF and respect maxLength; while every line was clean, the lines
// joined with CRLF are exactly the input read so far (nothing lost, duplicated or reordered across
// read boundaries).
#include <cstdint>
#include <cstring>
#include <string>

#include "demail/smtp/line_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using demail::smtp::LineReader;
    if (size < 2)
        return 0;
    const std::size_t maxLength = 1 + static_cast<std::size_t>(data[0]) * 4;
    unsigned seed = data[1];
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
    std::string rebuilt;
    bool clean = true;
    std::string line;
    for (int guard = 0; guard < 100000; ++guard) {
        const LineReader::Result r = reader.readLine(line, maxLength);
        if (r == LineReader::Result::Eof)
            break;
        if (r != LineReader::Result::Ok) {
            clean = false;
            continue;
        }
        if (line.find_first_of("\r\n") != std::string::npos || line.size() + 1 > maxLength)
            __builtin_trap();
        if (clean)
            rebuilt += line + "\r\n";
    }
    if (clean) {
        // Everything up to the last LF came back as lines; what follows it had no line end.
        const std::size_t lastLf = input.rfind('\n');
        const std::size_t consumed = lastLf == std::string::npos ? 0 : lastLf + 1;
        if (rebuilt != input.substr(0, consumed))
            __builtin_trap();
    }
    return 0;
}
