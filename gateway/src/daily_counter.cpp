#include "demail/gateway/daily_counter.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

#include "demail/connector/message/header_block.h"

namespace demail::gateway {
namespace {

std::string localDate() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

}  // namespace

DailyCounter::DailyCounter(std::string dir) : dir_(std::move(dir)) {}

DailyCounter::~DailyCounter() {
    if (fd_ >= 0)
        ::close(fd_);
}

std::string DailyCounter::open() {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
        return "cannot create " + dir_ + ": " + std::strerror(errno);
    std::lock_guard lock(mutex_);
    rollOver();
    // Today's file, written by an earlier run: each line "account<TAB>sender".
    if (std::ifstream in(dir_ + "/" + day_); in) {
        std::string line;
        while (std::getline(in, line)) {
            const auto tab = line.find('\t');
            if (tab == std::string::npos)
                continue;  // a line torn by a crash
            ++accounts_[line.substr(0, tab)];
            ++senders_[line.substr(tab + 1)];
        }
    }
    return fd_ >= 0 ? "" : "cannot open " + dir_ + "/" + day_ + ": " + std::strerror(errno);
}

void DailyCounter::rollOver() {
    const std::string today = localDate();
    if (today == day_ && fd_ >= 0)
        return;
    if (fd_ >= 0)
        ::close(fd_);
    day_ = today;
    senders_.clear();
    accounts_.clear();
    fd_ = ::open((dir_ + "/" + day_).c_str(),
                 O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    // Earlier days are of no use: only today's counts limit anything.
    if (DIR* d = ::opendir(dir_.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name != "." && name != ".." && name != day_)
                ::unlink((dir_ + "/" + name).c_str());
        }
        ::closedir(d);
    }
}

DailyCounter::Verdict DailyCounter::fits(const std::string& sender, const std::string& account,
                                         std::uint64_t senderLimit,
                                         std::uint64_t accountLimit) const {
    const auto count = [](const std::map<std::string, std::uint64_t>& m, const std::string& k) {
        const auto it = m.find(k);
        return it == m.end() ? std::uint64_t{0} : it->second;
    };
    if (senderLimit > 0 && count(senders_, sender) >= senderLimit)
        return Verdict::SenderFull;
    if (accountLimit > 0 && count(accounts_, account) >= accountLimit)
        return Verdict::AccountFull;
    return Verdict::Ok;
}

DailyCounter::Verdict DailyCounter::wouldFit(const std::string& sender, const std::string& account,
                                             std::uint64_t senderLimit,
                                             std::uint64_t accountLimit) {
    std::lock_guard lock(mutex_);
    rollOver();
    return fits(connector::toLower(sender), connector::toLower(account), senderLimit, accountLimit);
}

DailyCounter::Verdict DailyCounter::take(const std::string& sender, const std::string& account,
                                         std::uint64_t senderLimit, std::uint64_t accountLimit,
                                         Ticket& ticket) {
    std::lock_guard lock(mutex_);
    rollOver();
    ticket = {day_, connector::toLower(sender), connector::toLower(account), false};
    const Verdict v = fits(ticket.sender, ticket.account, senderLimit, accountLimit);
    if (v == Verdict::Ok) {
        ++senders_[ticket.sender];
        ++accounts_[ticket.account];
        ticket.held = true;
    }
    return v;
}

void DailyCounter::confirm(Ticket& ticket) {
    if (!ticket.held)
        return;
    ticket.held = false;
    std::lock_guard lock(mutex_);
    if (ticket.day != day_ || fd_ < 0)
        return;  // counted on a day that is over
    const std::string line = ticket.account + "\t" + ticket.sender + "\n";
    // One write(2) with O_APPEND: lines of concurrent sessions never interleave.
    [[maybe_unused]] const auto n = ::write(fd_, line.data(), line.size());
}

void DailyCounter::release(Ticket& ticket) {
    if (!ticket.held)
        return;
    ticket.held = false;
    std::lock_guard lock(mutex_);
    if (ticket.day != day_)
        return;
    if (senders_[ticket.sender] > 0)
        --senders_[ticket.sender];
    if (accounts_[ticket.account] > 0)
        --accounts_[ticket.account];
}

std::uint64_t DailyCounter::accountToday(const std::string& account) {
    std::lock_guard lock(mutex_);
    rollOver();
    const auto it = accounts_.find(connector::toLower(account));
    return it == accounts_.end() ? 0 : it->second;
}

std::uint64_t DailyCounter::senderToday(const std::string& sender) {
    std::lock_guard lock(mutex_);
    rollOver();
    const auto it = senders_.find(connector::toLower(sender));
    return it == senders_.end() ? 0 : it->second;
}

}  // namespace demail::gateway
