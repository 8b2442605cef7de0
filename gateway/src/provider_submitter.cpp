#include "demail/gateway/provider_submitter.h"

#include <string_view>

#include "demail/connector/message/header_block.h"
#include "demail/gateway/dsn_status.h"

namespace demail::gateway {

ProviderSubmitter::ProviderSubmitter(connector::ProviderTransport& transport, SentJournal& journal,
                                     std::string providerHost)
    : transport_(transport), journal_(journal), host_(std::move(providerHost)) {}

void ProviderSubmitter::update(SubmitterSettings s) {
    std::lock_guard lock(mutex_);
    settings_ = std::move(s);
}

SubmitterSettings ProviderSubmitter::settings() const {
    std::lock_guard lock(mutex_);
    return settings_;
}

namespace {

// The header section with its blank line (all of a message without body), or nullopt when it is
// longer than `limit`: such a message is refused, never cut (the cut-off rest would reach the
// provider unchecked).
std::optional<std::string> readHeaderSection(std::istream& in, std::size_t limit) {
    std::string head;
    std::streambuf* sb = in.rdbuf();
    std::size_t lineStart = 0;
    for (int c; (c = sb->sbumpc()) != std::char_traits<char>::eof();) {
        head.push_back(static_cast<char>(c));
        if (c == '\n') {
            const std::string_view line(head.data() + lineStart, head.size() - lineStart);
            if (line == "\n" || line == "\r\n")
                return head;
            lineStart = head.size();
        }
        if (head.size() > limit)
            return std::nullopt;
    }
    return head;
}

}  // namespace

// Only the header section is held in memory: the body goes from the spool file to the provider
// in 64 KiB pieces, so a lane needs the same memory for 1 KB and for 20 MB.
SubmitOutcome ProviderSubmitter::submit(const Envelope& env, std::istream& body) {
    const std::size_t limit = connector::HeaderLimits{}.maxSectionBytes;
    const auto head = readHeaderSection(body, limit);
    if (!head || head->size() > env.size)
        return {SubmitOutcome::Kind::Permanent,
                head ? "the queued message is shorter than its header section"
                     : "header section larger than " + std::to_string(limit) + " bytes",
                dsn_status::kNotDeMail.code,
                "",
                {}};
    const std::string& message = *head;
    connector::OutboundContext ctx;
    ctx.queueId = env.queueId;
    ctx.envelopeSender = env.sender;
    for (const auto& r : env.recipients)
        ctx.envelopeRecipients.push_back(r.address);
    {
        std::lock_guard lock(mutex_);
        ctx.deMailDomains = settings_.deMailDomains;
        ctx.accounts = settings_.accounts;
    }
    ctx.privateIdSeal = privateIdSeal.get();
    const auto prep = connector::prepareOutbound(message, ctx);
    if (!prep.ok()) {
        const char* status = prep.refusal == connector::RefusalKind::RecipientNotDeMail ||
                                     prep.refusal == connector::RefusalKind::SenderNotMapped
                                 ? dsn_status::kNotAllowed.code
                                 : dsn_status::kNotDeMail.code;
        return {SubmitOutcome::Kind::Permanent, prep.reason, status, "", {}};
    }
    // A paused account costs the provider nothing but its one probe per interval.
    if (accountPauses && !accountPauses->mayTry(prep.account, std::chrono::system_clock::now()))
        return {SubmitOutcome::Kind::AccountPaused,
                accountPauses->reason(prep.account).value_or("account paused"),
                dsn_status::kOperatorAction.code,
                host_,
                {},
                prep.account};
    // The gateway's own record (sent_journal.h): who sent it and what their application knows it
    // by, so that confirmations and Meldungen go back to them with their own private-id.
    SentRecord record;
    record.sender = env.sender;
    record.account = prep.account;
    record.privateId = prep.senderPrivateId;
    record.messageId = prep.messageId;
    record.recipients = ctx.envelopeRecipients;
    connector::Submission sub;
    sub.idempotencyKey = env.queueId;
    sub.account = prep.account;
    sub.rfc5322 = prep.headers + message.substr(prep.bodyOffset);
    sub.bodyStream = &body;
    sub.bodyLength = env.size - head->size();
    sub.options = {prep.options.personal, prep.options.authoritative,
                   prep.options.dispatchConfirmation, prep.options.receiptConfirmation,
                   prep.options.retrieveConfirmation};
    // "Never sent twice" with a provider that keeps no idempotency key: an earlier attempt whose
    // reply was lost (or that the daemon did not live to record) is found among the account's
    // sent items by its private-id, which begins with our queue id. Asked before every attempt, not
    // only after a known failure: an attempt cut short by a crash leaves no trace on our side.
    if (transport_.outcomeResolution() == connector::OutcomeResolution::LookupByPrivateId) {
        const auto found = transport_.findSubmission(prep.account, prep.privateId);
        if (!found) {
            connector::TransportError e = found.error();
            // Without an answer the message is never sent; a look-up the provider does not offer
            // (404, any refusal) is the configuration's fault, not the message's: no bounce.
            if (e.kind == connector::ErrorKind::Permanent)
                e.kind = connector::ErrorKind::OperatorAction;
            e.reason = "sent-items look-up failed, not sent: " + e.reason;
            return failure(e, prep.account);
        }
        if (found.value()) {
            resumed(prep.account);
            journal_.record(env.queueId, record);
            if (evidence)
                evidence->answered(env, prep.account, true, {},
                                   "found among the account's sent items by private-id");
            return {SubmitOutcome::Kind::Accepted,
                    "already at the provider (found among the account's sent items by "
                    "private-id): not sent again",
                    "",
                    host_,
                    {}};
        }
    }
    // Who sent it is recorded before the provider hears of it: a confirmation can be fetched
    // before the submission's own reply arrives (the inbox is polled on its own thread), and it
    // must find its sender. A record for a submission that then fails costs one small file
    // until sent_retention.
    journal_.record(env.queueId, record);
    if (evidence) {
        if (auto e = evidence->submitting(env, prep.account, sub.rfc5322, &body, sub.bodyLength);
            !e.empty())
            return {SubmitOutcome::Kind::Retryable,
                    "not submitted: the evidence archive cannot keep it: " + e,
                    dsn_status::kLocalError.code,
                    "",
                    {}};
    }
    const auto r = transport_.submit(sub);
    if (evidence && r.ok())
        evidence->answered(env, prep.account, true, r.value().messageIds,
                           r.value().duplicate ? "already at the provider" : "accepted");
    else if (evidence && r.error().kind == connector::ErrorKind::Permanent &&
             r.error().code != "idempotency_conflict")
        evidence->answered(env, prep.account, false, {}, r.error().reason);
    if (r.ok()) {
        resumed(prep.account);
        // The provider's message ids (its receipt), for linking confirmations to the original.
        journal_.addProviderIds(env.queueId, r.value().messageIds);
        std::string ids;
        for (const auto& id : r.value().messageIds)
            ids += (ids.empty() ? "" : ",") + id;
        for (char& ch : ids)  // provider text in a log line: no space, quote or control byte
            if (static_cast<unsigned char>(ch) <= 0x20 || ch == '"' || ch == 0x7f)
                ch = '?';
        return {SubmitOutcome::Kind::Accepted,
                r.value().duplicate ? "already at the provider" : "accepted by the provider", "",
                host_, ids};
    }
    const auto& e = r.error();
    if (e.code == "idempotency_conflict") {
        // The provider holds a submission under this queue id, which no other message uses: it
        // can only be an earlier attempt of this one, accepted in another form (the account map
        // or the De-Mail domains changed by a reload in between, or a provider that kept a body
        // cut short by our crash). That message went out; bouncing it would make the sender send
        // it again. Recorded as sent, and said loudly (docs/provider-api.md, "the same
        // submission").
        journal_.record(env.queueId, record);
        return {SubmitOutcome::Kind::Accepted,
                "already at the provider as an earlier attempt in another form (409 "
                "idempotency_conflict): not sent again",
                "",
                host_,
                {}};
    }
    return failure(e, prep.account);
}

void ProviderSubmitter::resumed(const std::string& account) {
    if (accountPauses)
        accountPauses->resume(account, "a submission was accepted");
}

SubmitOutcome ProviderSubmitter::failure(const connector::TransportError& e,
                                         const std::string& account) {
    const std::string detail = "provider: " + e.reason;
    if (e.kind == connector::ErrorKind::OperatorAction && e.accountLevel && accountPauses) {
        accountPauses->pause(account, detail, std::chrono::system_clock::now());
        return {SubmitOutcome::Kind::AccountPaused,
                detail,
                dsn_status::kOperatorAction.code,
                host_,
                {},
                account};
    }
    switch (e.kind) {
        case connector::ErrorKind::Permanent:
            return {SubmitOutcome::Kind::Permanent,
                    detail,
                    e.code == "recipient_not_demail" ? dsn_status::kRecipientUnknown.code
                                                     : dsn_status::kProviderRefused.code,
                    host_,
                    {}};
        case connector::ErrorKind::OperatorAction: {
            SubmitOutcome out{SubmitOutcome::Kind::OperatorAction,
                              detail,
                              dsn_status::kOperatorAction.code,
                              host_,
                              {}};
            // An HTTP answer: the provider read our request and refused our credentials (or the
            // configuration); the card works. A TLS-level refusal may be a stale key: a login
            // may help there.
            out.providerRefused = e.httpStatus != 0;
            return out;
        }
        case connector::ErrorKind::Retryable:
            if (cardProblem) {
                if (auto why = cardProblem())
                    return {SubmitOutcome::Kind::OperatorAction,
                            *why,
                            dsn_status::kOperatorAction.code,
                            host_,
                            {}};
            }
            return {SubmitOutcome::Kind::Retryable,
                    detail,
                    dsn_status::kProviderUnreachable.code,
                    host_,
                    {}};
    }
    return {
        SubmitOutcome::Kind::Retryable, detail, dsn_status::kProviderUnreachable.code, host_, {}};
}

}  // namespace demail::gateway
