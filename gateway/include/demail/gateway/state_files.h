// The gateway's small durable state next to the spool:
//  - DispatchStateFiles: each queued message's progress (attempts, next try, phase), one file per
//    queue id, versioned with an end marker like the spool's records;
//  - FileLedger: the provider ids of inbound items already delivered internally (inbound.h);
//  - FileAttempts: failed attempts per inbound item, and the item being handled right now, so
//    that an item that crashes the daemon is recognised at the next start (inbound.h).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "demail/gateway/inbound.h"
#include "demail/gateway/outbound.h"

namespace demail::gateway {

std::string encodeDispatchState(const DispatchState& state);
// Nothing for a torn, foreign or future-version record.
std::optional<DispatchState> decodeDispatchState(std::string_view text);

class DispatchStateFiles {
  public:
    explicit DispatchStateFiles(std::string dir);  // creates dir
    // A missing file is a fresh message; an unreadable one counts as fresh as well (logged):
    // that can at worst cost an early retry, never the message.
    DispatchState load(const std::string& queueId) const;
    std::string save(const std::string& queueId, const DispatchState& state);  // "" or error
    std::string remove(const std::string& queueId);
    std::string path(const std::string& queueId) const;

  private:
    std::string dir_;
};

// Removes the regular files in `dir` last written more than `keep` ago (links and directories
// are left alone) and returns how many. Crash-safe by construction: each entry is one file and
// one unlink; a crash in between leaves entries that the next pass removes.
std::size_t pruneOlderThan(const std::string& dir, std::chrono::seconds keep);

class FileLedger : public DeliveredLedger {
  public:
    // Entries older than `keep` are pruned at construction and by prune() ([queue]
    // inbound_retention): the provider stops offering an acknowledged item long before.
    FileLedger(std::string dir, std::chrono::seconds keep = std::chrono::hours(24 * 30));
    bool contains(const std::string& id) override;
    void add(const std::string& id) override;  // throws std::runtime_error if it cannot persist
    std::size_t prune() { return pruneOlderThan(dir_, keep_); }

  private:
    std::string path(const std::string& id) const;
    std::string dir_;
    std::chrono::seconds keep_;
};

class FileAttempts : public InboundAttempts {
  public:
    // Creates dir. An "inflight" file left by a crash counts as a failure of the item it names.
    explicit FileAttempts(std::string dir);
    void begin(const std::string& id) override;
    void end() override;
    int fail(const std::string& id) override;
    void clear(const std::string& id) override;
    // The provider id found in "inflight" at construction (a crash), empty if none.
    const std::string& crashedItem() const { return crashed_; }

  private:
    std::string path(const std::string& id) const;
    std::string dir_;
    std::string crashed_;
    std::map<std::string, int> counts_;  // also in memory: a full disk must not reset them
};

}  // namespace demail::gateway
