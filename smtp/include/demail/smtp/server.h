// The ESMTP intake (RFC 5321, 3207, 4954, 1870, 6152, 2920, 2034, 3461). One thread per
// connection, capped in total and per client address.
//
// Threads are kept for the next connection: a session's thread that ends waits (up to
// kSpareThreads of them, each for at most kSpareIdle) for the next client instead of exiting, and
// start() starts a few. A new client then wakes a sleeping thread instead of creating one: on a
// busy machine a newly created thread waits up to a scheduler tick (4 ms here) before it first
// runs, which made a new connection's greeting cost 4 ms (issue 19); a woken one runs at once.
//
// Why threads and not an event loop: a session is a strictly sequential conversation with
// blocking steps that dominate its cost (the fsync before 250, TLS handshakes), so a thread per
// session is the plainest correct design; the caps keep it bounded, idle sessions cost a mostly
// unused stack each (measured by the benchmarks of issue 9), and the code reads top to bottom.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "demail/smtp/auth.h"
#include "demail/smtp/policy.h"

struct sockaddr_storage;

namespace demail::smtp {

struct ServerConfig {
    std::string host = "127.0.0.1";
    std::uint16_t port = 2525;  // 0: any free port (tests)
    std::string hostname = "localhost";
    std::string tlsCert, tlsKey;  // empty: no STARTTLS
    bool requireTls = true;
    std::uint64_t maxMessageSize = 20971520;
    std::size_t maxRecipients = 100;
    std::size_t maxLineLength = 1000;  // RFC 5321 §4.5.3.1.6 text line, CRLF included
    int maxConnections = 1000;
    int maxConnectionsPerClient = 50;
    int maxErrors = 20;
    std::chrono::seconds commandTimeout{300};  // RFC 5321 §4.5.3.2: at least 5 minutes
    std::chrono::seconds dataTimeout{600};     // the whole DATA phase
    std::chrono::seconds tlsHandshakeTimeout{60};
    // At most this many sessions in the DATA phase at once (0: no limit); the others wait for
    // their turn, in the order they sent DATA, before the 354, and at most dataAdmissionWait,
    // after which they go ahead anyway. A client may wait before the 354 as long as it likes,
    // but every moment it waits after its final "." is one in which a dropped connection leaves
    // it not knowing whether the message was taken (a duplicate when it sends again, RFC 1047).
    // With many sessions committing at once the disk is the limit either way; the limit keeps
    // the wait after the "." short (issue 19: end-of-DATA p99 at 128 sessions).
    int maxConcurrentData = 32;
    std::chrono::milliseconds dataAdmissionWait{5000};
    // The audit trail (review L3): one key=value line per accepted message and per refusal that
    // matters (relay, sender, AUTH, smuggling, limits), always with the client's address. Values
    // from the client are quoted with control characters escaped (auditValue). Empty: no trail.
    std::function<void(const std::string& line)> audit;
};

// A client-supplied value for a log line: quoted, with '"', '\\' and every control or non-ASCII
// byte escaped as \xHH, so that no client can forge a log field, a line or a terminal sequence.
std::string auditValue(const std::string& v);

class Server {
  public:
    Server(ServerConfig config, Policy& policy, MessageSink& sink, const UsersFile* users);
    ~Server();
    // Binds, starts accepting; empty string on success.
    std::string start();
    std::uint16_t port() const { return boundPort_; }
    // Set by start() when the open-file limit forced a lower max_connections: for the log.
    const std::string& notice() const { return notice_; }
    // Stops accepting; sessions answer 421 at their next command; after `grace`, the sockets of
    // the sessions still running are shut down, and stop() returns when every session has ended.
    void stop(std::chrono::seconds grace = std::chrono::seconds(30));
    int activeSessions() const { return active_.load(); }

    struct Counters {
        std::atomic<std::uint64_t> connections{0}, accepted{0}, refusedRecipients{0},
            tlsHandshakes{0}, authFailures{0}, fdExhaustion{0}, threadFailures{0},
            dataAdmissionWaits{0}, dataAdmissionTimeouts{0};
    };
    const Counters& counters() const { return counters_; }

  private:
    void acceptLoop();
    int acceptOne(sockaddr_storage& peer);
    // Hands an admitted client to a spare thread, or starts one; false if no thread can be had.
    bool dispatch(int fd, const std::string& client);
    // A session thread: runs its first session, then waits as a spare for further ones.
    void worker(int fd, std::string client);
    void runSession(int fd, std::string client);
    void sessionEnded(int fd, const std::string& client);
    // The DATA admission (see ServerConfig::maxConcurrentData): enterData() waits for the
    // session's turn (or the bound), leaveData() ends its DATA phase.
    void enterData();
    void leaveData();
    std::string fitConnectionsToFdLimit();

    ServerConfig config_;
    Policy& policy_;
    MessageSink& sink_;
    const UsersFile* users_;
    AuthThrottle throttle_;
    SSL_CTX* tls_ = nullptr;
    int listenFd_ = -1;
    int reserveFd_ = -1;  // given up to accept-and-refuse a client when descriptors run out
    std::string notice_;
    std::uint16_t boundPort_ = 0;
    std::thread acceptThread_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> active_{0};
    std::mutex mutex_;
    std::condition_variable idle_;
    std::map<std::string, int> perClient_;
    std::set<int> sessionFds_;  // of the running sessions, for stop()
    // Spare threads (guarded by mutex_): clients handed over and not yet taken, how many threads
    // wait for one, and how many threads exist at all (stop() waits until none is left).
    struct Handover {
        int fd;
        std::string client;
    };
    std::deque<Handover> handovers_;
    int spare_ = 0;
    int threads_ = 0;
    std::condition_variable work_;
    // DATA admission: tickets handed out and DATA phases ended (a ticket waits until it is
    // below ended + maxConcurrentData). Each end admits exactly one ticket, which waits on
    // dataTurn_[ticket % kDataTurns]: one wake-up per end, not one for every waiting session.
    static constexpr std::size_t kDataTurns = 64;
    std::mutex dataMutex_;
    std::condition_variable dataTurn_[kDataTurns];
    std::uint64_t dataTickets_ = 0, dataEnded_ = 0;
    Counters counters_;

    friend class Session;
};

}  // namespace demail::smtp
