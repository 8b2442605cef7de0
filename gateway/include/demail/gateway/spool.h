// The durable queue between the SMTP intake and the dispatcher. A message is answered 250 only
// after commit() returned, and commit() returns only after the message and its envelope are on
// disk for good: one file per message, written to tmp/, fsync'ed, renamed into queue/, and the
// directory fsync'ed (DESIGN.md "Spool"; the same order Postfix uses, reference/smtp 1.4).
// A removed message's file is kept, emptied, in free/ and written again by a later message
// (spool_free_pool.h says why).
//
// File format, version 1 (queue/<id>):
//   DEMAIL-SPOOL 1\n  key=value lines of the envelope\n  body-offset line\n  end-envelope\n
//   <the message bytes as received, CRLF, dot-unstuffed>
//   DEMAIL-END <body size, 20 digits>\n      (the end marker: a file without it is torn)
#pragma once

#include "demail/gateway/durable_file.h"
#include "demail/gateway/envelope.h"
#include "demail/gateway/spool_free_pool.h"

#include <chrono>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace demail::gateway {

enum class SpoolError {
    None,
    NoSpace,   // ENOSPC / EDQUOT: 452 4.3.1, nothing lost
    TooLarge,  // over the size limit: 552 5.3.4
    Io,        // any other write or fsync failure: 451 4.3.0
};

class SpoolWriter {
  public:
    virtual ~SpoolWriter() = default;  // without commit(): the temporary file is removed
    virtual const std::string& queueId() const = 0;  // known from the start (Received header)
    virtual bool write(const char* data, std::size_t n) = 0;  // false: see error()
    // Durable when it returns the queue id.
    virtual std::optional<std::string> commit() = 0;
    virtual SpoolError error() const = 0;
    virtual std::string errorText() const = 0;
};

struct SpoolRecovery {
    int kept = 0;            // complete messages found in queue/
    int tempRemoved = 0;     // leftovers of unfinished writes (never acknowledged)
    int movedToCorrupt = 0;  // unreadable or torn files, kept in corrupt/ for a person
};

class Spool {
  public:
    explicit Spool(std::string dir, std::uint64_t maxMessageSize = 20971520);
    // Creates the directories; empty string on success, else the error.
    std::string open();
    SpoolRecovery recover();

    std::unique_ptr<SpoolWriter> begin(const Envelope& envelope);

    std::vector<std::string> list() const;  // queue ids, oldest first
    std::optional<Envelope> envelope(const std::string& id) const;
    std::unique_ptr<std::istream> body(const std::string& id) const;  // the message bytes only
    // Durable when it returns true. The file is recycled (free/) and emptied at once: a reader
    // that still has it open sees it end, so callers remove a message only after its last read.
    bool remove(const std::string& id);
    bool moveToCorrupt(const std::string& id);
    const std::string& dir() const { return dir_; }

    static std::string newQueueId();
    static bool validId(const std::string& id);

  private:
    std::string dir_;
    std::uint64_t maxSize_;
    // Commits and removals in queue/ share their directory fsyncs (group commit).
    std::shared_ptr<DirectorySyncer> queueSync_;
    std::shared_ptr<SpoolFreePool> freePool_;
};

}  // namespace demail::gateway
