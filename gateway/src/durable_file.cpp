#include "demail/gateway/durable_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
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

std::string baseOf(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// ".<name>.<16 random hex digits>.tmp": hidden, and not guessable before it exists.
std::string temporaryName(const std::string& name) {
    unsigned char rnd[8] = {};
    std::size_t got = 0;
    while (got < sizeof rnd) {
        const ssize_t n = ::getrandom(rnd + got, sizeof rnd - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            std::abort();  // the kernel's CSPRNG is not available: nothing sane to fall back to
        got += static_cast<std::size_t>(n);
    }
    static const char* hex = "0123456789abcdef";
    std::string out = "." + name + ".";
    for (unsigned char b : rnd) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out + ".tmp";
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
    // The directory may belong to the service user while the caller is root (demailctl): open it
    // without following a symlink in its place, create the temporary file inside it under an
    // unpredictable name with O_EXCL|O_NOFOLLOW (a planted "<name>.tmp" link is never followed,
    // and there is no name to plant in advance), and rename within that same directory.
    const std::string dir = directoryOf(path);
    const std::string name = baseOf(path);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return failure("cannot open directory", dir);
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 8; ++attempt) {
        tmp = temporaryName(name);
        fd = ::openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        const std::string err = failure("cannot create", dir + "/" + tmp);
        ::close(dfd);
        return err;
    }
    const std::string tmpPath = dir + "/" + tmp;
    auto abandon = [&](std::string err) {  // err is formatted by the caller while errno holds
        if (fd >= 0)
            ::close(fd);
        ::unlinkat(dfd, tmp.c_str(), 0);
        ::close(dfd);
        return err;
    };
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return abandon(failure("cannot write", tmpPath));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0)
        return abandon(failure("cannot fsync", tmpPath));
    ::close(fd);
    fd = -1;
    if (::renameat(dfd, tmp.c_str(), dfd, name.c_str()) != 0)
        return abandon(failure("cannot rename onto", path));
    const int rc = ::fsync(dfd);
    const std::string err = rc == 0 ? std::string() : failure("cannot fsync directory", dir);
    ::close(dfd);
    return err;
}

std::string removeFileDurably(const std::string& path) {
    const std::string dir = directoryOf(path);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? std::string() : failure("cannot open directory", dir);
    if (::unlinkat(dfd, baseOf(path).c_str(), 0) != 0 && errno != ENOENT) {
        const std::string err = failure("cannot remove", path);
        ::close(dfd);
        return err;
    }
    const int rc = ::fsync(dfd);
    const std::string err = rc == 0 ? std::string() : failure("cannot fsync directory", dir);
    ::close(dfd);
    return err;
}

bool isTemporaryName(std::string_view name) {
    return name.size() > 5 && name[0] == '.' && name.substr(name.size() - 4) == ".tmp";
}

std::optional<std::string> readSmallFile(const std::string& path, std::size_t maxSize) {
    // O_NONBLOCK: a FIFO in the file's place must not hang the reader; it is refused below.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return std::nullopt;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<std::uint64_t>(st.st_size) > maxSize) {
        ::close(fd);
        return std::nullopt;
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || out.size() + static_cast<std::size_t>(n) > maxSize) {
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

}  // namespace demail::gateway
