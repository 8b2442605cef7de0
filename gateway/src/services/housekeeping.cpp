#include "demail/gateway/services/housekeeping.h"

#include <Poco/Logger.h>

#include <sys/statvfs.h>

#include <algorithm>

namespace demail::gateway {

Housekeeping::Housekeeping(SentJournal& journal, FileLedger& ledger, std::chrono::seconds every)
    : journal_(journal), ledger_(ledger), every_(every) {}

Housekeeping::~Housekeeping() {
    stop();
}

std::chrono::seconds Housekeeping::intervalFor(std::chrono::seconds a, std::chrono::seconds b) {
    return std::clamp<std::chrono::seconds>(std::min(a, b) / 10, std::chrono::seconds(1),
                                            std::chrono::seconds(3600));
}

void Housekeeping::start() {
    thread_ = std::thread([this] { run(); });
}

void Housekeeping::stop() {
    if (stopping_.exchange(true))
        return;
    if (thread_.joinable())
        thread_.join();
}

void Housekeeping::run() {
    using namespace std::chrono_literals;
    auto next = std::chrono::steady_clock::now() + every_;
    auto nextArchiveLook = std::chrono::steady_clock::now() + 10s;
    while (!stopping_) {
        std::this_thread::sleep_for(200ms);
        if (std::chrono::steady_clock::now() >= nextArchiveLook) {
            nextArchiveLook = std::chrono::steady_clock::now() + 10s;
            checkArchive();
        }
        if (std::chrono::steady_clock::now() < next)
            continue;
        next = std::chrono::steady_clock::now() + every_;
        const std::size_t sent = journal_.prune(), delivered = ledger_.prune();
        if (sent + delivered > 0)
            Poco::Logger::get("housekeeping")
                .information("event=state_pruned sent=" + std::to_string(sent) +
                             " inbound_delivered=" + std::to_string(delivered));
    }
}

void Housekeeping::checkArchive() {
    if (!watch_.archive)
        return;
    const bool synced = archive::clockSynchronized();
    if (watch_.clockSynchronized)
        watch_.clockSynchronized->set(synced ? 1 : 0);
    // Reported, never a reason to stop mail: the archive marks each record with it.
    if (watch_.health)
        watch_.health->set("clock", true,
                           synced ? "synchronised (NTP)"
                                  : "NOT synchronised: archive records and retrieval times are "
                                    "marked unsynchronised; run systemd-timesyncd or chrony");
    struct statvfs fs {};
    if (const auto failure = watch_.archive->failure(); !failure.empty()) {
        // A failed fsync: the archive refuses every record (submissions stay queued).
        if (watch_.health)
            watch_.health->set("archive", false,
                               "records cannot be kept: " + failure + "; restart the service",
                               "failed");
    } else if (::statvfs(watch_.archive->dir().c_str(), &fs) == 0) {
        const auto free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
        if (watch_.freeBytes)
            watch_.freeBytes->set(static_cast<double>(free));
        if (watch_.health)
            watch_.health->set("archive", free >= watch_.minFree,
                               free >= watch_.minFree
                                   ? "records kept; " + std::to_string(free >> 20) + " MiB free"
                                   : "only " + std::to_string(free >> 20) +
                                         " MiB free on the archive's file system ([archive] "
                                         "min_free): add space before submissions stop",
                               free >= watch_.minFree ? "" : "disk_low");
    }
    if (std::chrono::steady_clock::now() >= nextPrune_) {
        nextPrune_ = std::chrono::steady_clock::now() + std::chrono::hours(1);
        if (auto e = watch_.archive->prune(watch_.retention); !e.empty())
            Poco::Logger::get("archive").error("event=archive_prune_failed reason=\"" + e + "\"");
        Poco::Logger::get("archive").information(
            "event=archive_head seq=" + std::to_string(watch_.archive->headSeq()) + " hash=" +
            watch_.archive->headHash() + " clock_synchronized=" + (synced ? "yes" : "no"));
    }
}

}  // namespace demail::gateway
