// The evidence archive: what was submitted, what the provider answered, and what was retrieved
// from it, each as the exact bytes with the time and the account, append-only and hash-chained so
// that a removed or altered entry is detected (`demailctl archive verify`). Knows files, hashes and
// records, nothing of mail: the gateway decides what to record.
//
// On disk (one directory, the service user's alone):
//   <dir>/<YYYY-MM>/index.jsonl   one JSON object per line, in order; each names its predecessor's
//                                 hash ("prev") and carries its own ("hash": SHA-256 of the line
//                                 without the hash member), across months
//   <dir>/<YYYY-MM>/<seq>.bin     the bytes of record <seq> (SHA-256 and size in its line), 0440
// A record's bytes are written and fsynced, renamed to their final name and the directory fsynced
// before its line is written; the line is fdatasynced before append() returns. A line torn by a
// crash (no newline) is cut at the next open, so a record exists whole or not at all. Retention
// removes whole months and records what it removed (a "pruned" record holding the removed month's
// last hash), so the chain stays verifiable.
//
// Group commit: concurrent appenders write and fsync their own bytes in parallel, then take their
// place in the chain (seq, prev, hash) under a short lock. One of them, for every record chained
// until then, fsyncs the directories the bytes were renamed into, writes the lines in order and
// fdatasyncs the index once; each appender returns when a sync that began after its record was
// chained has completed. A failed sync fails every record it covered and every later one: the
// archive refuses appends until it is opened again (the service restarts), since after a failed
// fsync the kernel may have dropped the unwritten data while reporting later syncs as clean.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace demail::archive {

using Fields = std::map<std::string, std::string>;

struct Record {
    std::uint64_t seq = 0;
    std::string time;  // UTC, RFC 3339 with milliseconds
    bool clockSynchronized = false;
    std::string kind;  // "submitted", "accepted", "retrieved", "pruned", ...
    Fields fields;     // account, queue_id, provider_id, ... (strings)
    std::string sha256;
    std::uint64_t size = 0;  // of the bytes; 0 and empty sha256: a record without bytes
    std::string prev, hash;
    std::string month;  // the segment it lives in
};

// The bytes of a record: a first part in memory, optionally followed by `restLength` bytes of a
// stream (a queued message's body, streamed without a copy in memory).
struct Bytes {
    std::string_view head;
    std::istream* rest = nullptr;
    std::uint64_t restLength = 0;
};

// Whether the kernel's clock is synchronised to a time source (adjtimex: no STA_UNSYNC), as
// timedatectl's "System clock synchronized" reports it. Legal timestamps depend on it.
bool clockSynchronized();

class Archive {
  public:
    explicit Archive(std::string dir);
    // Creates the directory (0700), cuts a torn last line, reads the chain's head. "" or error.
    // Not while appends are running.
    std::string open();
    // One record, durable when it returns ""; else the error (nothing half-written stays
    // visible). Safe from many threads at once (see "Group commit" above).
    std::string append(const std::string& kind, const Fields& fields, const Bytes& bytes,
                       Record* written = nullptr);
    // Removes the months that ended more than `retention` ago; records each removal.
    std::string prune(std::chrono::seconds retention);

    // The last durable record (what append() has returned for).
    std::uint64_t headSeq() const;
    std::string headHash() const;
    const std::string& dir() const { return dir_; }
    // Why the archive refuses appends (a commit failed), or "".
    std::string failure() const;

    // How many group commits were made (each: the directory fsyncs its records' bytes need, one
    // write and one fdatasync of the index), for tests and benchmarks.
    std::uint64_t syncsDone() const;
    // For tests: called by the appender that commits, before its syncs, with the number of
    // records the commit covers. Set before appending.
    void onCommit(std::function<void(std::size_t records)> hook) { onCommit_ = std::move(hook); }

  private:
    struct Pending {
        std::string month;
        std::string line;
        bool hasBytes = false;
    };
    std::string ensureMonth(const std::string& month);  // under mutex_
    std::string commit(std::unique_lock<std::mutex>& lock, std::uint64_t seq);
    std::string writeBatch(const std::vector<Pending>& batch);

    const std::string dir_;
    mutable std::mutex mutex_;
    std::condition_variable committed_;
    std::mutex pruneMutex_;
    std::uint64_t seq_ = 0;  // the last record chained (maybe not yet durable)
    std::string head_;       // its hash; 64 zeros before the first
    std::uint64_t durableSeq_ = 0;
    std::string durableHead_;
    std::vector<Pending> pending_;  // chained, not yet written; in seq order
    bool committing_ = false;
    std::string failed_;  // a commit failed: no more appends until open()
    std::string month_;   // the month directory known to exist (durably)
    std::uint64_t temporaries_ = 0;
    std::uint64_t commits_ = 0;
    std::function<void(std::size_t)> onCommit_;
};

// Reading, for demailctl and the auditor: every record in order (a line that cannot be parsed
// is skipped here and reported by verify()).
std::vector<Record> readAll(const std::string& dir, std::string& error);
// The path of a record's bytes.
std::string bytesPath(const std::string& dir, const Record& r);

struct Verification {
    bool ok = false;
    std::uint64_t records = 0;
    std::uint64_t firstSeq = 0, lastSeq = 0;
    std::string headHash;
    std::vector<std::string> problems;  // one line each: which record, what is wrong
};
// Recomputes every hash and the chain, and every record's bytes against its SHA-256.
Verification verify(const std::string& dir);

}  // namespace demail::archive
