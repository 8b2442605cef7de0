#include "demail/gateway/spool_free_pool.h"

#include "demail/gateway/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace demail::gateway {
namespace fs = std::filesystem;

SpoolFreePool::SpoolFreePool(std::string freeDir) : dir_(std::move(freeDir)) {}

void SpoolFreePool::load() {
    std::lock_guard<std::mutex> lock(mutex_);
    names_.clear();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
        const std::string name = e.path().filename().string();
        const int fd =
            Spool::validId(name) && names_.size() < kMaxFiles ? openEmptied(e.path().string()) : -1;
        if (fd < 0) {
            fs::remove(e.path(), ec);
            continue;
        }
        ::close(fd);
        names_.push_back(name);
    }
    lastScan_ = std::chrono::steady_clock::now();
}

void SpoolFreePool::scanLocked() {
    // Runs only when names_ is empty. A name listed here that a writer is claiming at this moment
    // fails its second claim's rename (ENOENT) and is skipped: the rename is the claim.
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
        if (names_.size() >= kMaxFiles)
            break;
        const std::string name = e.path().filename().string();
        if (Spool::validId(name))
            names_.push_back(name);
    }
    lastScan_ = std::chrono::steady_clock::now();
}

std::string SpoolFreePool::take() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (names_.empty() && std::chrono::steady_clock::now() - lastScan_ >= std::chrono::seconds(1))
        scanLocked();
    if (names_.empty())
        return {};
    std::string name = std::move(names_.back());
    names_.pop_back();
    return name;
}

bool SpoolFreePool::wantsMore() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return names_.size() < kMaxFiles;
}

bool SpoolFreePool::adopt(const std::string& path, const std::string& name) {
    if (!wantsMore())
        return false;
    const std::string to = dir_ + "/" + name;
    if (::rename(path.c_str(), to.c_str()) != 0)
        return false;
    // The bytes go now, not when the file is reused (a crash before this: load() at start).
    const int fd = openEmptied(to);
    if (fd < 0) {
        ::unlink(to.c_str());
        return true;
    }
    ::close(fd);
    std::lock_guard<std::mutex> lock(mutex_);
    names_.push_back(name);
    return true;
}

int SpoolFreePool::openEmptied(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 && ::ftruncate(fd, 0) == 0)
        return fd;
    ::close(fd);
    return -1;
}

}  // namespace demail::gateway
