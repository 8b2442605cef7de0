// Just enough RFC 5322 handling for the simulator: header access, address extraction.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace demail::sim::provider {

struct ParsedMessage {
    std::vector<std::pair<std::string, std::string>> headers;  // name, unfolded value
    std::string body;
    bool valid = false;  // has a header block and a separator line
};

ParsedMessage parseMessage(const std::string& data);
// First occurrence wins, case-insensitive (TR-01201 3.4).
std::string header(const ParsedMessage& m, const std::string& name);
bool hasHeader(const ParsedMessage& m, const std::string& name);
std::vector<std::string> addresses(const std::string& text);  // lower-cased addr-specs
std::string domainOf(const std::string& address);
std::string lower(std::string s);

struct ChosenRecipients {
    std::vector<std::string> to, cc, bcc;
};
// X-de-mail-chosen-recipient ("to=a,b;cc=c;bcc=d"), or To/Cc/Bcc when that header is absent.
ChosenRecipients chosenRecipients(const ParsedMessage& m);
std::string formatChosenRecipients(const ChosenRecipients& r);

// One header field as written (folded to 998-character lines, or as its maker folded it when the
// value holds CRLF), with its CRLF: also the field's "simple" canonical form (RFC 6376 §3.4.1).
std::string serializeField(const std::string& name, const std::string& value);
// Serialises headers + body with CRLF line ends.
std::string serialize(const std::vector<std::pair<std::string, std::string>>& headers,
                      const std::string& body);
// RFC 2047 Q-encoding for non-ASCII header text (the TR subjects contain umlauts).
std::string encodeWord(const std::string& utf8);
std::string rfc5322Date();
std::string isoTime();
std::string sha256Base64(const std::string& data);

}  // namespace demail::sim::provider
