#include "demail/gateway/journal_channel.h"

#include <Poco/Message.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <vector>

namespace demail::gateway {
namespace {

int syslogPriority(Poco::Message::Priority p) {
    switch (p) {
        case Poco::Message::PRIO_FATAL:
        case Poco::Message::PRIO_CRITICAL:
            return 2;
        case Poco::Message::PRIO_ERROR:
            return 3;
        case Poco::Message::PRIO_WARNING:
            return 4;
        case Poco::Message::PRIO_NOTICE:
            return 5;
        case Poco::Message::PRIO_INFORMATION:
            return 6;
        default:
            return 7;
    }
}

}  // namespace

JournalChannel::JournalChannel(std::string identifier) : identifier_(std::move(identifier)) {}

std::string JournalChannel::field(const std::string& text, const std::string& key) {
    const std::string needle = key + "=";
    std::size_t at = 0;
    while ((at = text.find(needle, at)) != std::string::npos) {
        if (at == 0 || text[at - 1] == ' ') {
            const std::size_t start = at + needle.size();
            return text.substr(start, text.find(' ', start) - start);
        }
        at += needle.size();
    }
    return {};
}

void JournalChannel::log(const Poco::Message& message) {
    const std::string& text = message.getText();
    // Each field is one iovec, never a format string: no value can inject a field or a '%'.
    std::vector<std::string> fields = {
        "MESSAGE=" + message.getSource() + ": " + text,
        "PRIORITY=" + std::to_string(syslogPriority(message.getPriority())),
        "SYSLOG_IDENTIFIER=" + identifier_, "DEMAIL_COMPONENT=" + message.getSource()};
    if (const auto id = field(text, "queue_id"); !id.empty())
        fields.push_back("QUEUE_ID=" + id);
    if (const auto id = field(text, "provider_id"); !id.empty())
        fields.push_back("PROVIDER_ID=" + id);
    std::vector<iovec> iov;
    for (auto& f : fields)
        iov.push_back({f.data(), f.size()});
    sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

}  // namespace demail::gateway
