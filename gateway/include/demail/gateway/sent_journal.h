// queue id -> original envelope sender, kept after submission so that confirmations can be
// delivered to the person who sent the message. Entries older than `keep` ([queue]
// sent_retention, default 120 days) are pruned at construction and by prune().
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace demail::gateway {

class SentJournal {
  public:
    explicit SentJournal(std::string dir, std::chrono::seconds keep = std::chrono::hours(24 * 120));
    void record(const std::string& queueId, const std::string& sender);
    std::optional<std::string> senderOf(const std::string& queueId) const;
    std::size_t prune();

  private:
    std::string dir_;
    std::chrono::seconds keep_;
};

}  // namespace demail::gateway
