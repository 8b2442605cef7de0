// Quarantine in a spool directory (one <id>.eml with the raw bytes, or <id>.txt when nothing could
// be fetched, plus <id>.reason), and a notice to the postmaster with the raw message attached as
// base64 (always deliverable, whatever it contains).
#pragma once

#include <string>

#include "demail/gateway/inbound.h"

namespace demail::gateway {

class SpoolQuarantine final : public InboundQuarantine {
  public:
    SpoolQuarantine(std::string dir, std::string postmaster, InboundDelivery& relay,
                    std::string gatewayName);
    bool park(const InboxItem& item, const std::string* raw, const std::string& reason,
              std::string& error) override;
    std::size_t size() override;
    const std::string& dir() const { return dir_; }

  private:
    std::string dir_;
    std::string postmaster_;
    InboundDelivery& relay_;
    std::string gatewayName_;
};

}  // namespace demail::gateway
