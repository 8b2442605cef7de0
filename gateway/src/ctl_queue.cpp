#include "demail/gateway/ctl_queue.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "demail/gateway/dsn.h"
#include "demail/gateway/durable_file.h"
#include "demail/gateway/sent_journal.h"
#include "demail/gateway/spool.h"
#include "demail/gateway/spool_layout.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {
namespace {

// Length of the well-formed UTF-8 sequence at s[i] (2 to 4 bytes) and its code point; 0 if the
// bytes there are not one (stray continuation byte, overlong form, surrogate, beyond U+10FFFF).
std::size_t utf8Sequence(std::string_view s, std::size_t i, char32_t& cp) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char c = b(0);
    std::size_t len = 0;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (i + len > s.size())
        return 0;
    for (std::size_t k = 1; k < len; ++k) {
        if ((b(k) & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (b(k) & 0x3F);
    }
    const char32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

// Code points a terminal acts on or that reorder what the operator sees.
bool harmfulCodePoint(char32_t cp) {
    return cp < 0xA0                           // C1 controls (0x9B is CSI on some terminals)
           || cp == 0x200E || cp == 0x200F     // LRM, RLM
           || cp == 0x2028 || cp == 0x2029     // line and paragraph separators
           || (cp >= 0x202A && cp <= 0x202E)   // bidi embeddings and overrides
           || (cp >= 0x2066 && cp <= 0x2069);  // bidi isolates
}

// Copies `from` to `to` (a new file: never over an existing one, never through a symlink) and
// fsyncs it; "" or the error.
std::string copyNewFile(const std::string& from, const std::string& to) {
    std::ifstream in(from, std::ios::binary);
    if (!in)
        return "cannot read " + from;
    const int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return "cannot create " + to + ": " + std::strerror(errno);
    char buf[64 * 1024];
    std::string error;
    while (error.empty() && in) {
        in.read(buf, sizeof buf);
        for (std::streamsize done = 0, n = in.gcount(); done < n;) {
            const auto w = ::write(fd, buf + done, static_cast<std::size_t>(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                error = "cannot write " + to + ": " + std::strerror(errno);
                break;
            }
            done += w;
        }
    }
    if (error.empty() && in.bad())
        error = "cannot read " + from;
    if (error.empty() && ::fsync(fd) != 0)
        error = "cannot fsync " + to + ": " + std::strerror(errno);
    ::close(fd);
    if (!error.empty())
        ::unlink(to.c_str());
    return error;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// `queue import DIR`: the queue of another gateway's spool (a copy of its [queue] dir, taken
// while that gateway is stopped) into this one, keeping each message's queue id: the queue id is
// the provider's idempotency key (and the private-id a look-up binding asks for), so a message
// the old gateway had already handed over is recognised by the provider and recorded as sent,
// never sent twice. Each message is validated (the spool record with its end marker), copied to
// tmp/ and fsync'ed, its dispatch state (next try: now) written, then linked into queue/ (never
// over a message already there) and the directory fsync'ed: the running daemon's next full pass
// (within a second) sees it whole or not at all. Run it again after an interruption: what is
// here already is skipped.
int importQueue(const std::string& spoolDir, const std::string& from, std::ostream& out,
                std::ostream& err) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(spool_layout::path(from, spool_layout::kQueue), ec)) {
        err << "demailctl queue import: " << printable(from)
            << " is not a gateway spool (no queue/ directory); give the copy of the other "
               "gateway's [queue] dir\n";
        return 1;
    }
    if (fs::equivalent(from, spoolDir, ec)) {
        err << "demailctl queue import: " << printable(from) << " is this gateway's own spool\n";
        return 2;
    }
    Spool source(from);
    Spool here(spoolDir);
    if (auto e = here.open(); !e.empty()) {
        err << "demailctl queue import: " << e << "\n";
        return 1;
    }
    DispatchStateFiles states(spool_layout::path(spoolDir, spool_layout::kDispatch));
    const std::string queueDir = spool_layout::path(spoolDir, spool_layout::kQueue);
    const std::string tmpDir = spool_layout::path(spoolDir, spool_layout::kTmp);
    // Read only: a retention of a century prunes nothing in the copy.
    const SentJournal oldJournal(spool_layout::path(from, spool_layout::kSent),
                                 std::chrono::hours(24 * 365 * 100));
    std::size_t imported = 0, present = 0, sent = 0, failed = 0;
    for (const auto& e :
         fs::directory_iterator(spool_layout::path(from, spool_layout::kQueue), ec)) {
        const std::string id = e.path().filename().string();
        if (!Spool::validId(id)) {
            out << printable(id) << ": skipped, not a queue id\n";
            continue;
        }
        if (exists(queueDir + "/" + id)) {
            ++present;
            out << id << ": already queued here\n";
            continue;
        }
        // Handed to the provider already: by this gateway (an earlier import: its record with
        // no queue file left), or by the old one (its record holds the provider's receipt; a
        // record without one is written before each attempt and proves nothing).
        const auto old = oldJournal.lookup(id);
        if (exists(spool_layout::path(spoolDir, spool_layout::kSent) + "/" + id) ||
            (old && !old->providerIds.empty())) {
            ++sent;
            out << id << ": already submitted (sent record), not imported\n";
            continue;
        }
        if (!source.envelope(id) || !source.body(id)) {
            ++failed;
            err << id << ": unreadable or incomplete spool record, not imported\n";
            continue;
        }
        const std::string tmp = tmpDir + "/" + id + ".import";
        ::unlink(tmp.c_str());  // left by an interrupted import
        std::string error = copyNewFile(e.path().string(), tmp);
        if (error.empty()) {
            // The old gateway's progress (a bounce still to be reported, a delay warning already
            // sent), tried at once here.
            const auto text =
                readSmallFile(spool_layout::path(from, spool_layout::kDispatch) + "/" + id, 65536);
            DispatchState st;
            if (text)
                if (auto decoded = decodeDispatchState(*text))
                    st = *decoded;
            st.nextAttempt = TimePoint{};
            error = states.save(id, st);
        }
        if (error.empty() && ::link(tmp.c_str(), (queueDir + "/" + id).c_str()) != 0)
            error = "cannot link into " + queueDir + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        if (error.empty())
            error = syncDirectory(queueDir);
        if (!error.empty()) {
            ++failed;
            err << id << ": " << error << "\n";
            continue;
        }
        ++imported;
        out << id << ": imported\n";
    }
    if (ec) {
        err << "demailctl queue import: cannot list " << printable(from)
            << "/queue: " << ec.message() << "\n";
        return 1;
    }
    out << "-- " << imported << " imported, " << present << " already here, " << sent
        << " already submitted, " << failed << " failed\n";
    return failed ? 1 : 0;
}

}  // namespace

std::string printable(std::string_view text) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\\') {
            out += "\\\\";
            ++i;
            continue;
        }
        if ((c >= 0x20 && c < 0x7F) || c == '\t') {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        if (c >= 0x80) {
            char32_t cp = 0;
            const std::size_t len = utf8Sequence(text, i, cp);
            if (len != 0 && !harmfulCodePoint(cp)) {
                out.append(text.substr(i, len));
                i += len;
                continue;
            }
            if (len != 0) {  // a harmful but well-formed sequence: escape all of its bytes
                for (std::size_t k = 0; k < len; ++k) {
                    const auto e = static_cast<unsigned char>(text[i + k]);
                    out += "\\x";
                    out += hex[e >> 4];
                    out += hex[e & 15];
                }
                i += len;
                continue;
            }
        }
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
        ++i;
    }
    return out;
}

// delete ID [ID...], or "-": the ids one per line on standard input (as postsuper -d -), for
// emptying many at once without a process per message. Each is removed durably on its own.
static int deleteMessages(Spool& spool, DispatchStateFiles& states, const std::string& spoolDir,
                          const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                          std::ostream& err) {
    std::vector<std::string> ids(args.begin() + 1, args.end());
    if (ids.size() == 1 && ids[0] == "-") {
        ids.clear();
        for (std::string line; std::getline(in, line);)
            if (!line.empty())
                ids.push_back(line);
    } else if (ids.empty()) {
        err << "demailctl queue delete: needs queue ids, or - to read them from standard input\n";
        return 2;
    }
    int failed = 0;
    for (const auto& id : ids) {
        if (!spool.envelope(id)) {
            err << "demailctl queue delete: no message " << printable(id) << " in " << spoolDir
                << "/queue\n";
            ++failed;
            continue;
        }
        if (!spool.remove(id)) {
            err << "demailctl queue delete: cannot remove " << id << "\n";
            ++failed;
            continue;
        }
        states.remove(id);
        out << id << " deleted (no notification is sent)\n";
    }
    return failed == 0 ? 0 : 1;
}

int runQueueCommand(const std::string& spoolDir, const std::vector<std::string>& args,
                    std::ostream& out, std::ostream& err) {
    Spool spool(spoolDir);
    if (args.empty()) {
        err << "usage: demailctl queue list | show ID | retry ID | delete ID...|- | import DIR\n";
        return 2;
    }
    const std::string& cmd = args[0];
    if (cmd == "import") {
        if (args.size() != 2) {
            err << "demailctl queue import: needs the directory of the other gateway's spool\n";
            return 2;
        }
        return importQueue(spoolDir, args[1], out, err);
    }
    DispatchStateFiles states(spool_layout::path(spoolDir, spool_layout::kDispatch));
    if (cmd == "list") {
        const auto ids = spool.list();
        for (const auto& id : ids) {
            const auto env = spool.envelope(id);
            if (!env) {
                out << id << "  (unreadable)\n";
                continue;
            }
            const DispatchState st = states.load(id);
            out << std::left << std::setw(24) << id << std::right << std::setw(10) << env->size
                << "  " << rfc5322Date(env->arrival) << "  <" << printable(env->sender) << ">\n";
            if (!st.lastError.empty())
                out << "    (" << (st.phase == DispatchState::Phase::Notify ? "bouncing: " : "")
                    << printable(st.lastError) << ", " << st.attempts << " attempts)\n";
            for (const auto& r : env->recipients)
                out << "    " << printable(r.address) << "\n";
        }
        out << "-- " << ids.size() << (ids.size() == 1 ? " message" : " messages") << "\n";
        return 0;
    }
    if (cmd == "delete")
        return deleteMessages(spool, states, spoolDir, args, std::cin, out, err);
    if (args.size() != 2) {
        err << "demailctl queue " << cmd << ": needs one queue id\n";
        return 2;
    }
    const std::string& id = args[1];
    const auto env = spool.envelope(id);
    if (!env) {
        err << "demailctl queue " << cmd << ": no message " << id << " in " << spoolDir
            << "/queue\n";
        return 1;
    }
    if (cmd == "show") {
        const DispatchState st = states.load(id);
        out << "queue id:  " << id << "\narrival:   " << rfc5322Date(env->arrival)
            << "\nsize:      " << env->size << "\nsender:    <" << printable(env->sender) << ">\n";
        for (const auto& r : env->recipients)
            out << "recipient: <" << printable(r.address) << ">"
                << (r.notify.empty() ? "" : " NOTIFY=" + printable(r.notify))
                << (r.orcpt.empty() ? "" : " ORCPT=" + printable(r.orcpt)) << "\n";
        out << "client:    " << printable(env->clientAddress) << " (" << printable(env->clientHelo)
            << ")" << (env->authUser.empty() ? "" : " user " + printable(env->authUser))
            << (env->tls.empty() ? "" : ", " + printable(env->tls)) << "\n";
        out << "attempts:  " << st.attempts
            << (st.lastError.empty() ? "" : ", last error: " + printable(st.lastError)) << "\n\n";
        auto body = spool.body(id);
        std::string line;
        while (body && std::getline(*body, line)) {  // the header section only
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            if (line.empty())
                break;
            out << printable(line) << "\n";
        }
        return 0;
    }
    if (cmd == "retry") {
        DispatchState st = states.load(id);
        st.nextAttempt = TimePoint{};
        const std::string e = states.save(id, st);
        if (!e.empty()) {
            err << "demailctl queue retry: " << e << "\n";
            return 1;
        }
        out << id << " will be tried at the next dispatcher pass\n";
        return 0;
    }
    err << "demailctl queue: unknown command '" << cmd << "'\n";
    return 2;
}

}  // namespace demail::gateway
