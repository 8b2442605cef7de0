// The internal relay as the dispatcher's notifier (DSNs) and the poller's delivery (inbound
// De-Mail): SMTP through libcurl (smtp_delivery.h).
#pragma once

#include "demail/gateway/inbound.h"
#include "demail/gateway/outbound.h"
#include "demail/gateway/smtp_delivery.h"

namespace demail::gateway {

class RelayNotifier final : public Notifier {
  public:
    explicit RelayNotifier(SmtpRelayTarget target) : target_(std::move(target)) {}
    DeliveryResult send(const DsnMessage& dsn) override;

  private:
    SmtpRelayTarget target_;
};

class RelayInboundDelivery final : public InboundDelivery {
  public:
    explicit RelayInboundDelivery(SmtpRelayTarget target) : target_(std::move(target)) {}
    DeliveryResult deliver(const InboundRoute& route, const std::string& message) override;

  private:
    SmtpRelayTarget target_;
};

}  // namespace demail::gateway
