// What the gateway keeps as evidence, seen from the dispatcher and the poller (the seam; the
// archive module stores it: gateway/archive_evidence.h). A message is archived before it is
// submitted (no submission without its evidence: a failure defers the message), the provider's
// answer after it; an inbound item is archived as retrieved, before anything in it is changed,
// and before it is delivered (a failure leaves it at the provider for the next poll).
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "demail/gateway/envelope.h"

namespace demail::gateway {

struct InboxItem;

class Evidence {
  public:
    virtual ~Evidence() = default;
    // The bytes as submitted: the prepared header section (and any start of the body), then
    // bodyLength bytes of body. "" or why it could not be kept.
    virtual std::string submitting(const Envelope& envelope, const std::string& account,
                                   std::string_view head, std::istream* body,
                                   std::uint64_t bodyLength) = 0;
    // The provider's answer: accepted (its message ids) or refused (its reason).
    virtual void answered(const Envelope& envelope, const std::string& account, bool accepted,
                          const std::vector<std::string>& providerIds,
                          const std::string& detail) = 0;
    // An inbound item as the provider handed it over, with the check of its provider
    // signatures (provider_signatures.h; "" when none was made). "" or why it could not be kept;
    // `record` names the record ("2026-11-29T21:10:00.123Z; archive=47").
    virtual std::string retrieved(const InboxItem& item, const std::string& bytes,
                                  const std::string& verification, std::string& record) = 0;
};

}  // namespace demail::gateway
