#include "demail/gateway/inbound.h"

#include <chrono>
#include <ctime>

#include <Poco/Logger.h>

#include <exception>

#include "demail/connector/message/inbound_prepare.h"

namespace demail::gateway {
namespace {

std::string utcNow() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string logSafe(std::string s) {  // inside a quoted log value
    for (char& c : s)
        if (c == '"')
            c = '\'';
    return s;
}

Poco::Logger& log() {
    return Poco::Logger::get("inbound");
}
}  // namespace

InboundPoller::InboundPoller(InboxSource& source, InboundRouter& router, InboundDelivery& delivery,
                             DeliveredLedger& ledger, std::string postmaster,
                             InboundQuarantine& quarantine, InboundAttempts& attempts,
                             int maxAttempts)
    : source_(source),
      router_(router),
      delivery_(delivery),
      ledger_(ledger),
      postmaster_(std::move(postmaster)),
      quarantine_(quarantine),
      attempts_(attempts),
      maxAttempts_(maxAttempts < 1 ? 1 : maxAttempts) {}

InboundCounts InboundPoller::pollOnce() {
    InboundCounts counts;
    try {
        std::string error;
        const auto items = source_.list(error);
        if (!items) {
            counts.lastError = "listing the inbox failed: " + error;
        } else {
            for (const auto& item : *items) {
                try {
                    handle(item, counts);
                } catch (const std::exception& e) {
                    // Nothing about one item may end the pass, let alone the thread (M8).
                    attempts_.end();
                    ++counts.deferred;
                    counts.lastError = "handling " + item.id + " failed: " + e.what();
                    log().error("event=inbound_error provider_id=" + item.id + " reason=\"" +
                                e.what() + "\"");
                    try {
                        failed(item, nullptr, e.what(), counts);
                    } catch (const std::exception&) {
                    }
                }
            }
        }
        counts.quarantined = quarantine_.size();
    } catch (const std::exception& e) {
        counts.lastError = std::string("inbound pass failed: ") + e.what();
        log().error("event=inbound_error reason=\"" + counts.lastError + "\"");
    }
    return counts;
}

void InboundPoller::handle(const InboxItem& item, InboundCounts& counts) {
    std::string error;
    if (unrecorded_.count(item.id)) {
        // Delivered already; only the ledger write failed (disk full). Record, then acknowledge.
        ledger_.add(item.id);  // throws again while the disk is full: stays deferred
        unrecorded_.erase(item.id);
        acknowledge(item, counts);
        return;
    }
    if (ledger_.contains(item.id)) {
        ++counts.duplicates;
        acknowledge(item, counts);
        return;
    }
    SourceFailure failure = SourceFailure::Transient;
    const auto message = source_.fetch(item, error, failure);
    if (!message) {
        if (failure == SourceFailure::HeldElsewhere) {
            // A peer gateway bound to the same account leased it first (or delivered it): it is
            // theirs. Quietly skipped; listed again only if their lease runs out unacknowledged.
            ++counts.leasedElsewhere;
            log().debug("event=inbound_leased_elsewhere provider_id=" + item.id + " reason=\"" +
                        error + "\"");
            return;
        }
        ++counts.deferred;
        counts.lastError = "fetching " + item.id + " failed: " + error;
        if (failure == SourceFailure::Permanent)
            failed(item, nullptr, "fetching failed: " + error, counts);
        return;
    }
    // The moment of retrieval: for mail that asked for an Abholbestätigung it starts legal time
    // limits (VwZG §5a), so the recipient is told it, from the archive's record when there is one.
    // The provider's signatures, on the bytes as retrieved (before any header is changed).
    SignatureVerdict verdict;
    if (signatures)
        verdict = signatures->verify(*message);
    std::string retrieval;
    if (evidence) {
        if (auto e = evidence->retrieved(item, *message, verdict.summary, retrieval); !e.empty()) {
            ++counts.deferred;
            counts.lastError = "the evidence archive cannot keep " + item.id + ": " + e;
            return;
        }
    }
    attempts_.begin(item.id);  // a crash from here on counts against this item at the next start
    InboundRoute route = router_.route(item, *message);
    if (!route.park.empty()) {
        attempts_.end();
        park(item, &*message, route.park, counts);
        return;
    }
    if (retrieval.empty())
        retrieval = utcNow();
    if (verdict.failed) {
        ++counts.signatureFailures;
        log().warning("event=signature_invalid provider_id=" + item.id +
                      " account=" + item.account + " verdict=\"" + logSafe(verdict.summary) + "\"");
    }
    // A header only the gateway sets (any copy from outside is stripped as X-Demail-Gateway-*).
    const std::string out =
        (verdict.header.empty() ? std::string()
                                : std::string(kVerifiedHeader) + ": " + verdict.header + "\r\n") +
        std::string("X-Demail-Gateway-Retrieved: ") + retrieval + "; account=" +
        (connector::isSmtpMailbox(item.account) ? item.account : std::string("invalid")) +
        (route.retrieveConfirmation
             ? "; retrieve-confirmation=yes (the sender's Abholbestaetigung dates from this)"
             : "") +
        "\r\n" + (route.message.empty() ? *message : route.message);
    if (!connector::isSafeForSmtp(out)) {  // fail closed whatever the router did
        attempts_.end();
        park(item, &*message, "not SMTP-safe after preparation", counts);
        return;
    }
    DeliveryResult r = delivery_.deliver(route, out);
    if (r.outcome == DeliveryOutcome::Permanent && route.personal) {
        // Persönlich never goes to the postmaster: held, with an alarm, for the operator.
        attempts_.end();
        park(item, &*message,
             std::string(kHeldPersonal) + ": the relay refused it for its person (" + r.detail +
                 "); held, never sent to the postmaster",
             counts);
        return;
    }
    if (r.outcome == DeliveryOutcome::Permanent && !postmaster_.empty()) {
        // The internal server will never take it for these recipients. It must not be
        // lost, and it cannot go back to the De-Mail sender: the postmaster gets it.
        log().error("event=inbound_refused provider_id=" + item.id + " kind=" + route.kind +
                    " reason=\"" + r.detail + "\" action=postmaster");
        route.recipients = {postmaster_};
        r = delivery_.deliver(route, out);
        if (r.delivered())
            ++counts.misrouted;
    }
    attempts_.end();
    if (!r.delivered()) {
        ++counts.deferred;
        counts.lastError = r.detail;
        log().warning("event=inbound_deferred provider_id=" + item.id + " reason=\"" + r.detail +
                      "\"");
        // A refusal by everyone is the item's fault: bounded. A relay that is away is not.
        if (r.outcome == DeliveryOutcome::Permanent)
            failed(item, &*message, "refused by the relay: " + r.detail, counts);
        return;  // stays unacknowledged at the provider; tried at the next poll
    }
    attempts_.clear(item.id);
    ++counts.delivered;
    log().information("event=inbound_delivered provider_id=" + item.id + " kind=" + route.kind +
                      " account=" + item.account +
                      (route.queueId.empty() ? "" : " queue_id=" + route.queueId));
    try {
        ledger_.add(item.id);
    } catch (const std::exception& e) {
        // Not acknowledged (the provider keeps it), not delivered again by this process.
        unrecorded_.insert(item.id);
        ++counts.deferred;
        counts.lastError = std::string("recording delivery failed: ") + e.what();
        log().error("event=inbound_ledger_failed provider_id=" + item.id + " reason=\"" + e.what() +
                    "\" action=retry_later");
        return;
    }
    acknowledge(item, counts);
}

bool InboundPoller::failed(const InboxItem& item, const std::string* raw, const std::string& reason,
                           InboundCounts& counts) {
    const int n = attempts_.fail(item.id);
    if (n < maxAttempts_) {
        log().warning("event=inbound_attempt_failed provider_id=" + item.id +
                      " attempts=" + std::to_string(n) + " max=" + std::to_string(maxAttempts_) +
                      " reason=\"" + reason + "\"");
        return false;
    }
    return park(item, raw, reason + " (" + std::to_string(n) + " failed attempts)", counts);
}

bool InboundPoller::park(const InboxItem& item, const std::string* raw, const std::string& reason,
                         InboundCounts& counts) {
    std::string error;
    if (!quarantine_.park(item, raw, reason, error)) {
        ++counts.deferred;
        counts.lastError = "parking " + item.id + " failed: " + error;
        log().error("event=inbound_park_failed provider_id=" + item.id + " reason=\"" + error +
                    "\"");
        return false;
    }
    ++counts.parked;
    attempts_.clear(item.id);
    log().error("event=inbound_parked provider_id=" + item.id + " account=" + item.account +
                " reason=\"" + reason + "\"");
    try {
        ledger_.add(item.id);  // offered again before the ack lands: acknowledged, not parked twice
    } catch (const std::exception&) {
    }
    acknowledge(item, counts);
    return true;
}

void InboundPoller::acknowledge(const InboxItem& item, InboundCounts& counts) {
    std::string error;
    SourceFailure failure = SourceFailure::Transient;
    if (source_.acknowledge(item, error, failure)) {
        ++counts.acknowledged;
    } else if (failure == SourceFailure::HeldElsewhere) {
        // Our lease ran out between fetch and acknowledgement and a peer gateway took the item:
        // it will deliver it as well. Nothing we can do now but say so (the residual window).
        ++counts.lostLease;
        log().warning("event=inbound_lease_lost provider_id=" + item.id + " reason=\"" + error +
                      "\" detail=\"delivered here; a peer gateway holds it now and may deliver it "
                      "again\"");
    } else {
        counts.lastError = "acknowledging " + item.id + " failed: " + error;
    }
}

}  // namespace demail::gateway
