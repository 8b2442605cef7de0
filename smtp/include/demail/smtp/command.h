// SMTP command lines (RFC 5321 §4.1) and the paths of MAIL FROM / RCPT TO with their ESMTP
// parameters. Strict: what is not plainly an addr-spec is refused, which also closes the classic
// open-relay tricks (source routes, %-hack, bang paths, quoted local parts, IP literals).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace demail::smtp {

struct Command {
    std::string verb;      // upper case
    std::string argument;  // the rest, without the separating space
};
Command parseCommand(std::string_view line);  // line without CRLF

struct Path {
    std::string address;                        // empty for the null path <>
    std::map<std::string, std::string> params;  // keyword upper case -> value (may be empty)
};
// `argument` is what follows "MAIL" / "RCPT", e.g. "FROM:<a@b> SIZE=10"; prefix "FROM:" or "TO:".
std::optional<Path> parsePath(std::string_view argument, std::string_view prefix,
                              std::string& error);

// local@domain with RFC 5321 limits (local <= 64, domain <= 255, path <= 256), dot-atoms only.
bool isPlainMailbox(std::string_view address, std::string& why);

// RFC 3461 xtext decoding (ORCPT, ENVID); nothing on malformed input.
std::optional<std::string> decodeXtext(std::string_view s);

}  // namespace demail::smtp
