#include "demail/gateway/sent_journal.h"

#include <filesystem>
#include <fstream>

#include "demail/gateway/durable_file.h"
#include "demail/gateway/spool.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {
namespace fs = std::filesystem;

SentJournal::SentJournal(std::string dir, std::chrono::seconds keep)
    : dir_(std::move(dir)), keep_(keep) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    prune();
}

std::size_t SentJournal::prune() {
    return pruneOlderThan(dir_, keep_);
}

void SentJournal::record(const std::string& queueId, const std::string& sender) {
    if (Spool::validId(queueId))
        writeFileDurably(dir_ + "/" + queueId, sender + "\n");
}

std::optional<std::string> SentJournal::senderOf(const std::string& queueId) const {
    if (!Spool::validId(queueId))
        return std::nullopt;
    std::ifstream in(dir_ + "/" + queueId);
    std::string s;
    if (!in || !std::getline(in, s) || s.empty())
        return std::nullopt;
    return s;
}

}  // namespace demail::gateway
