// The intake's sending authority: the sending policy (gateway/sending_policy.h), the daily
// limits and what the provider says of each account, applied while the SMTP client waits, so
// that a sender learns at MAIL FROM or at the end of DATA (5.7.1 with the option named), never
// from a bounce after the 250. What cannot be decided yet (the provider has not listed the
// accounts: card away at start, provider unreachable) is answered 4xx, try again later.
//
//   MAIL FROM   mapped to an account? a rule for this sender, account and way in? today's
//               limits not reached? the account bound to our card at the provider?
//   end of DATA the message's options (X-De-Mail-Options, subject tags) within the rule and
//               within the account's level and permission; the message prepared as the
//               dispatcher will prepare it (so its refusals come now); one of today's allowance
//               taken, kept only when the message is committed.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "demail/connector/message/private_id_seal.h"
#include "demail/gateway/daily_counter.h"
#include "demail/gateway/sending_policy.h"
#include "demail/gateway/services/account_directory.h"
#include "demail/smtp/policy.h"

namespace demail::gateway {

struct SendingLimits {
    std::uint64_t senderDaily = 0;   // per sender address, unless its rule says otherwise
    std::uint64_t accountDaily = 0;  // per account, unless a `limit` line says otherwise
};

// A provider limits accounts at level "normal" to 100 messages a day (TR PVD_FU §3.1.1.1).
inline constexpr std::uint64_t kNormalLevelDailyLimit = 100;

class SendingAuthority {
  public:
    SendingAuthority(SendingPolicy policy, SendingLimits limits, std::string countsDir);
    std::string open();  // today's counts; "" or the error

    void setPolicy(SendingPolicy policy, SendingLimits limits);  // SIGHUP
    void setAccounts(const AccountSnapshot& snapshot);
    // The sender sealed into the private-id ([provider] private_id_key_file): the length check
    // at DATA must see the private-id the dispatcher will send.
    void setPrivateIdSeal(std::shared_ptr<const connector::PrivateIdSeal> seal);

    smtp::Decision checkSender(const smtp::SessionInfo& session, const std::string& sender);
    // headers: the message's header section as received (CRLF, with our Received line).
    smtp::Decision checkMessage(const smtp::Envelope& envelope, std::string_view headers,
                                const std::string& queueId, DailyCounter::Ticket& ticket);
    void committed(DailyCounter::Ticket& ticket) { counter_.confirm(ticket); }
    void abandoned(DailyCounter::Ticket& ticket) { counter_.release(ticket); }

    DailyCounter& counter() { return counter_; }

  private:
    struct Standing {  // what MAIL FROM and DATA need, under mutex_
        std::shared_ptr<const SendingPolicy> policy;
        SendingLimits limits;
        std::shared_ptr<const AccountSnapshot> accounts;
    };
    Standing standing() const;
    // What MAIL FROM decides, again at the end of DATA: the account, the rule, the limits.
    struct Authorised {
        smtp::Decision decision;
        std::string account;
        const SendingRule* rule = nullptr;
        std::uint64_t senderLimit = 0, accountLimit = 0;
    };
    Authorised authorise(const Standing& s, const smtp::SessionInfo& session,
                         const std::string& sender);
    std::uint64_t accountLimit(const Standing& s, const std::string& account) const;

    mutable std::mutex mutex_;
    std::shared_ptr<const SendingPolicy> policy_;
    SendingLimits limits_;
    std::shared_ptr<const AccountSnapshot> accounts_;
    std::shared_ptr<const connector::PrivateIdSeal> seal_;
    DailyCounter counter_;
};

}  // namespace demail::gateway
