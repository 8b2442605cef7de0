// demail-smtp-load: an SMTP load generator for benchmarks.
//
// Postfix's smtp-source has no TLS and reports no latency. This client measures, against any SMTP
// server (the gateway, Postfix, a test sink), accepted messages per second and the latency from
// sending the end of data "\r\n.\r\n" to the final reply (p50/p99_ms), and of the whole transaction
// from MAIL FROM to that reply (txn_p50/p99_ms: where a server makes its clients wait before DATA
// shows only here), with or without STARTTLS. S sessions
// (threads) take messages from one shared counter until exactly M are taken; no pipelining.
//
// --per-connection K: a new connection after every K messages (1: one message per connection, how
// relays deliver at low load); --resume: offer the previous connection's TLS session (TLS 1.3
// ticket or TLS 1.2 session), as relays with a session cache do. steps_ms= gives the mean time of
// each step of a connection (see Steps), handshakes= and resumed= the handshakes done and resumed.
//
// Output: one line of key=value on stdout; the first distinct errors go to stderr. Exit 0 without
// errors, 1 with any, 2 on usage errors. Errors count failed messages, failed connection attempts
// (connect, greeting, EHLO, STARTTLS, handshake) and messages never sent because every session
// gave up.

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kUsage =
    "usage: demail-smtp-load --port N [--host ADDR] [--sessions S] [--messages M] [--size BYTES]\n"
    "                        [--starttls] [--per-connection K] [--from ADDR] [--to ADDR]\n"
    "                        [--helo NAME] [--timeout SECONDS] [--resume]\n";
constexpr int kUsageExit = 2;
constexpr int kConnectRetries = 3;
constexpr size_t kChunk = 64 * 1024;
constexpr size_t kReadChunk = 4096;
constexpr size_t kMaxLine = 64 * 1024;
constexpr size_t kMaxReportedErrors = 5;
constexpr size_t kLineWidth = 76;
constexpr int kSeqDigits = 12;

struct Options {
    std::string host = "127.0.0.1";
    long port = 0;
    long sessions = 1;
    long messages = 100;
    long size = 1024;
    bool starttls = false;
    bool resume = false;  // offer each session's last TLS session again (as relays that cache do)
    long per_connection = 0;
    std::string from = "a@firma.de";
    std::string to = "b@behoerde.de-mail.de";
    std::string helo = "bench.test";
    long timeout_s = 60;
};

// ---- options ----

bool parse_number(std::string_view text, long min, long max, long& out) {
    long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
        return false;
    }
    out = value;
    return true;
}

bool set_number(std::string_view name, std::string_view value, Options& o, bool& known) {
    struct Numeric {
        std::string_view name;
        long Options::*field;
        long min;
        long max;
    };
    const Numeric table[] = {
        {"--port", &Options::port, 1, 65535},
        {"--sessions", &Options::sessions, 1, 10000},
        {"--messages", &Options::messages, 1, 1000000000000L},
        {"--size", &Options::size, 0, 1L << 30},
        {"--per-connection", &Options::per_connection, 0, 1000000000000L},
        {"--timeout", &Options::timeout_s, 1, 86400},
    };
    for (const Numeric& n : table) {
        if (n.name == name) {
            known = true;
            return parse_number(value, n.min, n.max, o.*n.field);
        }
    }
    return false;
}

bool set_string(std::string_view name, std::string_view value, Options& o) {
    std::string* field = nullptr;
    if (name == "--host")
        field = &o.host;
    if (name == "--from")
        field = &o.from;
    if (name == "--to")
        field = &o.to;
    if (name == "--helo")
        field = &o.helo;
    if (field == nullptr || value.empty())
        return false;
    *field = value;
    return true;
}

// Returns the options, or nothing with `error` set (empty for --help).
std::optional<Options> parse_options(int argc, char** argv, std::string& error) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h")
            return std::nullopt;
        if (arg == "--resume") {
            o.resume = true;
            continue;
        }
        if (arg == "--starttls") {
            o.starttls = true;
            continue;
        }
        std::string_view name = arg;
        std::string_view value;
        if (auto eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            error = "missing value for " + std::string(arg);
            return std::nullopt;
        }
        bool known = false;
        if (!set_number(name, value, o, known) && (known || !set_string(name, value, o))) {
            error = "bad option or value: " + std::string(name) + " " + std::string(value);
            return std::nullopt;
        }
    }
    if (o.port == 0) {
        error = "--port is required";
        return std::nullopt;
    }
    return o;
}

// ---- shared results ----

// Time spent in each step of a session's life (sums in ms, and how often each ran), to find
// where a new connection's time goes: connect and greeting, EHLO, STARTTLS (its 220), the TLS
// handshake, EHLO after STARTTLS, a transaction (MAIL FROM to the 250 after DATA), QUIT.
struct Steps {
    enum Step { kConnect, kEhlo, kStarttls, kHandshake, kEhloTls, kTxn, kQuit, kCount };
    static constexpr const char* kNames[kCount] = {"connect",  "ehlo", "starttls", "handshake",
                                                   "ehlo_tls", "txn",  "quit"};
    double ms[kCount] = {};
    long n[kCount] = {};
    long resumed = 0;  // handshakes that resumed an earlier TLS session

    void add(Step step, Clock::time_point since) {
        ms[step] += std::chrono::duration<double, std::milli>(Clock::now() - since).count();
        ++n[step];
    }
    void merge(const Steps& o) {
        for (int i = 0; i < kCount; ++i) {
            ms[i] += o.ms[i];
            n[i] += o.n[i];
        }
        resumed += o.resumed;
    }
};

// What all sessions share: the message counter and the results.
class Shared {
  public:
    explicit Shared(long total) : total_(total) {}

    // Claims the next message and returns its number; nothing once all are taken.
    std::optional<long> claim() {
        long n = next_.fetch_add(1);
        if (n >= total_)
            return std::nullopt;
        return n;
    }
    long unclaimed() const { return total_ - std::min(next_.load(), total_); }

    void error(const std::string& what, long count = 1) {
        errors_.fetch_add(count);
        std::lock_guard lock(mutex_);
        if (reported_.size() >= kMaxReportedErrors ||
            std::find(reported_.begin(), reported_.end(), what) != reported_.end()) {
            return;
        }
        reported_.push_back(what);
        std::cerr << "demail-smtp-load: " << what << "\n";
    }
    void add_samples(const std::vector<double>& samples, const std::vector<double>& txn,
                     const Steps& steps) {
        std::lock_guard lock(mutex_);
        steps_.merge(steps);
        samples_.insert(samples_.end(), samples.begin(), samples.end());
        txn_samples_.insert(txn_samples_.end(), txn.begin(), txn.end());
    }
    long errors() const { return errors_.load(); }
    Steps steps() {
        std::lock_guard lock(mutex_);
        return steps_;
    }
    std::vector<double> sorted_samples() {
        std::lock_guard lock(mutex_);
        std::sort(samples_.begin(), samples_.end());
        return samples_;
    }
    std::vector<double> sorted_txn_samples() {
        std::lock_guard lock(mutex_);
        std::sort(txn_samples_.begin(), txn_samples_.end());
        return txn_samples_;
    }

  private:
    const long total_;
    std::atomic<long> next_{0};
    std::atomic<long> errors_{0};
    std::mutex mutex_;
    std::vector<double> samples_;
    std::vector<double> txn_samples_;
    Steps steps_;
    std::vector<std::string> reported_;
};

// ---- connection ----

struct Reply {
    int code = 0;  // 0: no reply (connection broken, timeout, malformed)
    std::string text;
};

enum class Wait { kNone, kRead, kWrite };

struct SslCtxFree {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// One non-blocking TCP connection, optionally with TLS on top; every wait has a deadline.
class Connection {
  public:
    Connection(int fd, std::chrono::seconds timeout) : fd_(fd), timeout_(timeout) {}
    ~Connection() {
        if (ssl_ != nullptr)
            SSL_free(ssl_);
        ::close(fd_);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // `session`: a TLS session to offer for resumption (nullptr: a full handshake).
    bool start_tls(SSL_CTX* ctx, SSL_SESSION* session, std::string& error);
    bool resumed() const { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }
    // The session to offer next time (TLS 1.3: known once the server's ticket has been read,
    // i.e. after the first reply over TLS), or nullptr.
    SSL_SESSION* session() const { return ssl_ != nullptr ? SSL_get1_session(ssl_) : nullptr; }
    bool write_all(std::string_view data);
    Reply read_reply();
    Reply command(std::string_view line) {
        if (!write_all(line))
            return {0, last_error_};
        return read_reply();
    }
    void shutdown_tls() {
        if (ssl_ != nullptr)
            (void)SSL_shutdown(ssl_);
    }

  private:
    bool wait(Wait what, Clock::time_point deadline);
    Wait ssl_wait(int rc);
    long read_some(char* buf, size_t len, Clock::time_point deadline);
    long write_some(const char* buf, size_t len, Clock::time_point deadline);
    std::optional<std::string> next_line(Clock::time_point deadline);

    int fd_;
    SSL* ssl_ = nullptr;
    std::chrono::seconds timeout_;
    std::string in_;
    std::string last_error_;
};

bool Connection::wait(Wait what, Clock::time_point deadline) {
    pollfd p{fd_, static_cast<short>(what == Wait::kWrite ? POLLOUT : POLLIN), 0};
    for (;;) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            last_error_ = "timeout";
            return false;
        }
        int rc = ::poll(&p, 1, static_cast<int>(left));
        if (rc > 0)
            return true;
        if (rc < 0 && errno != EINTR) {
            last_error_ = std::string("poll: ") + std::strerror(errno);
            return false;
        }
    }
}

// After an SSL call that returned rc <= 0: what to wait for, or kNone if the connection failed.
Wait Connection::ssl_wait(int rc) {
    switch (SSL_get_error(ssl_, rc)) {
        case SSL_ERROR_WANT_READ:
            return Wait::kRead;
        case SSL_ERROR_WANT_WRITE:
            return Wait::kWrite;
        case SSL_ERROR_ZERO_RETURN:
            last_error_ = "connection closed (TLS)";
            return Wait::kNone;
        default: {
            char buf[256] = "connection broken";
            if (unsigned long e = ERR_get_error(); e != 0)
                ERR_error_string_n(e, buf, sizeof buf);
            last_error_ = std::string("TLS: ") + buf;
            return Wait::kNone;
        }
    }
}

// Returns the number of bytes read, or -1 (last_error_ set).
long Connection::read_some(char* buf, size_t len, Clock::time_point deadline) {
    for (;;) {
        Wait what = Wait::kRead;
        if (ssl_ != nullptr) {
            ERR_clear_error();
            int n = SSL_read(ssl_, buf, static_cast<int>(len));
            if (n > 0)
                return n;
            what = ssl_wait(n);
        } else {
            ssize_t n = ::recv(fd_, buf, len, 0);
            if (n > 0)
                return n;
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                last_error_ = n == 0 ? "connection closed" : std::strerror(errno);
                what = Wait::kNone;
            }
        }
        if (what == Wait::kNone || !wait(what, deadline))
            return -1;
    }
}

// Returns the number of bytes written, or -1 (last_error_ set).
long Connection::write_some(const char* buf, size_t len, Clock::time_point deadline) {
    for (;;) {
        Wait what = Wait::kWrite;
        if (ssl_ != nullptr) {
            ERR_clear_error();
            int n = SSL_write(ssl_, buf, static_cast<int>(len));
            if (n > 0)
                return n;
            what = ssl_wait(n);
        } else {
            ssize_t n = ::send(fd_, buf, len, MSG_NOSIGNAL);
            if (n > 0)
                return n;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                last_error_ = std::strerror(errno);
                what = Wait::kNone;
            }
        }
        if (what == Wait::kNone || !wait(what, deadline))
            return -1;
    }
}

// Writes everything in chunks of at most kChunk; the deadline restarts with each chunk.
bool Connection::write_all(std::string_view data) {
    size_t off = 0;
    while (off < data.size()) {
        size_t len = std::min(kChunk, data.size() - off);
        long n = write_some(data.data() + off, len, Clock::now() + timeout_);
        if (n < 0)
            return false;
        off += static_cast<size_t>(n);
    }
    return true;
}

// One reply line without its line ending, or nothing (last_error_ set).
std::optional<std::string> Connection::next_line(Clock::time_point deadline) {
    for (;;) {
        if (auto nl = in_.find('\n'); nl != std::string::npos) {
            std::string line = in_.substr(0, nl);
            in_.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            return line;
        }
        if (in_.size() > kMaxLine) {
            last_error_ = "reply line too long";
            return std::nullopt;
        }
        char buf[kReadChunk];
        long n = read_some(buf, sizeof buf, deadline);
        if (n < 0)
            return std::nullopt;
        in_.append(buf, static_cast<size_t>(n));
    }
}

// Reads a whole reply, multi-line ("250-...") included; the text is its last line.
Reply Connection::read_reply() {
    auto deadline = Clock::now() + timeout_;
    for (;;) {
        auto line = next_line(deadline);
        if (!line)
            return {0, last_error_};
        bool digits = line->size() >= 3 && std::all_of(line->begin(), line->begin() + 3,
                                                       [](char c) { return c >= '0' && c <= '9'; });
        if (!digits)
            return {0, "malformed reply: " + line->substr(0, 80)};
        if (line->size() == 3 || (*line)[3] != '-') {
            return {std::stoi(line->substr(0, 3)), std::move(*line)};
        }
    }
}

bool Connection::start_tls(SSL_CTX* ctx, SSL_SESSION* session, std::string& error) {
    if (!in_.empty()) {
        error = "STARTTLS: data after the 220 reply";
        return false;
    }
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
        error = "STARTTLS: SSL_new failed";
        return false;
    }
    if (session != nullptr)
        (void)SSL_set_session(ssl_, session);
    auto deadline = Clock::now() + timeout_;
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(ssl_);
        if (rc == 1)
            return true;
        Wait what = ssl_wait(rc);
        if (what == Wait::kNone || !wait(what, deadline)) {
            error = "TLS handshake: " + last_error_;
            return false;
        }
    }
}

// ---- session setup ----

// A connected non-blocking TCP socket, or -1 with `error` set.
int connect_tcp(const Options& o, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(o.port);
    if (int rc = ::getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
        error = "connect: " + o.host + ": " + ::gai_strerror(rc);
        return -1;
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
    error = "connect: no address";
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            int err = ETIMEDOUT;
            socklen_t len = sizeof err;
            if (::poll(&p, 1, static_cast<int>(o.timeout_s * 1000)) == 1) {
                (void)::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            }
            errno = err;
            rc = err == 0 ? 0 : -1;
        }
        if (rc == 0)
            return fd;
        error = std::string("connect: ") + std::strerror(errno);
        ::close(fd);
    }
    return -1;
}

bool expect(Connection& c, std::string_view line, int code, std::string_view stage,
            std::string& error) {
    Reply r = line.empty() ? c.read_reply() : c.command(line);
    if (r.code == code)
        return true;
    error = std::string(stage) + ": " + r.text;
    return false;
}

// Greeting, EHLO, and with --starttls: STARTTLS, the handshake and EHLO again. Offers `session`
// for resumption; adds the time of each step to `steps`.
std::unique_ptr<Connection> open_session(const Options& o, SSL_CTX* ctx, SSL_SESSION* session,
                                         Steps& steps, std::string& error) {
    auto t = Clock::now();
    int fd = connect_tcp(o, error);
    if (fd < 0)
        return nullptr;
    auto c = std::make_unique<Connection>(fd, std::chrono::seconds(o.timeout_s));
    std::string ehlo = "EHLO " + o.helo + "\r\n";
    if (!expect(*c, "", 220, "greeting", error))
        return nullptr;
    steps.add(Steps::kConnect, t);
    t = Clock::now();
    if (!expect(*c, ehlo, 250, "EHLO", error))
        return nullptr;
    steps.add(Steps::kEhlo, t);
    if (ctx != nullptr) {
        t = Clock::now();
        if (!expect(*c, "STARTTLS\r\n", 220, "STARTTLS", error))
            return nullptr;
        steps.add(Steps::kStarttls, t);
        t = Clock::now();
        if (!c->start_tls(ctx, session, error))
            return nullptr;
        steps.add(Steps::kHandshake, t);
        steps.resumed += c->resumed() ? 1 : 0;
        t = Clock::now();
        if (!expect(*c, ehlo, 250, "EHLO after STARTTLS", error))
            return nullptr;
        steps.add(Steps::kEhloTls, t);
    }
    return c;
}

// Every failed attempt counts as an error; nothing after 1 + kConnectRetries failures.
std::unique_ptr<Connection> connect_with_retries(const Options& o, SSL_CTX* ctx,
                                                 SSL_SESSION* session, Steps& steps,
                                                 Shared& shared) {
    for (int attempt = 0; attempt <= kConnectRetries; ++attempt) {
        if (attempt > 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
        std::string error;
        if (auto c = open_session(o, ctx, session, steps, error))
            return c;
        shared.error(error);
    }
    return nullptr;
}

void quit(Connection& c, Steps& steps) {
    auto t = Clock::now();
    (void)c.command("QUIT\r\n");
    c.shutdown_tls();
    steps.add(Steps::kQuit, t);
}

struct SslSessionFree {
    void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslSessionFree>;

// ---- messages ----

std::string rfc5322_date() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    char buf[64];
    size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return std::string(buf, n);
}

// Filler lines of at most kLineWidth letters and digits (never '.'), CRLF between them, `bytes`
// long in total (at least one character); the last line has no CRLF, the end of data brings it.
std::string filler(size_t bytes) {
    static constexpr std::string_view kAlphabet =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::string out;
    out.reserve(bytes + kLineWidth);
    for (size_t line = 0; out.size() + 2 < bytes || out.empty(); ++line) {
        if (!out.empty())
            out += "\r\n";
        size_t width = std::clamp<size_t>(bytes - std::min(bytes, out.size()), 1, kLineWidth);
        for (size_t i = 0; i < width; ++i)
            out += kAlphabet[(line + i) % kAlphabet.size()];
    }
    return out;
}

// The message: a header section per session (only its Message-ID changes from message to
// message) and one filler body, built once before the clock starts and shared by every session,
// so that neither building nor holding 128 copies of a 10 MB body is part of what is measured.
class Body {
  public:
    Body(const Options& o, const std::string& run_id, std::string_view rest)
        : header_(header_text(o, run_id)), rest_(rest), seq_pos_(header_.find(kSeqMarker)) {}

    // The header section of message number `seq`.
    std::string_view header(long seq) {
        for (int i = kSeqDigits - 1; i >= 0; --i, seq /= 10) {
            header_[seq_pos_ + static_cast<size_t>(i)] = static_cast<char>('0' + seq % 10);
        }
        return header_;
    }
    // The body after the header section, end of data included.
    std::string_view rest() const { return rest_; }

    // The header section (with message number 0); the filler makes up the rest of --size.
    static std::string header_text(const Options& o, const std::string& run_id) {
        return "From: <" + o.from + ">\r\nTo: <" + o.to +
               ">\r\nSubject: demail-smtp-load\r\nDate: " + rfc5322_date() + "\r\nMessage-ID: <" +
               run_id + "." + std::string(kSeqMarker) + "@" + o.helo + ">\r\n\r\n";
    }

  private:
    static constexpr std::string_view kSeqMarker = "#00000000000";
    static_assert(kSeqMarker.size() == kSeqDigits);

    std::string header_;
    std::string_view rest_;
    size_t seq_pos_;
};

enum class Outcome { kOk, kRejected, kBroken };

struct Result {
    Outcome outcome = Outcome::kOk;
    double latency_ms = 0;  // end of data to the final reply
    double txn_ms = 0;      // MAIL FROM to the final reply
    std::string error;
};

Result failed(std::string_view stage, const Reply& r) {
    return {r.code == 0 ? Outcome::kBroken : Outcome::kRejected, 0, 0,
            std::string(stage) + ": " + r.text};
}

struct Envelope {
    std::string mail_from;
    std::string rcpt_to;
};

Result send_message(Connection& c, const Envelope& env, std::string_view header,
                    std::string_view rest) {
    const auto begin = Clock::now();
    Reply r = c.command(env.mail_from);
    if (r.code != 250)
        return failed("MAIL FROM", r);
    r = c.command(env.rcpt_to);
    if (r.code != 250 && r.code != 251)
        return failed("RCPT TO", r);
    r = c.command("DATA\r\n");
    if (r.code != 354)
        return failed("DATA", r);
    if (!c.write_all(header) || !c.write_all(rest))
        return failed("message body", {0, "write failed"});
    auto start = Clock::now();
    r = c.read_reply();
    auto stop = Clock::now();
    if (r.code != 250)
        return failed("end of data", r);
    using Ms = std::chrono::duration<double, std::milli>;
    return {Outcome::kOk, Ms(stop - start).count(), Ms(stop - begin).count(), {}};
}

// One session (thread): messages from the shared counter until none are left.
void run_session(const Options& o, SSL_CTX* ctx, const std::string& run_id,
                 const std::string& filler_with_end, Shared& shared) {
    Body body(o, run_id, filler_with_end);
    const Envelope env{"MAIL FROM:<" + o.from + ">\r\n", "RCPT TO:<" + o.to + ">\r\n"};
    std::vector<double> samples, txn_samples;
    Steps steps;
    SslSessionPtr session;  // with --resume: the session the last connection ended with
    std::unique_ptr<Connection> conn;
    long on_connection = 0;
    while (auto seq = shared.claim()) {
        if (!conn) {
            conn = connect_with_retries(o, ctx, session.get(), steps, shared);
            if (!conn) {
                shared.error("session gave up after " + std::to_string(kConnectRetries) +
                             " retries");
                break;
            }
            on_connection = 0;
        }
        Result res = send_message(*conn, env, body.header(*seq), body.rest());
        ++on_connection;
        if (o.resume)
            session.reset(conn->session());
        if (res.outcome == Outcome::kOk) {
            samples.push_back(res.latency_ms);
            txn_samples.push_back(res.txn_ms);
            steps.n[Steps::kTxn]++;
            steps.ms[Steps::kTxn] += res.txn_ms;
        } else {
            shared.error(res.error);
            if (res.outcome == Outcome::kBroken || conn->command("RSET\r\n").code != 250) {
                conn.reset();
            }
        }
        if (conn && o.per_connection > 0 && on_connection >= o.per_connection) {
            quit(*conn, steps);
            conn.reset();
        }
    }
    if (conn)
        quit(*conn, steps);
    shared.add_samples(samples, txn_samples, steps);
}

// ---- main ----

SslCtxPtr make_ssl_ctx() {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx)
        return ctx;
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);  // a load tool, on loopback
    SSL_CTX_set_mode(ctx.get(),
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty())
        return 0;
    auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

void report(const Options& o, Shared& shared, double seconds) {
    std::vector<double> s = shared.sorted_samples();
    std::vector<double> t = shared.sorted_txn_samples();
    auto ok = static_cast<long>(s.size());
    std::printf(
        "sessions=%ld messages=%ld size=%ld tls=%d ok=%ld errors=%ld seconds=%.3f "
        "msgs_per_s=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f txn_p50_ms=%.2f txn_p99_ms=%.2f",
        o.sessions, o.messages, o.size, o.starttls ? 1 : 0, ok, shared.errors(), seconds,
        seconds > 0 ? static_cast<double>(ok) / seconds : 0.0, percentile(s, 0.50),
        percentile(s, 0.99), s.empty() ? 0.0 : s.back(), percentile(t, 0.50), percentile(t, 0.99));
    // Mean ms per step (name:mean, "-" for a step that never ran) and the resumed handshakes.
    Steps st = shared.steps();
    std::printf(" steps_ms=");
    for (int i = 0; i < Steps::kCount; ++i) {
        std::printf("%s%s:", i ? "," : "", Steps::kNames[i]);
        if (st.n[i] > 0)
            std::printf("%.2f", st.ms[i] / static_cast<double>(st.n[i]));
        else
            std::printf("-");
    }
    std::printf(" handshakes=%ld resumed=%ld\n", st.n[Steps::kHandshake], st.resumed);
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    std::string error;
    std::optional<Options> opts = parse_options(argc, argv, error);
    if (!opts) {
        if (!error.empty())
            std::cerr << "demail-smtp-load: " << error << "\n";
        std::cerr << kUsage;
        return error.empty() ? 0 : kUsageExit;
    }
    const Options& o = *opts;
    SslCtxPtr ctx;
    if (o.starttls && !(ctx = make_ssl_ctx())) {
        std::cerr << "demail-smtp-load: SSL_CTX_new failed\n";
        return 1;
    }
    const std::string run_id = std::to_string(std::chrono::system_clock::now().time_since_epoch() /
                                              std::chrono::microseconds(1)) +
                               "." + std::to_string(::getpid());
    // --size is the whole message; the CRLF of the end of data ends the filler's last line.
    const size_t used = Body::header_text(o, run_id).size() + 2;
    const std::string filler_with_end =
        filler(static_cast<size_t>(o.size) - std::min(static_cast<size_t>(o.size), used)) +
        "\r\n.\r\n";
    Shared shared(o.messages);
    auto start = Clock::now();
    std::vector<std::thread> threads;
    for (long i = 0; i < o.sessions; ++i) {
        threads.emplace_back(run_session, std::cref(o), ctx.get(), std::cref(run_id),
                             std::cref(filler_with_end), std::ref(shared));
    }
    for (std::thread& t : threads)
        t.join();
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (long n = shared.unclaimed(); n > 0)
        shared.error("messages not sent: no session left", n);
    report(o, shared, seconds);
    return shared.errors() == 0 ? 0 : 1;
}
