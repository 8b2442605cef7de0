#include "demail/gateway/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace demail::gateway {
namespace {

std::string failure(const std::string& what, const std::string& path) {
    return what + " " + path + ": " + std::strerror(errno);
}

std::string directoryOf(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

std::string syncDirectory(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return failure("cannot open directory", dir);
    const int rc = ::fsync(fd);
    ::close(fd);
    return rc == 0 ? std::string() : failure("cannot fsync directory", dir);
}

DirectorySyncer::DirectorySyncer(std::string dir) : dir_(std::move(dir)) {}

std::string DirectorySyncer::sync() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!next_)
        next_ = std::make_shared<Batch>();
    const std::shared_ptr<Batch> mine = next_;
    while (!mine->done) {
        if (running_) {
            finished_.wait(lock);
            continue;
        }
        // Lead the open batch (ours: a batch is only closed by the caller that syncs it). Every
        // member joined before this point, after its own change was complete.
        running_ = true;
        const std::shared_ptr<Batch> batch = std::move(next_);  // leaves next_ empty
        lock.unlock();
        std::string error = syncDirectory(dir_);
        lock.lock();
        batch->error = std::move(error);
        batch->done = true;
        running_ = false;
        ++syncs_;
        finished_.notify_all();
    }
    return mine->error;
}

std::uint64_t DirectorySyncer::syncsDone() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return syncs_;
}

std::string writeFileDurably(const std::string& path, std::string_view content) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return failure("cannot create", tmp);
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const std::string err = failure("cannot write", tmp);
            ::close(fd);
            ::unlink(tmp.c_str());
            return err;
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        const std::string err = failure("cannot fsync", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return err;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string err = failure("cannot rename onto", path);
        ::unlink(tmp.c_str());
        return err;
    }
    return syncDirectory(directoryOf(path));
}

std::string removeFileDurably(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return failure("cannot remove", path);
    return syncDirectory(directoryOf(path));
}

}  // namespace demail::gateway
