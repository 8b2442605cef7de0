#include "demail/gateway/spool_free_pool.h"

#include "demail/gateway/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

namespace demail::gateway {
namespace fs = std::filesystem;

SpoolFreePool::SpoolFreePool(std::string freeDir) : dir_(std::move(freeDir)) {}

SpoolFreePool::~SpoolFreePool() {
    stopping_ = true;
    if (reserve_.joinable())
        reserve_.join();
}

void SpoolFreePool::startReserve(std::size_t target) {
    if (reserve_.joinable())
        return;
    std::size_t have = 0;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        have = names_.size();
    }
    if (have >= target)
        return;
    reserve_ = std::thread([this, want = std::min(target, kMaxFiles) - have] {
        for (std::size_t made = 0; made < want && !stopping_; ++made) {
            // Empty files, not synced: one lost in a crash costs nothing.
            const std::string name = Spool::newQueueId();
            const int fd = ::open((dir_ + "/" + name).c_str(),
                                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
            if (fd < 0) {
                if (errno == EEXIST)
                    continue;
                return;  // no space, no inodes, no permission: the intake creates its own
            }
            ::close(fd);
            put(name);
        }
    });
}

void SpoolFreePool::load() {
    std::lock_guard<std::mutex> lock(mutex_);
    names_.clear();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
        const std::string name = e.path().filename().string();
        const std::string path = e.path().string();
        struct stat st {};
        // Only regular files with no other name (emptying one would empty the other name too).
        if (!Spool::validId(name) || names_.size() >= kMaxFiles ||
            ::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
            fs::remove(e.path(), ec);
            continue;
        }
        if (st.st_size > 0 && ::truncate(path.c_str(), 0) != 0) {
            fs::remove(e.path(), ec);
            continue;
        }
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

void SpoolFreePool::put(std::string name) {
    std::lock_guard<std::mutex> lock(mutex_);
    names_.push_back(std::move(name));
}

}  // namespace demail::gateway
