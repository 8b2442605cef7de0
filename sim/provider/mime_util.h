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

// Serialises headers + body with CRLF line ends.
std::string serialize(const std::vector<std::pair<std::string, std::string>>& headers,
                      const std::string& body);
// RFC 2047 Q-encoding for non-ASCII header text (the TR subjects contain umlauts).
std::string encodeWord(const std::string& utf8);
std::string rfc5322Date();
std::string isoTime();
std::string sha256Base64(const std::string& data);

}  // namespace demail::sim::provider
