#include "demail/connector/message/header_block.h"

#include <algorithm>
#include <cctype>

namespace demail::connector {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string toLower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string trim(std::string_view s) {
    const auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    std::size_t b = 0, e = s.size();
    while (b < e && isSpace(s[b]))
        ++b;
    while (e > b && isSpace(s[e - 1]))
        --e;
    return std::string(s.substr(b, e - b));
}

std::optional<HeaderBlock> HeaderBlock::parse(std::string_view m, std::string& error,
                                              const HeaderLimits& limits) {
    HeaderBlock block;
    std::size_t pos = 0;
    while (true) {
        if (pos >= m.size()) {  // no empty line: a message without body
            block.bodyOffset_ = m.size();
            return block;
        }
        if (pos > limits.maxSectionBytes) {
            error =
                "header section larger than " + std::to_string(limits.maxSectionBytes) + " bytes";
            return std::nullopt;
        }
        std::size_t eol = m.find('\n', pos);
        const std::size_t next = eol == std::string_view::npos ? m.size() : eol + 1;
        std::size_t lineEnd = eol == std::string_view::npos ? m.size() : eol;
        if (lineEnd > pos && m[lineEnd - 1] == '\r')
            --lineEnd;
        if (lineEnd - pos > limits.maxLineBytes) {
            error = "header line longer than " + std::to_string(limits.maxLineBytes) + " bytes";
            return std::nullopt;
        }
        std::string_view line = m.substr(pos, lineEnd - pos);
        if (line.empty()) {  // end of the header section
            block.bodyOffset_ = next;
            return block;
        }
        if (line[0] == ' ' || line[0] == '\t') {  // continuation (folding)
            if (block.fields_.empty()) {
                error = "the message starts with a folded line";
                return std::nullopt;
            }
            block.fields_.back().value += " " + trim(line);
        } else {
            const std::size_t colon = line.find(':');
            std::string_view name = colon == std::string_view::npos ? line : line.substr(0, colon);
            const bool nameOk = colon != std::string_view::npos && !name.empty() &&
                                std::all_of(name.begin(), name.end(), [](char c) {
                                    const auto u = static_cast<unsigned char>(c);
                                    return u > 32 && u < 127 && c != ':';
                                });
            if (!nameOk) {
                error = "malformed header line (no 'name:' at the start)";
                return std::nullopt;
            }
            if (block.fields_.size() >= limits.maxFields) {
                error = "more than " + std::to_string(limits.maxFields) + " header fields";
                return std::nullopt;
            }
            block.fields_.push_back({std::string(name), trim(line.substr(colon + 1))});
        }
        pos = next;
    }
}

const std::string* HeaderBlock::get(std::string_view name) const {
    for (const auto& f : fields_)
        if (equalsIgnoreCase(f.name, name))
            return &f.value;
    return nullptr;
}

std::size_t HeaderBlock::count(std::string_view name) const {
    return static_cast<std::size_t>(
        std::count_if(fields_.begin(), fields_.end(),
                      [&](const HeaderField& f) { return equalsIgnoreCase(f.name, name); }));
}

void HeaderBlock::remove(std::string_view name) {
    fields_.erase(
        std::remove_if(fields_.begin(), fields_.end(),
                       [&](const HeaderField& f) { return equalsIgnoreCase(f.name, name); }),
        fields_.end());
}

void HeaderBlock::add(std::string name, std::string value) {
    fields_.push_back({std::move(name), std::move(value)});
}

void HeaderBlock::set(std::string name, std::string value) {
    remove(name);
    add(std::move(name), std::move(value));
}

namespace {

// RFC 5322 §2.1.1: no line over 998 characters. A field longer than that is folded (CRLF before a
// space or tab) at the last white space that keeps the line within 998; one without any such
// white space is left whole (serialize's caller checks with longestLine()).
void appendFolded(std::string& out, const std::string& line) {
    constexpr std::size_t kMax = 998;
    std::size_t start = 0;
    while (line.size() - start > kMax) {
        std::size_t cut = line.find_last_of(" \t", start + kMax);
        if (cut == std::string::npos || cut <= start)
            break;
        out.append(line, start, cut - start);
        out += "\r\n";
        start = cut;  // the white space begins the continuation line
    }
    out.append(line, start, std::string::npos);
}

}  // namespace

std::string HeaderBlock::serialize() const {
    std::string out;
    for (const auto& f : fields_) {
        std::string line = f.name + ": ";
        for (char c : f.value)  // never let a value break the header structure
            line += (c == '\r' || c == '\n') ? ' ' : c;
        appendFolded(out, line);
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

}  // namespace demail::connector
