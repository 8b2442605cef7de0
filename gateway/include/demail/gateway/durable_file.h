// Small durable writes for the gateway's state files: write a temporary file, fsync it, rename it
// over the target, fsync the directory. After it returns the content survives a crash or power
// loss; a crash before leaves the old content (or none), never a torn file.
#pragma once

#include <string>
#include <string_view>

namespace demail::gateway {

// Returns an empty string on success, else one line saying what failed (with errno text).
std::string writeFileDurably(const std::string& path, std::string_view content);
// Removes the file and fsyncs the directory; a missing file is not an error.
std::string removeFileDurably(const std::string& path);
// fsync of a directory, so that a rename or unlink in it survives a crash; "" or the error.
std::string syncDirectory(const std::string& dir);

}  // namespace demail::gateway
