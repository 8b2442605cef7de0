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
