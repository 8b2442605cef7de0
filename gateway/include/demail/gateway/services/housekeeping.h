// Housekeeping: the gateway's working state is pruned while the daemon runs, not only at start
// (one file per message in the sent journal and the inbound ledger would otherwise grow without
// bound in a daemon that runs for months): every tenth of the shorter retention, at most hourly,
// at least every second ([queue] sent_retention, inbound_retention).
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "demail/gateway/sent_journal.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {

class Housekeeping {
  public:
    Housekeeping(SentJournal& journal, FileLedger& ledger, std::chrono::seconds every);
    ~Housekeeping();
    void start();
    void stop();
    // The interval for two retentions.
    static std::chrono::seconds intervalFor(std::chrono::seconds a, std::chrono::seconds b);

  private:
    void run();
    SentJournal& journal_;
    FileLedger& ledger_;
    const std::chrono::seconds every_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace demail::gateway
