#include "demail/connector/message/inbound_prepare.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "demail/connector/message/header_block.h"

namespace demail::connector {
namespace {

constexpr std::size_t kMaxLine = 998;  // RFC 5321 §4.5.3.1.6, without the CRLF
constexpr std::size_t kQpLine = 76;    // RFC 2045 §6.7 (5)
constexpr int kMaxMimeDepth = 20;      // nesting we repair; deeper with long lines: refused
constexpr const char* kCrlf = "\r\n";

bool isWsp(char c) {
    return c == ' ' || c == '\t';
}

// Lines of CRLF-terminated text. The last element is what follows the last CRLF (often empty).
std::vector<std::string_view> splitLines(std::string_view text) {
    std::vector<std::string_view> lines;
    std::size_t pos = 0;
    while (true) {
        const auto eol = text.find(kCrlf, pos);
        if (eol == std::string_view::npos) {
            lines.push_back(text.substr(pos));
            return lines;
        }
        lines.push_back(text.substr(pos, eol - pos));
        pos = eol + 2;
    }
}

std::string joinLines(const std::vector<std::string>& lines) {
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i)
            out += kCrlf;
        out += lines[i];
    }
    return out;
}

bool hasLongLine(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto eol = text.find(kCrlf, pos);
        if (eol == std::string_view::npos)
            eol = text.size();
        if (eol - pos > kMaxLine)
            return true;
        pos = eol + 2;
    }
    return false;
}

// One header field as written: its name and its physical lines (without CRLF).
struct RawField {
    std::string name;
    std::vector<std::string> lines;
    std::string unfolded() const {
        std::string v;
        for (const auto& l : lines)
            v += l;
        const auto colon = v.find(':');
        return trim(colon == std::string::npos ? v : v.substr(colon + 1));
    }
};

struct Entity {
    std::vector<RawField> fields;
    bool hasBody = false;  // an empty line ended the header section
    std::string body;
};

// Splits a CRLF-normalised entity. Returns false if the header section is malformed (a line that
// is neither a field nor a continuation).
bool splitEntity(std::string_view text, Entity& e, std::string& error) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto eol = text.find(kCrlf, pos);
        const bool last = eol == std::string_view::npos;
        if (last)
            eol = text.size();
        std::string_view line = text.substr(pos, eol - pos);
        pos = last ? text.size() : eol + 2;
        if (line.empty()) {
            if (last)
                break;
            e.hasBody = true;
            e.body = std::string(text.substr(pos));
            return true;
        }
        if (isWsp(line[0])) {
            if (e.fields.empty()) {
                error = "the header section starts with a folded line";
                return false;
            }
            e.fields.back().lines.emplace_back(line);
            continue;
        }
        const auto colon = line.find(':');
        const std::string_view name = line.substr(0, colon);
        if (colon == std::string_view::npos || name.empty() ||
            !std::all_of(name.begin(), name.end(), [](char c) {
                const auto u = static_cast<unsigned char>(c);
                return u > 32 && u < 127;
            })) {
            error = "malformed header line (no 'name:' at the start)";
            return false;
        }
        e.fields.push_back({std::string(name), {std::string(line)}});
    }
    return true;
}

std::string joinEntity(const Entity& e) {
    std::string out;
    for (const auto& f : e.fields)
        for (const auto& l : f.lines) {
            out += l;
            out += kCrlf;
        }
    if (e.hasBody) {
        out += kCrlf;
        out += e.body;
    }
    return out;
}

const RawField* findField(const Entity& e, std::string_view name) {
    for (const auto& f : e.fields)
        if (equalsIgnoreCase(f.name, name))
            return &f;
    return nullptr;
}

void setField(Entity& e, const std::string& name, const std::string& value) {
    e.fields.erase(
        std::remove_if(e.fields.begin(), e.fields.end(),
                       [&](const RawField& f) { return equalsIgnoreCase(f.name, name); }),
        e.fields.end());
    e.fields.push_back({name, {name + ": " + value}});
}

// Folds physical header lines longer than 998 octets at white space. False if a line has no
// place to fold (a 998-octet run without white space): the header cannot be kept unchanged.
bool foldField(RawField& f, int& folded) {
    std::vector<std::string> out;
    bool changed = false;
    for (const std::string& line : f.lines) {
        std::size_t start = 0;  // offsets, not erase(): a huge line must not cost O(n^2)
        while (line.size() - start > kMaxLine) {
            // The last white space at or before column 998 that has text after it (a
            // continuation line must not be white space only), and not the first character.
            std::size_t cut = std::string::npos;
            for (std::size_t i = start + kMaxLine; i > start; --i)
                if (isWsp(line[i]) && i + 1 < line.size() && !isWsp(line[i + 1])) {
                    cut = i;
                    break;
                }
            if (cut == std::string::npos)
                return false;
            out.push_back(line.substr(start, cut - start));
            start = cut;
            changed = true;
        }
        out.push_back(line.substr(start));
    }
    if (changed) {
        f.lines = std::move(out);
        ++folded;
    }
    return true;
}

std::string hex2(unsigned char c) {
    static const char digits[] = "0123456789ABCDEF";
    return {'=', digits[c >> 4], digits[c & 15]};
}

// Soft line breaks into quoted-printable lines that are too long, never inside an "=XX".
std::string rewrapQuotedPrintable(std::string_view body) {
    std::vector<std::string> out;
    for (std::string_view line : splitLines(body)) {
        while (line.size() > kQpLine) {
            std::size_t cut = kQpLine - 1;  // room for the '='
            if (line[cut - 1] == '=')
                cut -= 1;
            else if (line[cut - 2] == '=')
                cut -= 2;
            out.emplace_back(std::string(line.substr(0, cut)) + "=");
            line.remove_prefix(cut);
        }
        out.emplace_back(line);
    }
    return joinLines(out);
}

// Long base64 lines split into 76-character lines; decoders skip line breaks, so the content
// stays the same.
std::string rewrapBase64(std::string_view body) {
    std::vector<std::string> out;
    for (std::string_view line : splitLines(body)) {
        while (line.size() > kQpLine) {
            out.emplace_back(line.substr(0, kQpLine));
            line.remove_prefix(kQpLine);
        }
        out.emplace_back(line);
    }
    return joinLines(out);
}

// The value of a Content-Type parameter (boundary), quoted or not, as written.
std::string parameter(const std::string& value, const std::string& name) {
    const std::string lower = toLower(value);
    std::size_t pos = 0;
    while ((pos = lower.find(name + "=", pos)) != std::string::npos) {
        if (pos == 0 || lower[pos - 1] == ';' || isWsp(lower[pos - 1])) {
            std::string v = value.substr(pos + name.size() + 1);
            if (!v.empty() && v[0] == '"') {
                const auto close = v.find('"', 1);
                return close == std::string::npos ? std::string{} : v.substr(1, close - 1);
            }
            return v.substr(0, v.find_first_of("; \t"));
        }
        pos += name.size() + 1;
    }
    return {};
}

struct Repair {
    int& reencoded;
    int& folded;
    std::string& error;
};

bool repairEntity(Entity& e, int depth, Repair& r);

// Re-assembles a multipart body with each part repaired; the delimiter lines stay as written.
bool repairMultipart(Entity& e, const std::string& boundary, int depth, Repair& r) {
    const std::string delim = "--" + boundary;
    const auto isDelimiter = [&](std::string_view line) {
        if (line.substr(0, delim.size()) != delim)
            return false;
        std::string_view rest = line.substr(delim.size());
        if (rest.substr(0, 2) == "--")
            rest.remove_prefix(2);
        return rest.find_first_not_of(" \t") == std::string_view::npos;
    };
    const auto lines = splitLines(e.body);
    std::vector<std::string> out;
    std::vector<std::string_view> segment;
    bool inPart = false;  // false: preamble or epilogue, which nobody displays
    const auto flush = [&]() -> bool {
        std::string text;
        for (std::size_t i = 0; i < segment.size(); ++i) {
            if (i)
                text += kCrlf;
            text += segment[i];
        }
        if (!hasLongLine(text)) {  // untouched, byte for byte
            out.push_back(std::move(text));
            return true;
        }
        if (inPart) {
            Entity part;
            if (!splitEntity(text, part, r.error)) {
                // An unparsable part header: a reader shows it as text. Only long lines matter.
                if (hasLongLine(text)) {
                    r.error = "a MIME part with a malformed header and lines over 998 octets";
                    return false;
                }
                out.push_back(std::move(text));
                r.error.clear();
                return true;
            }
            if (!repairEntity(part, depth + 1, r))
                return false;
            out.push_back(joinEntity(part));
        } else {
            out.push_back(rewrapBase64(text));  // ignored by readers: any wrap will do
        }
        return true;
    };
    for (std::string_view line : lines) {
        if (isDelimiter(line)) {
            if (!flush())
                return false;
            segment.clear();
            out.emplace_back(line);
            inPart = line.substr(delim.size(), 2) != "--";
            continue;
        }
        segment.push_back(line);
    }
    if (!flush())
        return false;
    // out holds segments and delimiter lines; each boundary between them was one CRLF.
    e.body = joinLines(out);
    return true;
}

bool repairEntity(Entity& e, int depth, Repair& r) {
    for (auto& f : e.fields)
        if (!foldField(f, r.folded)) {
            r.error =
                "header " + f.name + " has more than 998 octets without white space to fold at";
            return false;
        }
    if (!e.hasBody || !hasLongLine(e.body))
        return true;
    if (depth > kMaxMimeDepth) {
        r.error = "MIME nesting deeper than " + std::to_string(kMaxMimeDepth) +
                  " with lines over 998 octets";
        return false;
    }
    const RawField* ct = findField(e, "Content-Type");
    const std::string type = ct ? toLower(ct->unfolded()) : "";
    const RawField* cteField = findField(e, "Content-Transfer-Encoding");
    const std::string cte = cteField ? toLower(cteField->unfolded()) : "";
    if (ct && type.rfind("multipart/", 0) == 0) {
        const std::string boundary = parameter(ct->unfolded(), "boundary");
        if (boundary.empty()) {
            r.error = "a multipart entity without boundary has lines over 998 octets";
            return false;
        }
        return repairMultipart(e, boundary, depth, r);
    }
    if (type.rfind("message/rfc822", 0) == 0 || type.rfind("message/global", 0) == 0) {
        Entity inner;
        if (!splitEntity(e.body, inner, r.error))
            return false;
        if (!repairEntity(inner, depth + 1, r))
            return false;
        e.body = joinEntity(inner);
        return true;
    }
    if (cte == "base64") {
        e.body = rewrapBase64(e.body);
    } else if (cte == "quoted-printable") {
        e.body = rewrapQuotedPrintable(e.body);
    } else if (cte.empty() || cte == "7bit" || cte == "8bit" || cte == "binary") {
        e.body = encodeQuotedPrintable(e.body);
        setField(e, "Content-Transfer-Encoding", "quoted-printable");
    } else {
        r.error = "a part in transfer encoding '" + cte + "' has lines over 998 octets";
        return false;
    }
    ++r.reencoded;
    return true;
}

// Printable ASCII without ';' for the verdict header's values (they are validated already;
// this is so that a future caller cannot break the header's structure).
std::string token(std::string_view v) {
    std::string out;
    for (char c : v) {
        const auto u = static_cast<unsigned char>(c);
        out += (u > 32 && u < 127 && c != ';' && c != '"' && c != '\\') ? c : '_';
    }
    return out.substr(0, 256);
}

std::string printable(std::string_view v) {
    std::string out;
    for (char c : v)
        if (static_cast<unsigned char>(c) >= 32 && c != 127)
            out += c;
    return out.substr(0, 256);
}

}  // namespace

const std::vector<std::string>& defaultInternalTrustHeaders() {
    static const std::vector<std::string> h = {"X-MS-Exchange-Organization-*",
                                               "X-MS-Exchange-CrossTenant-*",
                                               "X-MS-Exchange-Transport-*",
                                               "X-MS-Has-Attach",
                                               "X-Spam-*",
                                               "X-Virus-*",
                                               "Authentication-Results",
                                               "ARC-Authentication-Results",
                                               "Received-SPF",
                                               "X-Demail-Gateway-*",
                                               "X-De-Mail-Options",
                                               "X-Original-To",
                                               "Delivered-To",
                                               "Return-Path"};
    return h;
}

std::string normalizeLineEnds(std::string_view in, std::size_t* nulsRemoved, bool* changed) {
    std::string out;
    out.reserve(in.size() + in.size() / 64 + 2);
    std::size_t nuls = 0;
    bool repaired = false;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '\0') {
            ++nuls;
        } else if (c == '\r') {
            out += kCrlf;
            if (i + 1 < in.size() && in[i + 1] == '\n')
                ++i;
            else
                repaired = true;
        } else if (c == '\n') {
            out += kCrlf;
            repaired = true;
        } else {
            out += c;
        }
    }
    if (out.size() < 2 || out.compare(out.size() - 2, 2, kCrlf) != 0)
        out += kCrlf;
    if (nulsRemoved)
        *nulsRemoved = nuls;
    if (changed)
        *changed = repaired;
    return out;
}

std::string encodeQuotedPrintable(std::string_view text) {
    std::vector<std::string> out;
    for (std::string_view line : splitLines(text)) {
        std::string enc;
        std::size_t width = 0;
        for (std::size_t i = 0; i < line.size(); ++i) {
            const auto c = static_cast<unsigned char>(line[i]);
            std::string tok;
            const bool lastInLine = i + 1 == line.size();
            if ((c >= 33 && c <= 126 && c != '=') || (isWsp(line[i]) && !lastInLine))
                tok = std::string(1, line[i]);
            else
                tok = hex2(c);
            if (width == 0 && tok == ".")  // never a dot at the start of a line
                tok = hex2(c);
            if (width + tok.size() > kQpLine - 1) {
                enc += "=\r\n";
                width = 0;
                if (tok == ".")
                    tok = hex2(c);
            }
            enc += tok;
            width += tok.size();
        }
        out.push_back(std::move(enc));
    }
    return joinLines(out);
}

bool isSmtpMailbox(std::string_view a) {
    const auto at = a.rfind('@');
    if (at == std::string_view::npos || at == 0 || at > 64 || a.size() > 254 || at + 1 >= a.size())
        return false;
    const std::string_view local = a.substr(0, at);
    const std::string_view domain = a.substr(at + 1);
    static const std::string_view atext =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~";
    if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
        return false;
    for (char c : local)
        if (c != '.' && atext.find(c) == std::string_view::npos)
            return false;
    if (domain.find('.') == std::string_view::npos)
        return false;
    std::size_t start = 0;
    while (start <= domain.size()) {
        auto dot = domain.find('.', start);
        if (dot == std::string_view::npos)
            dot = domain.size();
        const std::string_view label = domain.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char c : label)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
                return false;
        start = dot + 1;
    }
    return true;
}

bool headerMatches(std::string_view name, const std::vector<std::string>& patterns) {
    for (const auto& p : patterns) {
        if (!p.empty() && p.back() == '*') {
            const std::string_view prefix(p.data(), p.size() - 1);
            if (name.size() >= prefix.size() &&
                equalsIgnoreCase(name.substr(0, prefix.size()), prefix))
                return true;
        } else if (equalsIgnoreCase(name, p)) {
            return true;
        }
    }
    return false;
}

bool isSafeForSmtp(std::string_view m) {
    std::size_t lineStart = 0;
    for (std::size_t i = 0; i < m.size(); ++i) {
        const char c = m[i];
        if (c == '\0')
            return false;
        if (c == '\r') {
            if (i + 1 >= m.size() || m[i + 1] != '\n')
                return false;
            if (i - lineStart > kMaxLine)
                return false;
            ++i;
            lineStart = i + 1;
        } else if (c == '\n') {
            return false;
        }
    }
    return m.size() - lineStart <= kMaxLine;
}

std::string PreparedInbound::repairs() const {
    std::string r;
    const auto add = [&](const char* w) { r += (r.empty() ? "" : ",") + std::string(w); };
    if (lineEndsRepaired)
        add("crlf");
    if (nulsRemoved)
        add("nul");
    if (partsReencoded)
        add("reencoded");
    if (headersFolded)
        add("folded");
    if (duplicatesDropped)
        add("duplicates");
    if (!stripped.empty())
        add("stripped");
    return r.empty() ? "none" : r;
}

PreparedInbound prepareInbound(std::string_view raw, const std::vector<std::string>& stripHeaders,
                               const InboundStamp& stamp) {
    PreparedInbound p;
    const std::string text = normalizeLineEnds(raw, &p.nulsRemoved, &p.lineEndsRepaired);
    Entity top;
    if (!splitEntity(text, top, p.refusal)) {
        p.refusal = "header: " + p.refusal;
        return p;
    }
    // Header hygiene on the top level only: nested messages are content, not trust signals.
    std::vector<RawField> kept;
    std::map<std::string, std::string> firstDeMail;  // lower-case name -> first value
    for (auto& f : top.fields) {
        if (headerMatches(f.name, stripHeaders) || headerMatches(f.name, {"X-Demail-Gateway-*"})) {
            p.stripped.push_back(f.name);
            continue;
        }
        if (headerMatches(f.name, {"X-de-mail-*"})) {
            const std::string key = toLower(f.name);
            const auto it = firstDeMail.find(key);
            if (it != firstDeMail.end()) {
                ++p.duplicatesDropped;
                if (it->second != f.unfolded())
                    p.duplicatesDisagree = true;
                continue;
            }
            firstDeMail.emplace(key, f.unfolded());
        }
        kept.push_back(std::move(f));
    }
    top.fields = std::move(kept);
    int reencoded = 0, folded = 0;
    Repair r{reencoded, folded, p.refusal};
    if (!repairEntity(top, 0, r))
        return p;
    p.partsReencoded = reencoded;
    p.headersFolded = folded;
    if (p.partsReencoded && !findField(top, "MIME-Version"))
        setField(top, "MIME-Version", "1.0");

    std::string verdict = "type=" + token(stamp.kind) + "; account=" + token(stamp.account) +
                          "; sender=" + (stamp.sender.empty() ? "<>" : token(stamp.sender)) +
                          "; provider-id=" + token(stamp.providerId) + "; repaired=" + p.repairs();
    if (p.duplicatesDisagree)
        verdict += "; suspicious=conflicting-x-de-mail-headers";
    std::string head = "Received: from De-Mail provider by " + token(stamp.gatewayName) +
                       " (demail-gateway) with HTTPS id " + token(stamp.providerId) + ";\r\n\t" +
                       printable(stamp.date) + "\r\n" + kGatewayVerdictHeader + ": " + verdict +
                       "\r\n";
    p.message = head + joinEntity(top);
    if (!isSafeForSmtp(p.message)) {  // a bug guard: never hand the relay what it can misread
        p.refusal = "internal error: the prepared message is not SMTP-safe";
        p.message.clear();
    }
    return p;
}

}  // namespace demail::connector
