// The intake service: the SMTP listeners (the relay port for internal servers and the optional
// AUTH submission port), their policies (with [smtp] when_paused = refuse: no new mail while the
// gateway cannot send) and the users file, the sending authority (the sending
// policy and daily limits of [sending]), and the sink that puts accepted mail into the spool and
// tells the outbound service. Accounts and De-Mail domains come from the
// account directory; a reload replaces the users file, the relay networks and when_paused (a
// revoked AUTH user or a narrowed network takes effect at the next command, without a restart).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "demail/gateway/config.h"
#include "demail/gateway/intake.h"
#include "demail/gateway/services/account_directory.h"
#include "demail/gateway/services/address_book.h"
#include "demail/gateway/spool.h"
#include "demail/smtp/auth.h"
#include "demail/smtp/server.h"

namespace demail::gateway {

class IntakeService {
  public:
    IntakeService(const Config& config, Spool& spool, AccountDirectory& accounts,
                  std::string hostname, std::function<void(const std::string&)> committed);
    // Reads the users file and starts listening; an error line names the key.
    std::string start();
    void stop();
    // SIGHUP: the users file, the sending policy and the relay networks again; an error keeps
    // the old ones.
    std::string reload(const Config& fresh);

    // The recipient check at RCPT (`[provider] address_check`), for both listeners.
    void setAddressBook(std::shared_ptr<AddressBook> book);
    // Why this gateway cannot send now (empty: it can), asked at MAIL FROM on both listeners
    // while [smtp] when_paused = refuse.
    void setCannotSend(std::function<std::string()> cannotSend);
    void setPrivateIdSeal(std::shared_ptr<const connector::PrivateIdSeal> seal) {
        authority_.setPrivateIdSeal(std::move(seal));
    }

    std::uint64_t accepted() const;
    int activeSessions() const;

  private:
    const Config& config_;
    const std::string hostname_;
    AccountDirectory& accounts_;
    smtp::UsersFile users_;
    SendingAuthority authority_;
    IntakePolicy policy_;
    IntakePolicy submissionPolicy_;  // AUTH required: no relay networks, TLS first
    SpoolSink sink_;
    std::unique_ptr<smtp::Server> relay_, submission_;
};

}  // namespace demail::gateway
