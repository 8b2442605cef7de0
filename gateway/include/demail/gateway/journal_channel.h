// Log lines to the systemd journal with fields an operator can select by: every line that names
// a queue id (queue_id=...) or a provider id (provider_id=...) carries it as QUEUE_ID= or
// PROVIDER_ID=, so `journalctl QUEUE_ID=<id>` (or `demailctl trace <id>`) shows one message's
// way from the SMTP client through submission to its confirmations, as Postfix users follow a
// queue id with grep. Used when the daemon runs under systemd (JOURNAL_STREAM is set); otherwise
// the lines go to stderr as they are.
#pragma once

#include <Poco/Channel.h>

#include <string>

namespace demail::gateway {

class JournalChannel final : public Poco::Channel {
  public:
    explicit JournalChannel(std::string identifier);
    void log(const Poco::Message& message) override;

    // The value of `key=` in a key=value line (up to the next space); empty if absent.
    static std::string field(const std::string& text, const std::string& key);

  private:
    std::string identifier_;
};

}  // namespace demail::gateway
