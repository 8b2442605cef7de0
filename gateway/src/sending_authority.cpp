#include "demail/gateway/sending_authority.h"

#include <algorithm>

#include "demail/connector/message/header_block.h"
#include "demail/connector/message/outbound.h"

namespace demail::gateway {
namespace {

using smtp::Decision;
using smtp::Reply;

std::string angle(const std::string& a) {
    return "<" + a + ">";
}

// "from 10.1.2.3" or "as AUTH user alice from 10.1.2.3": how the sender came in, for replies.
std::string wayIn(const smtp::SessionInfo& s) {
    return (s.authUser.empty() ? "" : "as AUTH user " + s.authUser + " ") + "from " +
           s.clientAddress;
}

const connector::Account* findListed(const AccountSnapshot& a, const std::string& account) {
    for (const auto& l : a.listed)
        if (connector::toLower(l.address) == connector::toLower(account))
            return &l;
    return nullptr;
}

Decision notBound(const std::string& account) {
    return Decision::refuse(Reply::TryLater,
                            "De-Mail account " + angle(account) +
                                " is not bound to this gateway's card at the provider; the "
                                "operator must act, try again later");
}

Decision limitRefusal(DailyCounter::Verdict v, const std::string& sender,
                      const std::string& account, std::uint64_t senderLimit,
                      std::uint64_t accountLimit) {
    // The sender's own allowance is a policy decision about this sender: said at once (5xx) so
    // that a runaway application or a person learns it now. The account's allowance is shared
    // and comes back tomorrow: the internal server keeps the mail and tries again (4xx).
    if (v == DailyCounter::Verdict::SenderFull)
        return Decision::refuse(Reply::PolicyRefused,
                                angle(sender) + " has sent the " + std::to_string(senderLimit) +
                                    " De-Mails a day the sending policy allows; ask the De-Mail "
                                    "administrator, or send again tomorrow");
    return Decision::refuse(Reply::LimitReached,
                            "De-Mail account " + angle(account) + " has reached its limit of " +
                                std::to_string(accountLimit) + " messages today; try again later");
}

}  // namespace

SendingAuthority::SendingAuthority(SendingPolicy policy, SendingLimits limits,
                                   std::string countsDir)
    : policy_(std::make_shared<const SendingPolicy>(std::move(policy))),
      limits_(limits),
      accounts_(std::make_shared<const AccountSnapshot>()),
      counter_(std::move(countsDir)) {}

std::string SendingAuthority::open() {
    return counter_.open();
}

void SendingAuthority::setPolicy(SendingPolicy policy, SendingLimits limits) {
    auto p = std::make_shared<const SendingPolicy>(std::move(policy));
    std::lock_guard lock(mutex_);
    policy_ = std::move(p);
    limits_ = limits;
}

void SendingAuthority::setAccounts(const AccountSnapshot& snapshot) {
    auto a = std::make_shared<const AccountSnapshot>(snapshot);
    std::lock_guard lock(mutex_);
    accounts_ = std::move(a);
}

SendingAuthority::Standing SendingAuthority::standing() const {
    std::lock_guard lock(mutex_);
    return {policy_, limits_, accounts_};
}

std::uint64_t SendingAuthority::accountLimit(const Standing& s, const std::string& account) const {
    std::uint64_t limit = s.policy->accountLimit(account).value_or(s.limits.accountDaily);
    const connector::Account* listed = findListed(*s.accounts, account);
    if (listed && listed->authLevel == "normal")
        limit = limit == 0 ? kNormalLevelDailyLimit : std::min(limit, kNormalLevelDailyLimit);
    return limit;
}

Decision SendingAuthority::checkSender(const smtp::SessionInfo& session,
                                       const std::string& sender) {
    return authorise(standing(), session, sender).decision;
}

SendingAuthority::Authorised SendingAuthority::authorise(const Standing& s,
                                                         const smtp::SessionInfo& session,
                                                         const std::string& sender) {
    Authorised a;
    if (sender.empty()) {
        a.decision =
            Decision::refuse(Reply::SenderRefused, "<>: a bounce cannot be sent as De-Mail");
        return a;
    }
    const auto account = s.accounts->map.accountFor(sender);
    if (!account && !s.accounts->providerListed) {
        a.decision = Decision::refuse(
            Reply::TryLater,
            angle(sender) +
                ": the gateway does not know its De-Mail accounts yet (provider not reached); "
                "try again later");
        return a;
    }
    if (!account) {
        a.decision = Decision::refuse(
            Reply::SenderRefused,
            angle(sender) + ": sender is not mapped to a De-Mail account of this gateway");
        return a;
    }
    a.account = *account;
    a.rule = s.policy->match(sender, a.account, session.clientAddress, session.authUser);
    if (!a.rule) {
        a.decision = Decision::refuse(
            Reply::SenderRefused, angle(sender) + " may not send De-Mail as " + angle(a.account) +
                                      " " + wayIn(session) +
                                      " (sending policy); ask the De-Mail administrator");
        return a;
    }
    if (s.accounts->providerListed && !findListed(*s.accounts, a.account)) {
        a.decision = notBound(a.account);
        return a;
    }
    a.senderLimit = a.rule->daily.value_or(s.limits.senderDaily);
    a.accountLimit = accountLimit(s, a.account);
    const auto v = counter_.wouldFit(sender, a.account, a.senderLimit, a.accountLimit);
    if (v != DailyCounter::Verdict::Ok)
        a.decision = limitRefusal(v, sender, a.account, a.senderLimit, a.accountLimit);
    return a;
}

void SendingAuthority::setPrivateIdSeal(std::shared_ptr<const connector::PrivateIdSeal> seal) {
    std::lock_guard lock(mutex_);
    seal_ = std::move(seal);
}

Decision SendingAuthority::checkMessage(const smtp::Envelope& envelope, std::string_view headers,
                                        const std::string& queueId, DailyCounter::Ticket& ticket) {
    // The sender was checked at MAIL FROM; the policy or the accounts may have changed since.
    const Standing s = standing();
    const Authorised a = authorise(s, envelope.session, envelope.sender);
    if (!a.decision.accepted)
        return a.decision;
    const std::string& account = a.account;

    // Prepared as the dispatcher will prepare it: what it would refuse is refused now.
    connector::OutboundContext context;
    context.queueId = queueId;
    context.envelopeSender = envelope.sender;
    for (const auto& r : envelope.recipients)
        context.envelopeRecipients.push_back(r.address);
    context.deMailDomains = s.accounts->deMailDomains;
    context.accounts = s.accounts->map;
    std::shared_ptr<const connector::PrivateIdSeal> seal;
    {
        std::lock_guard lock(mutex_);
        seal = seal_;
    }
    context.privateIdSeal = seal.get();
    const auto prepared = connector::prepareOutbound(headers, context);
    switch (prepared.refusal) {
        case connector::RefusalKind::None:
            break;
        case connector::RefusalKind::SenderNotMapped:
            return Decision::refuse(Reply::SenderRefused, prepared.reason);
        case connector::RefusalKind::RecipientNotDeMail:
            return Decision::refuse(Reply::RecipientRefused, prepared.reason);
        default:
            return Decision::refuse(Reply::MessageRefused, prepared.reason);
    }

    const auto& asked = prepared.options;
    if (const auto beyond = optionsBeyond(asked, a.rule->options); !beyond.empty()) {
        std::string names;
        for (const auto& b : beyond)
            names += (names.empty() ? "" : ", ") + b;
        return Decision::refuse(Reply::PolicyRefused,
                                "De-Mail option " + names + " not allowed for " +
                                    angle(envelope.sender) + " as " + angle(account) +
                                    " (sending policy); ask the De-Mail administrator");
    }
    // What the provider allows the account (PVD_FU steps 18-25), checked here so that a refusal
    // is an SMTP answer, not a bounce.
    if (asked.personal || asked.authoritative || asked.retrieveConfirmation) {
        if (!s.accounts->providerListed)
            return Decision::refuse(Reply::TryLater,
                                    "the options of De-Mail account " + angle(account) +
                                        " cannot be checked yet (provider not reached); try "
                                        "again later");
        const connector::Account* listed = findListed(*s.accounts, account);
        if (!listed)
            return notBound(account);
        if (listed->authLevel != "high")
            return Decision::refuse(
                Reply::PolicyRefused,
                "De-Mail account " + angle(account) + " is at level '" + listed->authLevel +
                    "' at the provider: Persönlich and Absenderbestätigt need level 'high'");
        if (asked.retrieveConfirmation && !listed->retrieveConfirmationAllowed)
            return Decision::refuse(Reply::PolicyRefused,
                                    "De-Mail account " + angle(account) +
                                        " may not ask for an Abholbestätigung (the provider "
                                        "grants it to public bodies only)");
    }

    const auto v = counter_.take(envelope.sender, account, a.senderLimit, a.accountLimit, ticket);
    if (v != DailyCounter::Verdict::Ok)
        return limitRefusal(v, envelope.sender, account, a.senderLimit, a.accountLimit);
    return Decision::accept();
}

}  // namespace demail::gateway
