// The accounts file ([provider] accounts_file): which internal address or @domain sends as which
// De-Mail account.
#pragma once

#include <string>

#include "demail/connector/message/outbound.h"

namespace demail::gateway {

// "<internal address or @domain> <De-Mail account>" lines; empty error on success.
std::string loadAccountsFile(const std::string& path, connector::AccountMap& out);

}  // namespace demail::gateway
