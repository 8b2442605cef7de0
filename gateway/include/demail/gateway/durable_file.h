// Small durable writes for the gateway's state files: write a temporary file, fsync it, rename it
// over the target, fsync the directory. After it returns the content survives a crash or power
// loss; a crash before leaves the old content (or none), never a torn file.
//
// Safe for a root caller in a directory the service user owns (demailctl): no symlink is followed,
// neither in place of the directory nor of the file, and the temporary name is unpredictable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace demail::gateway {

// Returns an empty string on success, else one line saying what failed (with errno text). The
// temporary file is ".<name>.<random>.tmp" in the same directory (isTemporaryName).
std::string writeFileDurably(const std::string& path, std::string_view content);
// Removes the file and fsyncs the directory; a missing file or directory is not an error.
std::string removeFileDurably(const std::string& path);
// Whether a directory entry is a temporary file of writeFileDurably (left behind by a crash).
bool isTemporaryName(std::string_view name);
// The content of a regular file of at most maxSize bytes, opened without following a symlink;
// nullopt if it is missing, a symlink, not a regular file, too large or unreadable.
std::optional<std::string> readSmallFile(const std::string& path, std::size_t maxSize);
// fsync of a directory, so that a rename or unlink in it survives a crash; "" or the error.
std::string syncDirectory(const std::string& dir);

// Group commit of one directory's fsync across threads. A caller whose rename or unlink in the
// directory has completed calls sync(): it joins the next batch, and one fsync(2) that starts
// after every member joined covers the whole batch. While a sync runs, new callers gather in the
// following batch. With many sessions committing at once this replaces N directory fsyncs by a
// few, and each of them writes the directory's blocks (which the next create or rename in it
// must wait for) once instead of N times. Returns "" or the error of the fsync that covered it.
class DirectorySyncer {
  public:
    explicit DirectorySyncer(std::string dir);
    std::string sync();
    // How many fsync(2) calls were made, for tests and benchmarks.
    std::uint64_t syncsDone() const;

  private:
    struct Batch {
        bool done = false;
        std::string error;
    };
    const std::string dir_;
    mutable std::mutex mutex_;
    std::condition_variable finished_;
    std::shared_ptr<Batch> next_;  // the batch new callers join; taken by the caller that syncs
    bool running_ = false;
    std::uint64_t syncs_ = 0;
};

}  // namespace demail::gateway
