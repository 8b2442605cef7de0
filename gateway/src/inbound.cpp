#include "demail/gateway/inbound.h"

#include <Poco/Logger.h>

namespace demail::gateway {
namespace {
Poco::Logger& log() {
    return Poco::Logger::get("inbound");
}
}  // namespace

InboundPoller::InboundPoller(InboxSource& source, InboundRouter& router, InboundDelivery& delivery,
                             DeliveredLedger& ledger, std::string postmaster)
    : source_(source),
      router_(router),
      delivery_(delivery),
      ledger_(ledger),
      postmaster_(std::move(postmaster)) {}

InboundCounts InboundPoller::pollOnce() {
    InboundCounts counts;
    std::string error;
    const auto items = source_.list(error);
    if (!items) {
        counts.lastError = "listing the inbox failed: " + error;
        return counts;
    }
    for (const auto& item : *items) {
        if (!ledger_.contains(item.id)) {
            const auto message = source_.fetch(item, error);
            if (!message) {
                ++counts.deferred;
                counts.lastError = "fetching " + item.id + " failed: " + error;
                continue;
            }
            InboundRoute route = router_.route(item, *message);
            DeliveryResult r = delivery_.deliver(route, *message);
            if (r.outcome == DeliveryOutcome::Permanent && !postmaster_.empty()) {
                // The internal server will never take it for these recipients. It must not be
                // lost, and it cannot go back to the De-Mail sender: the postmaster gets it.
                log().error("event=inbound_refused provider_id=" + item.id + " kind=" + route.kind +
                            " reason=\"" + r.detail + "\" action=postmaster");
                route.recipients = {postmaster_};
                r = delivery_.deliver(route, *message);
                if (r.delivered())
                    ++counts.misrouted;
            }
            if (!r.delivered()) {
                ++counts.deferred;
                counts.lastError = r.detail;
                log().warning("event=inbound_deferred provider_id=" + item.id + " reason=\"" +
                              r.detail + "\"");
                continue;  // stays unacknowledged at the provider; tried at the next poll
            }
            ledger_.add(item.id);
            ++counts.delivered;
            log().information("event=inbound_delivered provider_id=" + item.id +
                              " kind=" + route.kind + " account=" + item.account);
        } else {
            ++counts.duplicates;
        }
        if (source_.acknowledge(item, error)) {
            ++counts.acknowledged;
        } else {
            counts.lastError = "acknowledging " + item.id + " failed: " + error;
        }
    }
    return counts;
}

}  // namespace demail::gateway
