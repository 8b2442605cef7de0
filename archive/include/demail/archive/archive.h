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
// A record's bytes are written and fsynced before its line; the line is fdatasynced before
// append() returns. A line torn by a crash (no newline) is cut at the next open, so a record
// exists whole or not at all. Retention removes whole months and records what it removed (a
// "pruned" record holding the removed month's last hash), so the chain stays verifiable.
#pragma once

#include <chrono>
#include <cstdint>
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
    std::string open();
    // One record; "" or the error (nothing half-written stays visible).
    std::string append(const std::string& kind, const Fields& fields, const Bytes& bytes,
                       Record* written = nullptr);
    // Removes the months that ended more than `retention` ago; records each removal.
    std::string prune(std::chrono::seconds retention);

    std::uint64_t headSeq() const;
    std::string headHash() const;
    const std::string& dir() const { return dir_; }

  private:
    std::string appendLocked(const std::string& kind, const Fields& fields, const Bytes& bytes,
                             Record* written);
    const std::string dir_;
    mutable std::mutex mutex_;
    std::uint64_t seq_ = 0;
    std::string head_;  // hash of the last record; 64 zeros before the first
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
