// Spent queue files kept for the next message (spool free/), so that the intake does not allocate
// a new inode per message.
//
// Why: on ext4 without a journal the allocator skips every inode freed in the last 60 s (360 s
// while its inode table block is still dirty) and checks each one in the buffer cache
// (fs/ext4/ialloc.c, recently_deleted()). A spool that creates a file per message and unlinks it
// after sending pays a scan over all recent deletions on every create: measured here 120-215 µs
// per create after 5000 deletions against 29 µs for rename, truncate and write, and 19 % of the
// daemon's CPU with one message per TLS connection (docs/performance.md). A removed queue file is
// therefore renamed to free/ and emptied, and the next message claims it by renaming it to tmp/.
// On a journaled file system this still saves an inode allocation and release per message.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace demail::gateway {

class SpoolFreePool {
  public:
    // Empty inodes are cheap (no data blocks; about 256 bytes of inode table and a directory
    // entry each): 10,000 hold about five seconds of the intake at its measured peak and a queue
    // of that size emptied with `demailctl queue delete`. Beyond it files are unlinked as before.
    static constexpr std::size_t kMaxFiles = 10000;

    explicit SpoolFreePool(std::string freeDir);

    // At start, before any writer: takes stock of free/, empties files that still hold bytes (a
    // crash between a removal's rename and its truncate), removes entries over the limit and
    // names that are not queue ids.
    void load();
    // A name in free/ to claim (the caller renames it away; a failed rename means another
    // process took it), or "" when there is none. Looks at the directory again when empty, at
    // most once a second (demailctl's removals arrive there from another process).
    std::string take();
    // Whether a removed queue file should come here rather than be unlinked.
    bool wantsMore() const;
    // Moves the file at `path` (a removed queue file, or a message not taken) to free/<name> and
    // empties it; false if it could not be moved (the caller unlinks it). A file that cannot be
    // emptied as ours is unlinked from free/ here.
    bool adopt(const std::string& path, const std::string& name);
    // A file opened for writing and emptied, or -1 (then it is not to be used): a regular file we
    // may write with no other link (emptying a file with a second name would empty that name
    // too), opened without following a symlink.
    static int openEmptied(const std::string& path);

  private:
    void scanLocked();
    const std::string dir_;
    mutable std::mutex mutex_;
    std::vector<std::string> names_;
    std::chrono::steady_clock::time_point lastScan_{};
};

}  // namespace demail::gateway
