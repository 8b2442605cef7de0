#include "demail/archive/archive.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

namespace demail::archive {
namespace {

const std::string kGenesis(64, '0');
constexpr const char* kIndex = "index.jsonl";
constexpr const char* kHashMember = ",\"hash\":\"";

std::string sysError(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

class Sha256 {
  public:
    Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
        EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
    }
    void update(const void* data, std::size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
    std::string hex() {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_DigestFinal_ex(ctx_.get(), md, &len);
        static const char* digits = "0123456789abcdef";
        std::string out;
        for (unsigned i = 0; i < len; ++i) {
            out += digits[md[i] >> 4];
            out += digits[md[i] & 15];
        }
        return out;
    }

  private:
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

std::string sha256(std::string_view s) {
    Sha256 h;
    h.update(s.data(), s.size());
    return h.hex();
}

std::string jsonString(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string utcNow(std::string& month) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
    month = std::string(buf, 7);
    return out;
}

std::vector<std::string> months(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n.size() == 7 && n[4] == '-' && std::all_of(n.begin(), n.end(), [](char c) {
                    return std::isdigit(static_cast<unsigned char>(c)) || c == '-';
                }))
                out.push_back(n);
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string syncDir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sysError("open " + dir);
    const int r = ::fsync(fd);
    ::close(fd);
    return r == 0 ? "" : sysError("fsync " + dir);
}

bool writeAll(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The record's line without its hash member: what the hash covers.
std::string body(const Record& r) {
    std::string fields;
    for (const auto& [k, v] : r.fields)
        fields += (fields.empty() ? "" : ",") + jsonString(k) + ":" + jsonString(v);
    return "{\"seq\":" + std::to_string(r.seq) + ",\"time\":" + jsonString(r.time) +
           ",\"clock_synchronized\":" + (r.clockSynchronized ? "true" : "false") +
           ",\"kind\":" + jsonString(r.kind) + ",\"fields\":{" + fields +
           "},\"sha256\":" + jsonString(r.sha256) + ",\"size\":" + std::to_string(r.size) +
           ",\"prev\":" + jsonString(r.prev) + "}";
}

std::optional<Record> parseLine(const std::string& line, std::string& error) {
    try {
        Poco::JSON::Parser parser;
        const auto o = parser.parse(line).extract<Poco::JSON::Object::Ptr>();
        Record r;
        r.seq = o->getValue<std::uint64_t>("seq");
        r.time = o->getValue<std::string>("time");
        r.clockSynchronized = o->getValue<bool>("clock_synchronized");
        r.kind = o->getValue<std::string>("kind");
        if (const auto f = o->getObject("fields"))
            for (const auto& [k, v] : *f)
                r.fields[k] = v.toString();
        r.sha256 = o->getValue<std::string>("sha256");
        r.size = o->getValue<std::uint64_t>("size");
        r.prev = o->getValue<std::string>("prev");
        r.hash = o->getValue<std::string>("hash");
        return r;
    } catch (const std::exception& e) {
        error = e.what();
    } catch (...) {
        error = "not a record";
    }
    return std::nullopt;
}

// The lines of an index's text; a last line without its newline (a torn write) is left out.
std::vector<std::string> linesOf(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    for (std::size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
        lines.push_back(text.substr(at, nl - at));
    return lines;
}

std::vector<std::string> indexLines(const std::string& path) {
    return linesOf(readFile(path));
}

// Writes a record's bytes to `tmp` (created 0440) and fsyncs them; their SHA-256 and size.
// "" or the error (then `tmp` is gone).
std::string writeBytes(const std::string& tmp, const Bytes& bytes, std::string& sha,
                       std::uint64_t& size) {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0440);
    if (fd < 0)
        return sysError("cannot create " + tmp);
    Sha256 h;
    bool ok = writeAll(fd, bytes.head.data(), bytes.head.size());
    h.update(bytes.head.data(), bytes.head.size());
    size = bytes.head.size();
    if (ok && bytes.rest) {
        std::vector<char> buf(1 << 16);
        std::uint64_t left = bytes.restLength;
        while (ok && left > 0) {
            bytes.rest->read(buf.data(), static_cast<std::streamsize>(
                                             std::min<std::uint64_t>(left, buf.size())));
            const auto n = static_cast<std::size_t>(bytes.rest->gcount());
            if (n == 0)
                break;
            ok = writeAll(fd, buf.data(), n);
            h.update(buf.data(), n);
            left -= n;
            size += n;
        }
        ok = ok && left == 0;
    }
    ok = ok && ::fsync(fd) == 0;
    const std::string err = ok ? "" : sysError("cannot write " + tmp);
    ::close(fd);
    if (!ok) {
        ::unlink(tmp.c_str());
        return err;
    }
    sha = h.hex();
    return {};
}

// Temporary files of appends a crash interrupted (".append-<n>.tmp", before: ".<seq>.tmp").
void removeTemporaries(const std::string& monthDir) {
    if (DIR* d = ::opendir(monthDir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n.size() > 5 && n[0] == '.' && n.compare(n.size() - 4, 4, ".tmp") == 0)
                ::unlink((monthDir + "/" + n).c_str());
        }
        ::closedir(d);
    }
}
}  // namespace

bool clockSynchronized() {
    struct timex tx {};
    const int state = ::adjtimex(&tx);
    return state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
}

std::string bytesPath(const std::string& dir, const Record& r) {
    return dir + "/" + r.month + "/" + std::to_string(r.seq) + ".bin";
}

Archive::Archive(std::string dir) : dir_(std::move(dir)), head_(kGenesis), durableHead_(kGenesis) {}

std::string Archive::open() {
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
        return sysError("cannot create " + dir_);
    std::lock_guard lock(mutex_);
    seq_ = durableSeq_ = 0;
    head_ = durableHead_ = kGenesis;
    pending_.clear();
    failed_.clear();
    month_.clear();
    const auto ms = months(dir_);
    if (!ms.empty())
        removeTemporaries(dir_ + "/" + ms.back());
    for (auto m = ms.rbegin(); m != ms.rend(); ++m) {
        const std::string path = dir_ + "/" + *m + "/" + kIndex;
        // A torn last line (a crash mid-append) is cut: that record was never completed.
        const std::string text = readFile(path);
        if (!text.empty() && text.back() != '\n') {
            const auto keep = text.rfind('\n');
            if (::truncate(path.c_str(),
                           keep == std::string::npos ? 0 : static_cast<off_t>(keep + 1)) != 0)
                return sysError("cannot cut the torn last line of " + path);
        }
        const auto lines = linesOf(text);
        if (lines.empty())
            continue;
        std::string error;
        const auto last = parseLine(lines.back(), error);
        if (!last)
            return path + ": the last record cannot be read (" + error +
                   "); run demailctl archive verify";
        seq_ = durableSeq_ = last->seq;
        head_ = durableHead_ = last->hash;
        break;
    }
    return {};
}

std::uint64_t Archive::headSeq() const {
    std::lock_guard lock(mutex_);
    return durableSeq_;
}

std::string Archive::headHash() const {
    std::lock_guard lock(mutex_);
    return durableHead_;
}

std::string Archive::failure() const {
    std::lock_guard lock(mutex_);
    return failed_;
}

std::uint64_t Archive::syncsDone() const {
    std::lock_guard lock(mutex_);
    return commits_;
}

std::string Archive::ensureMonth(const std::string& month) {
    if (month == month_)
        return {};
    const std::string monthDir = dir_ + "/" + month;
    if (::mkdir(monthDir.c_str(), 0700) != 0 && errno != EEXIST)
        return sysError("cannot create " + monthDir);
    // Also when it existed: a process killed between its mkdir and this fsync left it undurable.
    if (auto e = syncDir(dir_); !e.empty())
        return e;
    month_ = month;
    return {};
}

std::string Archive::append(const std::string& kind, const Fields& fields, const Bytes& bytes,
                            Record* written) {
    // The bytes first, outside the lock (appenders write and fsync theirs in parallel), under a
    // temporary name: a crash before the rename leaves a temporary file that open() removes.
    const bool hasBytes = !bytes.head.empty() || bytes.restLength > 0;
    std::string tmp, sha;
    std::uint64_t size = 0;
    if (hasBytes) {
        std::string month;
        utcNow(month);
        {
            std::lock_guard lock(mutex_);
            if (!failed_.empty())
                return failed_;
            if (auto e = ensureMonth(month); !e.empty())
                return e;
            tmp = dir_ + "/" + month + "/.append-" + std::to_string(++temporaries_) + ".tmp";
        }
        if (auto e = writeBytes(tmp, bytes, sha, size); !e.empty())
            return e;
    }
    // Its place in the chain, in the order of seq: number, time, predecessor, final name, line.
    std::unique_lock lock(mutex_);
    const auto abandon = [&](std::string e) {
        if (!tmp.empty())
            ::unlink(tmp.c_str());
        return e;
    };
    if (!failed_.empty())
        return abandon(failed_);
    Record r;
    r.seq = seq_ + 1;
    r.time = utcNow(r.month);
    r.clockSynchronized = clockSynchronized();
    r.kind = kind;
    r.fields = fields;
    r.prev = head_;
    if (auto e = ensureMonth(r.month); !e.empty())
        return abandon(e);
    if (hasBytes) {
        // Replaces a file of this number that a crash left without its line.
        const std::string path = bytesPath(dir_, r);
        if (::rename(tmp.c_str(), path.c_str()) != 0)
            return abandon(sysError("cannot rename " + tmp + " to " + path));
        r.sha256 = sha;
        r.size = size;
    }
    const std::string b = body(r);
    r.hash = sha256(b);
    pending_.push_back(
        {r.month, b.substr(0, b.size() - 1) + kHashMember + r.hash + "\"}\n", hasBytes});
    seq_ = r.seq;
    head_ = r.hash;
    if (auto e = commit(lock, r.seq); !e.empty())
        return e;
    if (written)
        *written = r;
    return {};
}

std::string Archive::commit(std::unique_lock<std::mutex>& lock, std::uint64_t seq) {
    while (durableSeq_ < seq && failed_.empty()) {
        if (committing_) {
            committed_.wait(lock);
            continue;
        }
        // No commit running and ours not durable: ours is pending. Take every pending record
        // (all chained before this point); the ones chained from now on wait for the next commit.
        committing_ = true;
        std::vector<Pending> batch;
        batch.swap(pending_);
        const std::uint64_t last = seq_;
        const std::string lastHash = head_;
        lock.unlock();
        if (onCommit_)
            onCommit_(batch.size());
        const std::string e = writeBatch(batch);
        lock.lock();
        committing_ = false;
        ++commits_;
        if (e.empty()) {
            durableSeq_ = last;
            durableHead_ = lastHash;
        } else {
            // The later records chain to the ones that failed: none of them can be kept.
            failed_ = e + " (the archive takes no more records until it is opened again)";
            pending_.clear();
        }
        committed_.notify_all();
    }
    return durableSeq_ >= seq ? std::string() : failed_;
}

std::string Archive::writeBatch(const std::vector<Pending>& batch) {
    // In seq order, one month after the other (a batch spans two only at a month's turn).
    for (std::size_t from = 0; from < batch.size();) {
        const std::string& month = batch[from].month;
        std::size_t to = from;
        bool renamed = false;
        std::string lines;
        for (; to < batch.size() && batch[to].month == month; ++to) {
            renamed = renamed || batch[to].hasBytes;
            lines += batch[to].line;
        }
        const std::string monthDir = dir_ + "/" + month;
        const std::string index = monthDir + "/" + kIndex;
        int fd = ::open(index.c_str(),
                        O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        const bool created = fd >= 0;
        if (fd < 0 && errno == EEXIST)
            fd = ::open(index.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return sysError("cannot open " + index);
        // The renames of the bytes (and a new index's name) durable before any line that names
        // them can reach the disk: then a line never survives a crash without its bytes.
        if (renamed || created)
            if (auto e = syncDir(monthDir); !e.empty()) {
                ::close(fd);
                return e;
            }
        struct stat before {};
        const bool measured = ::fstat(fd, &before) == 0;
        const bool ok =
            measured && writeAll(fd, lines.data(), lines.size()) && ::fdatasync(fd) == 0;
        const std::string err = ok ? "" : sysError("cannot append to " + index);
        if (!ok && measured) {
            // The lines of the records that failed are taken back, so that a restart without a
            // crash does not find them (best effort; a torn last line is cut at open anyway).
            const int cut = ::ftruncate(fd, before.st_size);
            (void)cut;
        }
        ::close(fd);
        if (!ok)
            return err;
        from = to;
    }
    return {};
}

std::string Archive::prune(std::chrono::seconds retention) {
    std::lock_guard pruning(pruneMutex_);
    std::string month;
    utcNow(month);
    const std::time_t cutoff = std::time(nullptr) - retention.count();
    for (const auto& m : months(dir_)) {
        if (m == month)
            break;  // the current month is never removed
        // The month ends at the first of the next; removable when that is before the cut-off.
        std::tm tm{};
        tm.tm_year = std::stoi(m.substr(0, 4)) - 1900;
        tm.tm_mon = std::stoi(m.substr(5, 2));  // the next month (timegm normalises 12)
        tm.tm_mday = 1;
        if (timegm(&tm) > cutoff)
            break;
        const std::string monthDir = dir_ + "/" + m;
        const auto lines = indexLines(monthDir + "/" + kIndex);
        std::string lastHash, lastSeq, error;
        if (!lines.empty())
            if (const auto last = parseLine(lines.back(), error)) {
                lastHash = last->hash;
                lastSeq = std::to_string(last->seq);
            }
        // Recorded (durably) first: a crash after it leaves a month that verify still accepts.
        if (auto e = append("pruned",
                            {{"month", m},
                             {"last_seq", lastSeq},
                             {"last_hash", lastHash},
                             {"records", std::to_string(lines.size())}},
                            {}, nullptr);
            !e.empty())
            return e;
        {
            std::lock_guard lock(mutex_);
            if (month_ == m)
                month_.clear();
        }
        if (DIR* d = ::opendir(monthDir.c_str())) {
            while (const dirent* e = ::readdir(d)) {
                const std::string n = e->d_name;
                if (n != "." && n != "..")
                    ::unlink((monthDir + "/" + n).c_str());
            }
            ::closedir(d);
        }
        if (::rmdir(monthDir.c_str()) != 0)
            return sysError("cannot remove " + monthDir);
        syncDir(dir_);
    }
    return {};
}

std::vector<Record> readAll(const std::string& dir, std::string& error) {
    std::vector<Record> out;
    for (const auto& m : months(dir))
        for (const auto& line : indexLines(dir + "/" + m + "/" + kIndex)) {
            std::string e;
            if (auto r = parseLine(line, e)) {
                r->month = m;
                out.push_back(std::move(*r));
            } else if (error.empty()) {
                error = m + ": a line cannot be read: " + e;
            }
        }
    return out;
}

Verification verify(const std::string& dir) {
    Verification v;
    std::string prevHash;
    std::uint64_t prevSeq = 0;
    // Every line parsed once; the hashes of removed months, as the "pruned" records name them,
    // are the only allowed gap at the start.
    struct Line {
        std::string month, text, error;
        std::optional<Record> record;
    };
    std::vector<Line> lines;
    std::vector<std::string> prunedHeads;
    for (const auto& m : months(dir))
        for (auto& l : indexLines(dir + "/" + m + "/" + kIndex)) {
            Line line{m, std::move(l), {}, std::nullopt};
            line.record = parseLine(line.text, line.error);
            if (line.record && line.record->kind == "pruned")
                prunedHeads.push_back(line.record->fields["last_hash"]);
            lines.push_back(std::move(line));
        }
    for (auto& [m, line, error, r] : lines) {
        if (!r) {
            v.problems.push_back(m + ": a line is not a record (" + error + ")");
            prevHash.clear();
            continue;
        }
        r->month = m;
        const std::string where = "record " + std::to_string(r->seq) + " (" + m + ")";
        const auto at = line.rfind(kHashMember);
        if (at == std::string::npos || sha256(line.substr(0, at) + "}") != r->hash)
            v.problems.push_back(where + ": altered (its hash does not match its content)");
        if (v.records == 0) {
            v.firstSeq = r->seq;
            const bool explained =
                r->prev == kGenesis ||
                std::find(prunedHeads.begin(), prunedHeads.end(), r->prev) != prunedHeads.end();
            if (!explained)
                v.problems.push_back(where +
                                     ": the chain begins here, but no record says that the "
                                     "records before it were pruned (removed)");
        } else {
            if (r->seq != prevSeq + 1)
                v.problems.push_back(where + ": follows record " + std::to_string(prevSeq) +
                                     " (records missing)");
            if (r->prev != prevHash)
                v.problems.push_back(where + ": does not chain to the record before it");
        }
        if (r->size > 0 || !r->sha256.empty()) {
            const std::string path = bytesPath(dir, *r);
            std::ifstream in(path, std::ios::binary);
            if (!in) {
                v.problems.push_back(where + ": its bytes are missing (" + path + ")");
            } else {
                Sha256 h;
                std::vector<char> buf(1 << 16);
                std::uint64_t size = 0;
                while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) ||
                       in.gcount() > 0) {
                    h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
                    size += static_cast<std::uint64_t>(in.gcount());
                }
                if (size != r->size || h.hex() != r->sha256)
                    v.problems.push_back(where + ": its bytes were altered (" + path + ")");
            }
        }
        prevHash = r->hash;
        prevSeq = r->seq;
        v.lastSeq = r->seq;
        ++v.records;
    }
    v.headHash = prevHash;
    v.ok = v.problems.empty();
    return v;
}

}  // namespace demail::archive
