// Messages accepted today per sender address and per De-Mail account, for the daily limits of
// the sending policy (De-Mail is charged per message; providers limit accounts at level
// "normal" to 100 a day). Today's count survives a restart or a kill -9: each accepted message is
// one line appended to <spool>/sending-counts/<YYYY-MM-DD> (local date), read back at start.
// The append is not fsynced: after a power loss a few messages of the last seconds may not be
// counted, which errs towards the sender, never loses mail.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace demail::gateway {

class DailyCounter {
  public:
    explicit DailyCounter(std::string dir);
    ~DailyCounter();
    DailyCounter(const DailyCounter&) = delete;
    DailyCounter& operator=(const DailyCounter&) = delete;

    // Creates the directory and reads today's counts; "" or the error.
    std::string open();

    enum class Verdict { Ok, SenderFull, AccountFull };
    // One message held for sender and account while its DATA is being committed, if both are
    // below their limits (0: no limit).
    struct Ticket {
        std::string day, sender, account;
        bool held = false;
    };
    Verdict take(const std::string& sender, const std::string& account, std::uint64_t senderLimit,
                 std::uint64_t accountLimit, Ticket& ticket);
    // Whether a message would fit now (MAIL FROM: refuse early, take() decides at the end).
    Verdict wouldFit(const std::string& sender, const std::string& account,
                     std::uint64_t senderLimit, std::uint64_t accountLimit);
    void confirm(Ticket& ticket);  // accepted (250): recorded in today's file
    void release(Ticket& ticket);  // not accepted after all

    std::uint64_t accountToday(const std::string& account);
    std::uint64_t senderToday(const std::string& sender);

  private:
    void rollOver();  // mutex_ held: a new day starts with empty counts and a new file
    Verdict fits(const std::string& sender, const std::string& account, std::uint64_t senderLimit,
                 std::uint64_t accountLimit) const;

    const std::string dir_;
    std::mutex mutex_;
    std::string day_;
    int fd_ = -1;
    std::map<std::string, std::uint64_t> senders_, accounts_;
};

}  // namespace demail::gateway
