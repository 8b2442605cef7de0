#include "demail/gateway/sending_policy.h"

#include <fstream>
#include <sstream>

#include "demail/connector/message/header_block.h"
#include "demail/gateway/intake.h"

namespace demail::gateway {
namespace {

connector::ShippingOptions standardOptions() {
    connector::ShippingOptions o;
    o.personal = true;
    o.dispatchConfirmation = true;
    o.receiptConfirmation = true;
    return o;
}

// "standard,authoritative" -> options; false on an unknown word.
bool parseOptionList(const std::string& list, connector::ShippingOptions& out, std::string& bad) {
    connector::ShippingOptions o;
    std::istringstream in(list);
    std::string word;
    while (std::getline(in, word, ',')) {
        word = connector::toLower(connector::trim(word));
        if (word.empty() || word == "none")
            continue;
        if (word == "standard") {
            o.personal = o.dispatchConfirmation = o.receiptConfirmation = true;
        } else if (word == "all") {
            o = {true, true, true, true, true};
        } else if (!connector::applyOptionWord(word, o)) {
            bad = word;
            return false;
        }
    }
    out = o;
    return true;
}

bool validCidr(const std::string& cidr) {
    // addressInCidr of the network's own address tells whether the text parses.
    const auto net = cidr.substr(0, cidr.find('/'));
    return addressInCidr(net, cidr);
}

bool senderMatches(const std::string& pattern, const std::string& sender) {
    if (pattern == "*")
        return true;
    if (pattern[0] == '@')
        return "@" + connector::domainOf(sender) == pattern;
    return pattern == sender;
}

bool viaMatches(const std::vector<std::string>& via, const std::string& clientAddress,
                const std::string& authUser) {
    if (via.empty())
        return true;
    for (const auto& v : via) {
        if (v == "auth"                ? !authUser.empty()
            : v.rfind("user:", 0) == 0 ? v.substr(5) == authUser && !authUser.empty()
                                       : addressInCidr(clientAddress, v))
            return true;
    }
    return false;
}

}  // namespace

std::string SendingRule::describe() const {
    return line == 0 ? "the built-in sending policy"
                     : "sending policy line " + std::to_string(line);
}

SendingPolicy SendingPolicy::builtIn() {
    SendingPolicy p;
    SendingRule r;
    r.sender = "*";
    r.options = standardOptions();
    p.rules.push_back(r);
    return p;
}

const SendingRule* SendingPolicy::match(const std::string& sender, const std::string& account,
                                        const std::string& clientAddress,
                                        const std::string& authUser) const {
    const std::string s = connector::toLower(sender);
    const std::string a = connector::toLower(account);
    for (const auto& r : rules)
        if (senderMatches(r.sender, s) && (r.account.empty() || r.account == a) &&
            viaMatches(r.via, clientAddress, authUser))
            return &r;
    return nullptr;
}

std::optional<std::uint64_t> SendingPolicy::accountLimit(const std::string& account) const {
    const std::string a = connector::toLower(account);
    for (const auto& l : accountLimits)
        if (l.account == a)
            return l.daily;
    return std::nullopt;
}

std::string loadSendingPolicy(const std::string& path, SendingPolicy& out) {
    std::ifstream in(path);
    if (!in)
        return "cannot read sending policy " + path;
    SendingPolicy policy;
    policy.source = path;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        const auto hash = line.find('#');
        if (hash != std::string::npos)
            line.resize(hash);
        std::istringstream words(line);
        std::string verb;
        if (!(words >> verb))
            continue;
        const auto fail = [&](const std::string& what) {
            return path + " line " + std::to_string(n) + ": " + what;
        };
        if (verb != "allow" && verb != "limit")
            return fail("expected 'allow ...' or 'limit account=... daily=N', got '" + verb + "'");
        SendingRule rule;
        rule.line = n;
        bool haveSender = false, haveDaily = false, haveOptions = false;
        std::uint64_t daily = 0;
        std::string word;
        while (words >> word) {
            const auto eq = word.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == word.size())
                return fail("expected key=value, got '" + word + "'");
            const std::string key = word.substr(0, eq);
            const std::string value = connector::toLower(word.substr(eq + 1));
            if (key == "sender" && verb == "allow") {
                const auto at = value.find('@');
                if (value != "*" && (at == std::string::npos || at + 1 == value.size() ||
                                     value.find('@', at + 1) != std::string::npos))
                    return fail("sender= takes an address, @domain or *, got '" + value + "'");
                rule.sender = value;
                haveSender = true;
            } else if (key == "via" && verb == "allow") {
                std::istringstream items(word.substr(eq + 1));
                std::string v;
                while (std::getline(items, v, ',')) {
                    if (v == "auth" || (v.rfind("user:", 0) == 0 && v.size() > 5) || validCidr(v))
                        rule.via.push_back(v);
                    else
                        return fail("via= takes networks (10.1.2.0/24), user:NAME or auth, got '" +
                                    v + "'");
                }
            } else if (key == "account") {
                if (!connector::isValidDeMailAddress(value))
                    return fail("account= takes a De-Mail address, got '" + value + "'");
                rule.account = value;
            } else if (key == "options" && verb == "allow") {
                std::string bad;
                if (!parseOptionList(value, rule.options, bad))
                    return fail("unknown option '" + bad +
                                "' (standard, all, none or the words of X-De-Mail-Options)");
                haveOptions = true;
            } else if (key == "daily") {
                try {
                    std::size_t used = 0;
                    daily = std::stoull(value, &used);
                    if (used != value.size())
                        throw std::invalid_argument(value);
                } catch (const std::exception&) {
                    return fail("daily= takes a number of messages, got '" + value + "'");
                }
                haveDaily = true;
            } else {
                return fail("unknown key '" + key + "' for '" + verb + "'");
            }
        }
        if (verb == "limit") {
            if (rule.account.empty() || !haveDaily)
                return fail("'limit' needs account= and daily=");
            policy.accountLimits.push_back({rule.account, daily});
            continue;
        }
        if (!haveSender)
            return fail("'allow' needs sender= (an address, @domain or *)");
        if (!haveOptions)
            rule.options = standardOptions();
        if (haveDaily)
            rule.daily = daily;
        policy.rules.push_back(std::move(rule));
    }
    out = std::move(policy);
    return {};
}

std::string optionTitle(const std::string& word) {
    if (word == "personal")
        return "Persönlich (personal)";
    if (word == "authoritative")
        return "Absenderbestätigt (authoritative)";
    if (word == "dispatch-confirmation")
        return "Versandbestätigung (dispatch-confirmation)";
    if (word == "receipt-confirmation")
        return "Eingangsbestätigung (receipt-confirmation)";
    if (word == "retrieve-confirmation")
        return "Abholbestätigung (retrieve-confirmation)";
    return word;
}

std::vector<std::string> optionsBeyond(const connector::ShippingOptions& asked,
                                       const connector::ShippingOptions& granted) {
    std::vector<std::string> out;
    const auto check = [&](bool a, bool g, const char* word) {
        if (a && !g)
            out.push_back(optionTitle(word));
    };
    check(asked.personal, granted.personal, "personal");
    check(asked.authoritative, granted.authoritative, "authoritative");
    check(asked.dispatchConfirmation, granted.dispatchConfirmation, "dispatch-confirmation");
    check(asked.receiptConfirmation, granted.receiptConfirmation, "receipt-confirmation");
    check(asked.retrieveConfirmation, granted.retrieveConfirmation, "retrieve-confirmation");
    return out;
}

}  // namespace demail::gateway
