// Who may send De-Mail as which account, with which options, and how many a day (IS_GS §10.1.2,
// §10.2.1). The accounts file says which account a sender sends as; this policy says whether it
// may, from where, and with which of the five options. An absenderbestätigt message replaces the
// written form and an Abholbestätigung is proof of formal service, so both must be granted to a
// sender by name: the built-in policy (no [sending] policy_file) grants every mapped sender only
// Persönlich, Versand- and Eingangsbestätigung.
//
// The file ([sending] policy_file), one rule per line, '#' comments, first matching rule wins:
//   allow sender=<address|@domain|*> [via=<cidr|user:NAME|auth>,...] [account=<De-Mail account>]
//         [options=<words>] [daily=<n>]
//   limit account=<De-Mail account> daily=<n>
// options: the option words of X-De-Mail-Options, comma separated, plus "standard" (Persönlich,
// Versand-, Eingangsbestätigung), "all" and "none"; default "standard". daily: messages a day per
// sender address under this rule (0 = no limit; default [sending] sender_daily_limit).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "demail/connector/message/demail_headers.h"

namespace demail::gateway {

struct SendingRule {
    std::string sender;                  // "a@b", "@b" or "*", lower case
    std::vector<std::string> via;        // CIDRs, "user:NAME", "auth"; empty: any allowed way in
    std::string account;                 // empty: whichever account the sender is mapped to
    connector::ShippingOptions options;  // the options this rule grants
    std::optional<std::uint64_t> daily;  // per sender address; unset: the [sending] default
    int line = 0;                        // 0: the built-in rule
    std::string describe() const;        // "policy line 3" or "the built-in policy"
};

struct AccountLimit {
    std::string account;
    std::uint64_t daily = 0;
};

struct SendingPolicy {
    std::vector<SendingRule> rules;
    std::vector<AccountLimit> accountLimits;
    std::string source;  // the file, or empty for the built-in policy

    // Every mapped sender, from relay_networks or AUTH, with the standard options.
    static SendingPolicy builtIn();
    // The first rule for this sender and account, coming in from clientAddress (as authUser if
    // authenticated); nullptr if none allows it.
    const SendingRule* match(const std::string& sender, const std::string& account,
                             const std::string& clientAddress, const std::string& authUser) const;
    // The configured limit for an account, if the file names one.
    std::optional<std::uint64_t> accountLimit(const std::string& account) const;
};

// Reads a policy file; "" or one line naming the file, line and problem.
std::string loadSendingPolicy(const std::string& path, SendingPolicy& out);

// The options asked for that `granted` does not include, in words a user understands
// ("Absenderbestätigt (authoritative)").
std::vector<std::string> optionsBeyond(const connector::ShippingOptions& asked,
                                       const connector::ShippingOptions& granted);
// "personal" -> "Persönlich (personal)" and so on, for replies and docs.
std::string optionTitle(const std::string& word);

}  // namespace demail::gateway
