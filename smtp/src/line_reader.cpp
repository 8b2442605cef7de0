#include "demail/smtp/line_reader.h"

#include <cstring>

namespace demail::smtp {
namespace {
// Large enough that a big DATA section costs few reads; lines are cut out of it with memchr.
constexpr std::size_t kReadSize = 64 * 1024;
}  // namespace

LineReader::Result LineReader::fill() {
    buf_.resize(kReadSize);
    const long r = source_(buf_.data(), buf_.size());
    pos_ = 0;
    if (r <= 0) {
        buf_.clear();
        return r == -2 ? Result::Timeout : Result::Eof;
    }
    buf_.resize(static_cast<std::size_t>(r));
    return Result::Ok;
}

LineReader::Result LineReader::skipRestOfLine() {
    while (true) {
        if (pos_ == buf_.size())
            if (const Result r = fill(); r != Result::Ok)
                return r;
        const void* nl = std::memchr(buf_.data() + pos_, '\n', buf_.size() - pos_);
        if (nl) {
            pos_ = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data()) + 1;
            return Result::TooLong;
        }
        pos_ = buf_.size();
    }
}

LineReader::Result LineReader::readLine(std::string& line, std::size_t maxLength) {
    line.clear();
    while (true) {
        if (pos_ == buf_.size())
            if (const Result r = fill(); r != Result::Ok)
                return r;
        const char* start = buf_.data() + pos_;
        const std::size_t available = buf_.size() - pos_;
        const auto* nl = static_cast<const char*>(std::memchr(start, '\n', available));
        const std::size_t take = nl ? static_cast<std::size_t>(nl - start) : available;
        if (line.size() + take > maxLength) {
            pos_ += take;
            return nl ? (++pos_, Result::TooLong) : skipRestOfLine();
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

void LineReader::discardBuffered() {
    buf_.clear();
    pos_ = 0;
}

}  // namespace demail::smtp
