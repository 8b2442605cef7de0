#include "mime_util.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <regex>

namespace demail::sim::provider {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

ParsedMessage parseMessage(const std::string& data) {
    ParsedMessage m;
    size_t pos = 0;
    std::string current;
    auto flush = [&] {
        if (current.empty())
            return;
        auto colon = current.find(':');
        if (colon == std::string::npos || colon == 0) {
            m.valid = false;
            return;
        }
        std::string value = current.substr(colon + 1);
        size_t start = value.find_first_not_of(" \t");
        value = start == std::string::npos ? std::string{} : value.substr(start);
        m.headers.emplace_back(current.substr(0, colon), value);
        current.clear();
    };
    m.valid = true;
    while (pos < data.size()) {
        size_t eol = data.find('\n', pos);
        if (eol == std::string::npos)
            return ParsedMessage{};  // no separator line: incomplete
        std::string line = data.substr(pos, eol - pos);
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        pos = eol + 1;
        if (line.empty()) {
            flush();
            m.body = data.substr(pos);
            if (m.headers.empty())
                m.valid = false;
            return m;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (current.empty())
                return ParsedMessage{};
            current += " " + line.substr(line.find_first_not_of(" \t"));
        } else {
            flush();
            if (!m.valid)
                return ParsedMessage{};
            current = line;
        }
    }
    return ParsedMessage{};
}

std::string header(const ParsedMessage& m, const std::string& name) {
    const std::string want = lower(name);
    for (const auto& [n, v] : m.headers)
        if (lower(n) == want)
            return v;
    return {};
}

bool hasHeader(const ParsedMessage& m, const std::string& name) {
    const std::string want = lower(name);
    return std::any_of(m.headers.begin(), m.headers.end(),
                       [&](const auto& h) { return lower(h.first) == want; });
}

std::vector<std::string> addresses(const std::string& text) {
    static const std::regex addr(R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9._\-]+)");
    std::vector<std::string> out;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), addr);
         it != std::sregex_iterator(); ++it)
        out.push_back(lower(it->str()));
    return out;
}

std::string domainOf(const std::string& address) {
    auto at = address.rfind('@');
    return at == std::string::npos ? std::string{} : lower(address.substr(at + 1));
}

ChosenRecipients chosenRecipients(const ParsedMessage& m) {
    ChosenRecipients r;
    std::string chosen = header(m, "X-de-mail-chosen-recipient");
    if (chosen.empty()) {
        r.to = addresses(header(m, "To"));
        r.cc = addresses(header(m, "Cc"));
        r.bcc = addresses(header(m, "Bcc"));
        return r;
    }
    size_t start = 0;
    while (start <= chosen.size()) {
        size_t semi = chosen.find(';', start);
        std::string part =
            chosen.substr(start, semi == std::string::npos ? std::string::npos : semi - start);
        auto eq = part.find('=');
        if (eq != std::string::npos) {
            std::string kind = lower(part.substr(0, eq));
            kind.erase(std::remove_if(kind.begin(), kind.end(),
                                      [](unsigned char c) { return std::isspace(c); }),
                       kind.end());
            auto list = addresses(part.substr(eq + 1));
            if (kind == "to")
                r.to = list;
            else if (kind == "cc")
                r.cc = list;
            else if (kind == "bcc")
                r.bcc = list;
        }
        if (semi == std::string::npos)
            break;
        start = semi + 1;
    }
    return r;
}

std::string formatChosenRecipients(const ChosenRecipients& r) {
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& a : v)
            s += (s.empty() ? "" : ", ") + a;
        return s;
    };
    std::string out;
    if (!r.to.empty())
        out += "to=" + join(r.to);
    if (!r.cc.empty())
        out += (out.empty() ? "" : "; ") + std::string("cc=") + join(r.cc);
    if (!r.bcc.empty())
        out += (out.empty() ? "" : "; ") + std::string("bcc=") + join(r.bcc);
    return out;
}

std::string serializeField(const std::string& name, const std::string& value) {
    const std::string line = name + ": " + value;
    if (line.find("\r\n") != std::string::npos)  // folded by its maker (a signed header)
        return line + "\r\n";
    // Folded at white space so that no line exceeds 998 characters (RFC 5322 §2.1.1).
    std::string out;
    std::size_t start = 0;
    while (line.size() - start > 998) {
        const auto cut = line.find_last_of(" \t", start + 998);
        if (cut == std::string::npos || cut <= start)
            break;
        out.append(line, start, cut - start);
        out += "\r\n";
        start = cut;
    }
    out.append(line, start, std::string::npos);
    out += "\r\n";
    return out;
}

std::string serialize(const std::vector<std::pair<std::string, std::string>>& headers,
                      const std::string& body) {
    std::string out;
    for (const auto& [n, v] : headers)
        out += serializeField(n, v);
    out += "\r\n";
    out += body;
    return out;
}

std::string encodeWord(const std::string& utf8) {
    bool ascii = std::all_of(utf8.begin(), utf8.end(),
                             [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
    if (ascii)
        return utf8;
    static const char* hex = "0123456789ABCDEF";
    std::string out = "=?UTF-8?Q?";
    for (unsigned char c : utf8) {
        if (std::isalnum(c) || c == '*' || c == '.' || c == '-')
            out += static_cast<char>(c);
        else if (c == ' ')
            out += '_';
        else {
            out += '=';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out + "?=";
}

std::string rfc5322Date() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buf;
}

std::string isoTime() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string sha256Base64(const std::string& data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    unsigned char b64[EVP_MAX_MD_SIZE * 2];
    int n = EVP_EncodeBlock(b64, md, static_cast<int>(len));
    return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

}  // namespace demail::sim::provider
