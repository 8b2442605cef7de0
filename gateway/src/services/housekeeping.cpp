#include "demail/gateway/services/housekeeping.h"

#include <Poco/Logger.h>

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
    while (!stopping_) {
        std::this_thread::sleep_for(200ms);
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

}  // namespace demail::gateway
