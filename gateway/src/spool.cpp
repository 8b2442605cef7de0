#include "demail/gateway/spool.h"

#include "demail/gateway/durable_file.h"
#include "demail/gateway/spool_layout.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace demail::gateway {
namespace fs = std::filesystem;
namespace {

constexpr const char* kMagic = "DEMAIL-SPOOL 1";
constexpr std::size_t kTrailerSize = 32;  // "DEMAIL-END " + 20 digits + "\n"

std::string oneLine(const std::string& s) {
    std::string out;
    for (char c : s)
        out += (c == '\n' || c == '\r' || c == '\0') ? ' ' : c;
    return out;
}

bool syncDir(const std::string& dir) {
    return syncDirectory(dir).empty();
}

std::string encodeEnvelope(const Envelope& e) {
    std::ostringstream o;
    o << kMagic << "\n";
    o << "sender=" << oneLine(e.sender) << "\n";
    for (const auto& r : e.recipients)
        o << "rcpt=" << oneLine(r.address) << "\t" << oneLine(r.notify) << "\t" << oneLine(r.orcpt)
          << "\n";
    o << "ret=" << oneLine(e.ret) << "\n";
    o << "envid=" << oneLine(e.envid) << "\n";
    o << "client=" << oneLine(e.clientAddress) << "\n";
    o << "helo=" << oneLine(e.clientHelo) << "\n";
    o << "auth=" << oneLine(e.authUser) << "\n";
    o << "tls=" << oneLine(e.tls) << "\n";
    o << "arrival="
      << std::chrono::duration_cast<std::chrono::milliseconds>(e.arrival.time_since_epoch()).count()
      << "\n";
    o << "end-envelope\n";
    return o.str();
}

struct Parsed {
    Envelope envelope;
    std::uint64_t bodyOffset = 0;
    std::uint64_t bodySize = 0;
};

std::optional<Parsed> parseFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    in.seekg(0, std::ios::end);
    const auto fileSize = static_cast<std::uint64_t>(in.tellg());
    in.seekg(0);
    std::string line;
    if (!std::getline(in, line) || line != kMagic)
        return std::nullopt;
    Parsed p;
    bool ended = false;
    try {
        while (std::getline(in, line)) {
            if (line == "end-envelope") {
                ended = true;
                break;
            }
            const auto eq = line.find('=');
            if (eq == std::string::npos)
                return std::nullopt;
            const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
            if (k == "sender")
                p.envelope.sender = v;
            else if (k == "rcpt") {
                Recipient r;
                std::istringstream f(v);
                std::getline(f, r.address, '\t');
                std::getline(f, r.notify, '\t');
                std::getline(f, r.orcpt, '\t');
                p.envelope.recipients.push_back(r);
            } else if (k == "ret")
                p.envelope.ret = v;
            else if (k == "envid")
                p.envelope.envid = v;
            else if (k == "client")
                p.envelope.clientAddress = v;
            else if (k == "helo")
                p.envelope.clientHelo = v;
            else if (k == "auth")
                p.envelope.authUser = v;
            else if (k == "tls")
                p.envelope.tls = v;
            else if (k == "arrival") {
                // Milliseconds since the epoch; beyond ~285 years the nanosecond clock overflows.
                const long long ms = std::stoll(v);
                if (ms < 0 || ms > 9'000'000'000'000LL)
                    return std::nullopt;
                p.envelope.arrival =
                    std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
            }
        }
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (!ended || p.envelope.recipients.empty())
        return std::nullopt;
    p.bodyOffset = static_cast<std::uint64_t>(in.tellg());
    if (fileSize < p.bodyOffset + kTrailerSize)
        return std::nullopt;
    in.seekg(static_cast<std::streamoff>(fileSize - kTrailerSize));
    std::string trailer(kTrailerSize, '\0');
    in.read(trailer.data(), kTrailerSize);
    if (trailer.rfind("DEMAIL-END ", 0) != 0 || trailer.back() != '\n')
        return std::nullopt;
    try {
        p.bodySize = std::stoull(trailer.substr(11, 20));
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (p.bodyOffset + p.bodySize + kTrailerSize != fileSize)
        return std::nullopt;
    p.envelope.size = p.bodySize;
    return p;
}

// An istream over [offset, offset + size) of a file. Positions are relative to the range; tellg()
// and seekg() work (the evidence archive reads a body, then the provider upload reads it again).
class RangeBuf : public std::streambuf {
  public:
    RangeBuf(const std::string& path, std::uint64_t offset, std::uint64_t size)
        : in_(path, std::ios::binary), offset_(offset), size_(size), left_(size) {
        in_.seekg(static_cast<std::streamoff>(offset));
    }
    bool ok() const { return static_cast<bool>(in_); }

  protected:
    int_type underflow() override {
        if (left_ == 0)
            return traits_type::eof();
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left_, sizeof buf_));
        in_.read(buf_, static_cast<std::streamsize>(n));
        const auto got = static_cast<std::size_t>(in_.gcount());
        if (got == 0)
            return traits_type::eof();
        left_ -= got;
        setg(buf_, buf_, buf_ + got);
        return traits_type::to_int_type(buf_[0]);
    }

    pos_type seekoff(off_type off, std::ios_base::seekdir dir,
                     std::ios_base::openmode which) override {
        const auto here = static_cast<off_type>(size_ - left_) - (egptr() - gptr());
        const off_type base = dir == std::ios_base::beg   ? 0
                              : dir == std::ios_base::cur ? here
                                                          : static_cast<off_type>(size_);
        return seekpos(pos_type(base + off), which);
    }
    pos_type seekpos(pos_type pos, std::ios_base::openmode) override {
        const auto p = static_cast<off_type>(pos);
        if (p < 0 || static_cast<std::uint64_t>(p) > size_)
            return pos_type(off_type(-1));
        in_.clear();
        in_.seekg(static_cast<std::streamoff>(offset_ + static_cast<std::uint64_t>(p)));
        left_ = size_ - static_cast<std::uint64_t>(p);
        setg(buf_, buf_, buf_);  // nothing buffered: the next read comes from the new place
        return pos;
    }

  private:
    std::ifstream in_;
    const std::uint64_t offset_, size_;
    std::uint64_t left_;
    char buf_[65536];
};

class RangeStream : public std::istream {
  public:
    RangeStream(const std::string& path, std::uint64_t offset, std::uint64_t size)
        : std::istream(nullptr), buf_(path, offset, size) {
        rdbuf(&buf_);
    }

  private:
    RangeBuf buf_;
};

class FileWriter final : public SpoolWriter {
  public:
    FileWriter(std::string dir, std::uint64_t maxSize, DirectorySyncer& queueSync,
               SpoolFreePool& freePool, const Envelope& env)
        : dir_(std::move(dir)),
          maxSize_(maxSize),
          queueSync_(queueSync),
          freePool_(freePool),
          id_(Spool::newQueueId()) {
        tmpPath_ = spool_layout::path(dir_, spool_layout::kTmp) + "/" + id_;
        fd_ = reuseFreeFile();
        if (fd_ < 0)
            fd_ = ::open(tmpPath_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd_ < 0) {
            fail();
            return;
        }
        pending_.reserve(kBufferSize);
        const std::string head = encodeEnvelope(env);
        buffered(head.data(), head.size());
    }
    ~FileWriter() override {
        // A message not taken (refused at the end of DATA, connection lost): its file is emptied
        // and kept for the next one, or removed when the pool is full or the file is in doubt.
        if (fd_ >= 0)
            ::close(fd_);
        if (!committed_ && !freePool_.adopt(tmpPath_, id_))
            ::unlink(tmpPath_.c_str());
    }
    bool write(const char* data, std::size_t n) override {
        if (error_ != SpoolError::None)
            return false;
        body_ += n;
        if (body_ > maxSize_) {
            error_ = SpoolError::TooLarge;
            errorText_ = "message larger than " + std::to_string(maxSize_) + " bytes";
            return false;
        }
        return buffered(data, n);
    }
    std::optional<std::string> commit() override {
        if (error_ != SpoolError::None)
            return std::nullopt;
        char trailer[kTrailerSize + 1];
        std::snprintf(trailer, sizeof trailer, "DEMAIL-END %020llu\n",
                      static_cast<unsigned long long>(body_));
        if (!buffered(trailer, kTrailerSize) || !flush())
            return std::nullopt;
        if (::fsync(fd_) != 0) {
            fail();
            return std::nullopt;
        }
        ::close(fd_);
        fd_ = -1;
        const std::string final = spool_layout::path(dir_, spool_layout::kQueue) + "/" + id_;
        if (::rename(tmpPath_.c_str(), final.c_str()) != 0) {
            fail();
            return std::nullopt;
        }
        // The fsync may have run on another session's thread: its errno is not ours to read.
        if (const std::string error = queueSync_.sync(); !error.empty()) {
            error_ = SpoolError::Io;
            errorText_ = "spool: " + error;
            return std::nullopt;
        }
        committed_ = true;
        return id_;
    }
    const std::string& queueId() const override { return id_; }
    SpoolError error() const override { return error_; }
    std::string errorText() const override { return errorText_; }

  private:
    // A spent queue file from free/, claimed by renaming it to tmp/<id> (the rename is the claim:
    // another process taking the same name gets ENOENT), then emptied. -1: none to be had.
    int reuseFreeFile() {
        for (int attempt = 0; attempt < 4; ++attempt) {
            const std::string name = freePool_.take();
            if (name.empty())
                return -1;
            const std::string from = spool_layout::path(dir_, spool_layout::kFree) + "/" + name;
            if (::rename(from.c_str(), tmpPath_.c_str()) != 0)
                continue;
            const int fd = SpoolFreePool::openEmptied(tmpPath_);
            if (fd >= 0)
                return fd;
            ::unlink(tmpPath_.c_str());  // not ours to write: dropped, a new file is made
        }
        return -1;
    }

    // DATA arrives line by line; one write(2) per line (and one per CRLF) made the system calls
    // cost more than the fsync for 100 KB messages. Collected here, written 64 KiB at a time;
    // a write error (ENOSPC) still surfaces before the 250, at the latest in commit().
    static constexpr std::size_t kBufferSize = 64 * 1024;
    bool buffered(const char* data, std::size_t n) {
        if (pending_.size() + n > kBufferSize && !flush())
            return false;
        if (n >= kBufferSize)
            return raw(data, n);
        pending_.insert(pending_.end(), data, data + n);
        return true;
    }
    bool flush() {
        const bool ok = raw(pending_.data(), pending_.size());
        pending_.clear();
        return ok;
    }
    bool raw(const char* data, std::size_t n) {
        while (n > 0 && fd_ >= 0) {
            const ssize_t w = ::write(fd_, data, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                fail();
                return false;
            }
            data += w;
            n -= static_cast<std::size_t>(w);
            written_ += static_cast<std::uint64_t>(w);
        }
        startWriteback();
        return fd_ >= 0;
    }
    // A large message is handed to the disk while the rest of it still arrives, so that the
    // fsync before the 250 only waits for the last piece: sync_file_range(WRITE) starts the
    // writeback of what is written and does not wait for it (the fsync remains the guarantee).
    // 10 MB over one STARTTLS session: the fsync took about half of each message's time.
    static constexpr std::uint64_t kWritebackStep = 1024 * 1024;
    void startWriteback() {
        if (fd_ < 0 || written_ - writebackStarted_ < kWritebackStep)
            return;
        ::sync_file_range(fd_, static_cast<off_t>(writebackStarted_),
                          static_cast<off_t>(written_ - writebackStarted_), SYNC_FILE_RANGE_WRITE);
        writebackStarted_ = written_;
    }
    void fail() {
        const int e = errno;
        error_ = (e == ENOSPC || e == EDQUOT) ? SpoolError::NoSpace : SpoolError::Io;
        errorText_ = std::string("spool: ") + std::strerror(e);
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    std::string dir_;
    std::uint64_t maxSize_;
    DirectorySyncer& queueSync_;
    SpoolFreePool& freePool_;
    std::string id_;
    std::string tmpPath_;
    int fd_ = -1;
    std::vector<char> pending_;
    std::uint64_t body_ = 0;
    std::uint64_t written_ = 0;           // bytes written to the file so far
    std::uint64_t writebackStarted_ = 0;  // up to here the disk has been asked to write
    bool committed_ = false;
    SpoolError error_ = SpoolError::None;
    std::string errorText_;
};

}  // namespace

Spool::Spool(std::string dir, std::uint64_t maxMessageSize)
    : dir_(std::move(dir)),
      maxSize_(maxMessageSize),
      queueSync_(std::make_shared<DirectorySyncer>(spool_layout::path(dir_, spool_layout::kQueue))),
      freePool_(std::make_shared<SpoolFreePool>(spool_layout::path(dir_, spool_layout::kFree))) {}

std::string Spool::open() {
    std::error_code ec;
    for (const char* sub :
         {spool_layout::kTmp, spool_layout::kQueue, spool_layout::kCorrupt, spool_layout::kFree}) {
        fs::create_directories(dir_ + "/" + sub, ec);
        if (ec)
            return "cannot create " + dir_ + "/" + sub + ": " + ec.message();
    }
    return {};
}

std::string Spool::newQueueId() {
    // Sortable by arrival: UTC time to the second, then 8 random characters (base32).
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[16];
    std::strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    unsigned char rnd[8];
    RAND_bytes(rnd, sizeof rnd);
    static const char* alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    std::string id = stamp;
    for (unsigned char b : rnd)
        id += alphabet[b & 31];
    return id;
}

bool Spool::validId(const std::string& id) {
    return id.size() == 22 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
           });
}

SpoolRecovery Spool::recover() {
    SpoolRecovery r;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(spool_layout::path(dir_, spool_layout::kTmp), ec)) {
        fs::remove(e.path(), ec);
        ++r.tempRemoved;
    }
    syncDir(spool_layout::path(dir_, spool_layout::kTmp));
    for (const auto& e :
         fs::directory_iterator(spool_layout::path(dir_, spool_layout::kQueue), ec)) {
        const std::string name = e.path().filename().string();
        if (validId(name) && parseFile(e.path().string())) {
            ++r.kept;
        } else {
            fs::rename(e.path(), spool_layout::path(dir_, spool_layout::kCorrupt) + "/" + name, ec);
            ++r.movedToCorrupt;
        }
    }
    if (r.movedToCorrupt)
        syncDir(spool_layout::path(dir_, spool_layout::kQueue));
    freePool_->load();
    return r;
}

std::unique_ptr<SpoolWriter> Spool::begin(const Envelope& envelope) {
    return std::make_unique<FileWriter>(dir_, maxSize_, *queueSync_, *freePool_, envelope);
}

std::vector<std::string> Spool::list() const {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& e :
         fs::directory_iterator(spool_layout::path(dir_, spool_layout::kQueue), ec)) {
        const std::string name = e.path().filename().string();
        if (validId(name))
            ids.push_back(name);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

std::optional<Envelope> Spool::envelope(const std::string& id) const {
    if (!validId(id))
        return std::nullopt;
    auto p = parseFile(spool_layout::path(dir_, spool_layout::kQueue) + "/" + id);
    if (!p)
        return std::nullopt;
    return p->envelope;
}

std::unique_ptr<std::istream> Spool::body(const std::string& id) const {
    if (!validId(id))
        return nullptr;
    const std::string path = spool_layout::path(dir_, spool_layout::kQueue) + "/" + id;
    auto p = parseFile(path);
    if (!p)
        return nullptr;
    return std::make_unique<RangeStream>(path, p->bodyOffset, p->bodySize);
}

bool Spool::remove(const std::string& id) {
    if (!validId(id))
        return false;
    const std::string path = spool_layout::path(dir_, spool_layout::kQueue) + "/" + id;
    if (!freePool_->adopt(path, id) && ::unlink(path.c_str()) != 0)
        return false;
    // The message leaves queue/ for good with this sync. free/ is not synced: an entry lost there
    // in a crash costs an inode (e2fsck's lost+found on a file system without a journal), no mail.
    return queueSync_->sync().empty();
}

bool Spool::moveToCorrupt(const std::string& id) {
    if (!validId(id))
        return false;
    std::error_code ec;
    fs::rename(spool_layout::path(dir_, spool_layout::kQueue) + "/" + id,
               spool_layout::path(dir_, spool_layout::kCorrupt) + "/" + id, ec);
    return !ec && queueSync_->sync().empty();
}

}  // namespace demail::gateway
