#include "demail/connector/message/net_size.h"

#include <cctype>
#include <cstring>

#include "demail/connector/message/header_block.h"

namespace demail::connector {
namespace {

// The value of a parameter of a structured field: boundary="abc" or boundary=abc.
std::string parameter(const std::string& value, const std::string& name) {
    const std::string lower = toLower(value);
    std::size_t at = 0;
    while ((at = lower.find(name + "=", at)) != std::string::npos) {
        if (at == 0 || lower[at - 1] == ';' || lower[at - 1] == ' ' || lower[at - 1] == '\t')
            break;
        at += name.size() + 1;
    }
    if (at == std::string::npos)
        return {};
    std::size_t from = at + name.size() + 1;
    if (from < value.size() && value[from] == '"') {
        const auto close = value.find('"', from + 1);
        return value.substr(from + 1,
                            close == std::string::npos ? std::string::npos : close - from - 1);
    }
    const auto end = value.find_first_of("; \t", from);
    return value.substr(from, end == std::string::npos ? std::string::npos : end - from);
}

}  // namespace

void NetSizeCounter::feed(const char* data, std::size_t n) {
    while (n > 0) {
        const auto* lf = static_cast<const char*>(std::memchr(data, '\n', n));
        if (!lf) {
            pending_.append(data, n);
            return;
        }
        const auto len = static_cast<std::size_t>(lf - data);
        std::string_view text;
        if (pending_.empty()) {
            text = std::string_view(data, len);
        } else {
            pending_.append(data, len);
            text = pending_;
        }
        if (!text.empty() && text.back() == '\r')
            text.remove_suffix(1);
        line(text);
        pending_.clear();
        data += len + 1;
        n -= len + 1;
    }
}

void NetSizeCounter::line(std::string_view text) {
    // A boundary line of an enclosing multipart ends the part in hand, whatever state it is in.
    if (text.size() >= 2 && text[0] == '-' && text[1] == '-') {
        for (std::size_t depth = boundaries_.size(); depth-- > 0;) {
            const std::string& b = boundaries_[depth];
            if (text.substr(2, b.size()) != b)
                continue;
            const std::string_view rest = text.substr(2 + b.size());
            flushBase64();
            boundaries_.resize(depth + 1);
            if (rest.rfind("--", 0) == 0) {  // the closing delimiter: back to the outer epilogue
                boundaries_.pop_back();
                state_ = State::Preamble;
            } else {
                state_ = State::Headers;
                part_ = {};
                field_.clear();
            }
            return;
        }
    }
    switch (state_) {
        case State::Headers:
            if (text.empty()) {
                if (!field_.empty())
                    headerField(field_);
                field_.clear();
                endOfHeaders();
            } else if (text[0] == ' ' || text[0] == '\t') {
                field_ += text;
            } else {
                if (!field_.empty())
                    headerField(field_);
                field_ = text;
            }
            return;
        case State::Body:
            bodyLine(text);
            return;
        case State::Preamble:
            return;  // preamble and epilogue of a multipart: not payload
    }
}

void NetSizeCounter::headerField(const std::string& field) {
    const auto colon = field.find(':');
    if (colon == std::string::npos)
        return;
    const std::string name = toLower(trim(field.substr(0, colon)));
    const std::string value = trim(field.substr(colon + 1));
    if (name == "content-type")
        part_.contentType = value;
    else if (name == "content-transfer-encoding")
        part_.encoding = toLower(value);
}

void NetSizeCounter::endOfHeaders() {
    if (toLower(part_.contentType).rfind("multipart/", 0) == 0) {
        const std::string boundary = parameter(part_.contentType, "boundary");
        if (!boundary.empty()) {
            boundaries_.push_back(boundary);
            state_ = State::Preamble;
            return;
        }
    }
    encoding_ = part_.encoding == "base64"             ? Encoding::Base64
                : part_.encoding == "quoted-printable" ? Encoding::QuotedPrintable
                                                       : Encoding::Identity;
    state_ = State::Body;
}

void NetSizeCounter::bodyLine(std::string_view text) {
    switch (encoding_) {
        case Encoding::Base64:
            for (const char c : text)
                if (std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')
                    ++base64Chars_;
            return;
        case Encoding::QuotedPrintable: {
            bool soft = false;
            std::uint64_t bytes = 0;
            for (std::size_t i = 0; i < text.size(); ++i) {
                if (text[i] == '=') {
                    if (i + 1 == text.size()) {
                        soft = true;  // "=" at the end: the line goes on, no line break
                        break;
                    }
                    i += 2;
                }
                ++bytes;
            }
            net_ += bytes + (soft ? 0 : 2);
            return;
        }
        case Encoding::Identity:
            net_ += text.size() + 2;
            return;
    }
}

void NetSizeCounter::flushBase64() {
    net_ += base64Chars_ / 4 * 3 + (base64Chars_ % 4 == 0 ? 0 : base64Chars_ % 4 - 1);
    base64Chars_ = 0;
}

std::uint64_t NetSizeCounter::netBytes() const {
    return net_ + base64Chars_ / 4 * 3 + (base64Chars_ % 4 == 0 ? 0 : base64Chars_ % 4 - 1);
}

}  // namespace demail::connector
