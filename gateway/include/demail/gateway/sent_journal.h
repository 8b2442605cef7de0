// The gateway's own record of each message it submitted, `sent/<queue id>`, kept after
// submission so that confirmations and Meldungen can be given back to the person who sent the
// message, with what that person's application knows it by (its own private-id, its
// Message-ID). Entries older than `keep` ([queue] sent_retention, default 120 days) are pruned
// at construction and by prune().
//
// File format (docs/demail-message.md "Correlation"): the sender's address on the first line
// (what older versions wrote, and still all a record may hold), then one `key=value` line per
// field, values %-escaped (%, CR, LF and other control bytes as %XX). A last line without its
// LF is the torn end of an append (addProviderIds) and is ignored.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace demail::gateway {

struct SentRecord {
    std::string sender;                    // MAIL FROM: where confirmations go
    std::string account;                   // the De-Mail account it was sent as
    std::string privateId;                 // the sender's own X-de-mail-private-id, or empty
    std::string messageId;                 // the Message-ID as the sender wrote it, or empty
    std::vector<std::string> recipients;   // RCPT TO
    std::vector<std::string> providerIds;  // the provider's message ids (its receipt)
};

class SentJournal {
  public:
    explicit SentJournal(std::string dir, std::chrono::seconds keep = std::chrono::hours(24 * 120));
    void record(const std::string& queueId, const std::string& sender);
    void record(const std::string& queueId, const SentRecord& record);
    // Adds the provider's receipt ids to a record written before the submission: appended in one
    // write, without a flush. The evidence archive keeps the receipt durably; here it is a
    // look-up aid (References of a later confirmation, `queue import`'s proof of submission,
    // which the provider's idempotency key backs), so a crash in the next seconds may lose it
    // rather than cost every submission a second durable rewrite (two flushes and a new inode).
    void addProviderIds(const std::string& queueId, const std::vector<std::string>& ids);
    std::optional<SentRecord> lookup(const std::string& queueId) const;
    std::optional<std::string> senderOf(const std::string& queueId) const;
    std::size_t prune();

  private:
    std::string dir_;
    std::chrono::seconds keep_;
};

// The record's text and back (exposed for the tests).
std::string encodeSentRecord(const SentRecord& record);
std::optional<SentRecord> decodeSentRecord(const std::string& text);

}  // namespace demail::gateway
