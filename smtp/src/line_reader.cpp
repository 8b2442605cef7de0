#include "demail/smtp/line_reader.h"

#include <cstring>

namespace demail::smtp {
namespace {
// Large enough that a big DATA section costs few reads; lines are cut out of it with memchr.
constexpr std::size_t kReadSize = 64 * 1024;

// Whether [p, p+n) holds a CR anywhere but as its last byte (a CR there may still be followed by
// the LF that ends the line).
bool hasInnerCr(const char* p, std::size_t n) {
    return n > 1 && std::memchr(p, '\r', n - 1) != nullptr;
}
}  // namespace

LineReader::Result LineReader::fill() {
    // Allocated once per session and not zeroed: resizing a string up to 64 KiB before every read
    // cleared 64 KiB per command line (2 % of the daemon's CPU with a connection per message).
    if (!buf_)
        buf_ = std::make_unique_for_overwrite<char[]>(kReadSize);
    const long r = source_(buf_.get(), kReadSize);
    pos_ = 0;
    end_ = r > 0 ? static_cast<std::size_t>(r) : 0;
    if (r <= 0)
        return r == -2 ? Result::Timeout : Result::Eof;
    return Result::Ok;
}

LineReader::Result LineReader::skipRestOfLine(char last, std::size_t maxSkip) {
    std::size_t skipped = 0;
    while (true) {
        if (pos_ == end_)
            if (const Result r = fill(); r != Result::Ok)
                return r;
        const char* start = buf_.get() + pos_;
        const std::size_t available = end_ - pos_;
        const auto* nl = static_cast<const char*>(std::memchr(start, '\n', available));
        const std::size_t take = nl ? static_cast<std::size_t>(nl - start) : available;
        // A CR is allowed only right before the LF: one left over from the previous piece must be
        // followed by more of the line only if that is the LF itself.
        if ((last == '\r' && take > 0) || hasInnerCr(start, take)) {
            pos_ += nl ? take + 1 : take;
            return Result::BareNewline;
        }
        if (take > 0)
            last = start[take - 1];
        pos_ += take;
        skipped += take;
        if (nl) {
            ++pos_;
            return last == '\r' ? Result::TooLong : Result::BareNewline;
        }
        if (skipped > maxSkip)
            return Result::Overflow;
    }
}

LineReader::Result LineReader::readLine(std::string& line, std::size_t maxLength,
                                        std::size_t maxSkip) {
    line.clear();
    while (true) {
        if (pos_ == end_)
            if (const Result r = fill(); r != Result::Ok)
                return r;
        const char* start = buf_.get() + pos_;
        const std::size_t available = end_ - pos_;
        const auto* nl = static_cast<const char*>(std::memchr(start, '\n', available));
        const std::size_t take = nl ? static_cast<std::size_t>(nl - start) : available;
        if (line.size() + take > maxLength) {
            // Over-long: what was collected and this piece must still be CRLF-clean.
            const char before = line.empty() ? '\0' : line.back();
            const bool innerCr = hasInnerCr(line.data(), line.size()) ||
                                 (before == '\r' && take > 0) || hasInnerCr(start, take);
            pos_ += take;
            if (innerCr) {
                if (nl)
                    ++pos_;
                return Result::BareNewline;
            }
            const char last = take > 0 ? start[take - 1] : before;
            if (!nl)
                return skipRestOfLine(last, maxSkip);
            ++pos_;
            return last == '\r' ? Result::TooLong : Result::BareNewline;
        }
        line.append(start, take);
        pos_ += take;
        if (!nl)
            continue;
        ++pos_;  // the LF
        if (line.empty() || line.back() != '\r')
            return Result::BareNewline;
        line.pop_back();
        if (line.find('\r') != std::string::npos)
            return Result::BareNewline;
        return Result::Ok;
    }
}

void LineReader::wipeConsumed() {
    // A volatile store: the compiler may not drop a write to memory that is read again later,
    // but be explicit that this is for secrecy, not for the reader's logic.
    volatile char* p = buf_.get();
    for (std::size_t i = 0; i < pos_; ++i)
        p[i] = 0;
}

void LineReader::discardBuffered() {
    pos_ = 0;
    end_ = 0;
}

}  // namespace demail::smtp
