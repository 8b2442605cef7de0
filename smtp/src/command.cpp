#include "demail/smtp/command.h"

#include <algorithm>
#include <cctype>

namespace demail::smtp {

Command parseCommand(std::string_view line) {
    Command c;
    const auto sp = line.find(' ');
    std::string_view verb = line.substr(0, sp);
    c.verb.reserve(verb.size());
    for (char ch : verb)
        c.verb += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (sp != std::string_view::npos)
        c.argument = std::string(line.substr(sp + 1));
    return c;
}

bool isPlainMailbox(std::string_view a, std::string& why) {
    const auto at = a.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == a.size()) {
        why = "address must be local@domain";
        return false;
    }
    if (a.size() > 254 || at > 64 || a.size() - at - 1 > 255) {
        why = "address too long";
        return false;
    }
    std::string_view local = a.substr(0, at), domain = a.substr(at + 1);
    if (local.front() == '"') {
        why = "quoted local parts are not accepted";
        return false;
    }
    if (domain.front() == '[') {
        why = "address literals are not accepted";
        return false;
    }
    const auto atext = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("!#$&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
    };
    if (!std::all_of(local.begin(), local.end(), atext) || local.front() == '.' ||
        local.back() == '.' || local.find("..") != std::string_view::npos) {
        why = "invalid local part";
        return false;
    }
    if (local.find('%') != std::string_view::npos || local.find('!') != std::string_view::npos) {
        why = "routing characters (% or !) in the local part are not accepted";
        return false;
    }
    const auto dchar = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    };
    if (!std::all_of(domain.begin(), domain.end(), dchar) || domain.front() == '.' ||
        domain.back() == '.' || domain.find("..") != std::string_view::npos ||
        domain.find('.') == std::string_view::npos) {
        why = "invalid domain";
        return false;
    }
    return true;
}

std::optional<Path> parsePath(std::string_view arg, std::string_view prefix, std::string& error) {
    if (arg.size() < prefix.size() ||
        !std::equal(prefix.begin(), prefix.end(), arg.begin(), [](char a, char b) {
            return std::toupper(static_cast<unsigned char>(a)) ==
                   std::toupper(static_cast<unsigned char>(b));
        })) {
        error = "expected " + std::string(prefix) + "<address>";
        return std::nullopt;
    }
    arg.remove_prefix(prefix.size());
    if (arg.empty() || arg.front() != '<') {  // RFC 5321: no space after the colon, brackets
        error = "the address must be in angle brackets";
        return std::nullopt;
    }
    const auto close = arg.find('>');
    if (close == std::string_view::npos) {
        error = "missing '>'";
        return std::nullopt;
    }
    Path p;
    std::string_view addr = arg.substr(1, close - 1);
    if (!addr.empty() && addr.front() == '@') {
        error = "source routes are not accepted";
        return std::nullopt;
    }
    if (!addr.empty()) {
        std::string why;
        if (!isPlainMailbox(addr, why)) {
            error = why;
            return std::nullopt;
        }
        const auto at = addr.rfind('@');
        p.address = std::string(addr.substr(0, at + 1));
        for (char c : addr.substr(at + 1))
            p.address += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string_view rest = arg.substr(close + 1);
    while (!rest.empty()) {
        if (rest.front() != ' ') {
            error = "parameters must be separated by a space";
            return std::nullopt;
        }
        rest.remove_prefix(1);
        const auto sp = rest.find(' ');
        std::string_view param = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp);
        if (param.empty())
            continue;
        const auto eq = param.find('=');
        std::string key;
        for (char c : param.substr(0, eq))
            key += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (key.empty() || p.params.count(key)) {
            error = "empty or repeated parameter";
            return std::nullopt;
        }
        p.params[key] = eq == std::string_view::npos ? "" : std::string(param.substr(eq + 1));
    }
    return p;
}

std::optional<std::string> decodeXtext(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '+') {
            if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
                !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
                return std::nullopt;
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return std::nullopt;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace demail::smtp
