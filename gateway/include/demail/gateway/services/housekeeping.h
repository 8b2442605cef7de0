// Housekeeping: the gateway's working state is pruned while the daemon runs, not only at start
// (one file per message in the sent journal and the inbound ledger would otherwise grow without
// bound in a daemon that runs for months): every tenth of the shorter retention, at most hourly,
// at least every second ([queue] sent_retention, inbound_retention).
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "demail/archive/archive.h"
#include "demail/gateway/health.h"
#include "demail/gateway/sent_journal.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {

class Housekeeping {
  public:
    Housekeeping(SentJournal& journal, FileLedger& ledger, std::chrono::seconds every);
    // The evidence archive's retention (hourly) and free space (each round; the "archive" health
    // component and demail_archive_free_bytes), and the clock (demail_clock_synchronized).
    struct ArchiveWatch {
        archive::Archive* archive = nullptr;
        std::chrono::seconds retention{0};
        std::uint64_t minFree = 0;
        HealthState* health = nullptr;
        Metrics::Gauge* freeBytes = nullptr;
        Metrics::Gauge* clockSynchronized = nullptr;
    };
    void watchArchive(ArchiveWatch watch) { watch_ = watch; }
    // One look at the archive and the clock now (also at start).
    void checkArchive();
    ~Housekeeping();
    void start();
    void stop();
    // The interval for two retentions.
    static std::chrono::seconds intervalFor(std::chrono::seconds a, std::chrono::seconds b);

  private:
    void run();
    SentJournal& journal_;
    FileLedger& ledger_;
    ArchiveWatch watch_;
    std::chrono::steady_clock::time_point nextPrune_{};
    const std::chrono::seconds every_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace demail::gateway
