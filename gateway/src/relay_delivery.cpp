#include "demail/gateway/relay_delivery.h"

#include <sstream>

namespace demail::gateway {

DeliveryResult RelayNotifier::send(const DsnMessage& dsn) {
    std::istringstream in(dsn.data);
    return deliverBySmtp(target_, "", {dsn.envelopeTo}, in);
}

DeliveryResult RelayInboundDelivery::deliver(const InboundRoute& route,
                                             const std::string& message) {
    std::istringstream in(message);
    return deliverBySmtp(target_, route.mailFrom, route.recipients, in);
}

}  // namespace demail::gateway
