#include "demail/smartcard/pin_rejection.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace demail::smartcard {
namespace {

constexpr const char* kMagic = "demail-pin-rejection v1";
constexpr std::size_t kKeySize = 32;

std::string sysError(const std::string& what, const std::string& path) {
    return what + " " + path + ": " + std::strerror(errno);
}

std::string directoryOf(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string toHex(const unsigned char* p, std::size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        s += digits[p[i] >> 4];
        s += digits[p[i] & 15];
    }
    return s;
}

std::string fromHex(const std::string& hex, bool& ok) {
    std::string out;
    ok = hex.size() % 2 == 0;
    for (std::size_t i = 0; ok && i < hex.size(); i += 2) {
        auto nibble = [&ok](char c) {
            if (c >= '0' && c <= '9')
                return c - '0';
            if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
            ok = false;
            return 0;
        };
        out += static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1]));
    }
    return out;
}

int fsyncDirectory(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    const int rc = ::fsync(fd);
    ::close(fd);
    return rc;
}

// Writes `content` to a new temporary file beside `path` (mode 0600; owned like the directory
// when we are root), fsyncs it and returns its name; empty and `error` set on failure.
std::string writeTemporary(const std::string& path, const std::string& content,
                           std::string& error) {
    const std::string dir = directoryOf(path);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        error = sysError("cannot create", tmp);
        return "";
    }
    bool ok = ::fchmod(fd, 0600) == 0;  // O_CREAT's mode is masked by the umask; be exact
    struct stat d {};
    if (ok && ::geteuid() == 0 && ::stat(dir.c_str(), &d) == 0 && d.st_uid != 0)
        ok = ::fchown(fd, d.st_uid, d.st_gid) == 0;  // the service must read what root wrote
    for (std::size_t done = 0; ok && done < content.size();) {
        const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        done += ok ? static_cast<std::size_t>(n) : 0;
    }
    ok = ok && ::fsync(fd) == 0;
    if (!ok)
        error = sysError("cannot write", tmp);
    ::close(fd);
    if (!ok) {
        ::unlink(tmp.c_str());
        return "";
    }
    return tmp;
}

std::string replaceDurably(const std::string& path, const std::string& content) {
    std::string error;
    const std::string tmp = writeTemporary(path, content, error);
    if (tmp.empty())
        return error;
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        error = sysError("cannot rename to", path);
        ::unlink(tmp.c_str());
        return error;
    }
    if (fsyncDirectory(directoryOf(path)) != 0)
        return sysError("cannot sync the directory of", path);
    return "";
}

bool readAll(int fd, std::string& out) {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        if (n == 0)
            return true;
        out.append(buf, static_cast<std::size_t>(n));
    }
}

// The installation key: created once (never replaced: link() fails if another process was
// first), then opened and locked; the lock serialises changes to the record between processes.
class Key {
  public:
    ~Key() {
        if (fd_ >= 0)
            ::close(fd_);  // also releases the lock
        OPENSSL_cleanse(key_, sizeof key_);
    }
    std::string open(const std::string& path, bool create) {
        if (create && ::access(path.c_str(), F_OK) != 0) {
            unsigned char fresh[kKeySize];
            if (RAND_bytes(fresh, sizeof fresh) != 1)
                return "cannot generate a key for " + path;
            std::string error;
            const std::string tmp = writeTemporary(
                path, std::string(reinterpret_cast<char*>(fresh), sizeof fresh), error);
            OPENSSL_cleanse(fresh, sizeof fresh);
            if (tmp.empty())
                return error;
            const bool linked = ::link(tmp.c_str(), path.c_str()) == 0 || errno == EEXIST;
            const std::string linkError = linked ? "" : sysError("cannot create", path);
            ::unlink(tmp.c_str());
            if (!linked)
                return linkError;
            if (fsyncDirectory(directoryOf(path)) != 0)
                return sysError("cannot sync the directory of", path);
        }
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd_ < 0)
            return sysError("cannot open", path);
        if (::flock(fd_, LOCK_EX) != 0)
            return sysError("cannot lock", path);
        std::string bytes;
        if (!readAll(fd_, bytes) || bytes.size() != kKeySize) {
            Secret::cleanse(bytes);
            return path + " is not a " + std::to_string(kKeySize) + "-byte key";
        }
        std::memcpy(key_, bytes.data(), kKeySize);
        Secret::cleanse(bytes);
        return "";
    }
    std::string mac(const Secret& pin) const {
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        HMAC(EVP_sha256(), key_, static_cast<int>(kKeySize),
             reinterpret_cast<const unsigned char*>(pin.reveal().data()), pin.size(), out, &len);
        return toHex(out, len);
    }

  private:
    int fd_ = -1;
    unsigned char key_[kKeySize] = {};
};

struct Record {
    std::string mac;
    std::vector<PinRejectionStore::Entry> entries;
};

std::string format(const Record& r) {
    std::ostringstream out;
    out << kMagic << "\npin-hmac " << r.mac << "\n";
    for (const auto& e : r.entries)
        out << "card "
            << (e.serial.empty() ? std::string("-")
                                 : toHex(reinterpret_cast<const unsigned char*>(e.serial.data()),
                                         e.serial.size()))
            << " " << e.kind << " " << e.triesLeft << "\n";
    out << "end\n";
    return out.str();
}

bool parse(const std::string& text, Record& r) {
    std::istringstream in(text);
    std::string line;
    if (!std::getline(in, line) || line != kMagic)
        return false;
    bool ended = false;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string word;
        words >> word;
        if (word == "pin-hmac") {
            words >> r.mac;
        } else if (word == "card") {
            PinRejectionStore::Entry e;
            std::string hex;
            if (!(words >> hex >> e.kind >> e.triesLeft))
                return false;
            bool ok = true;
            e.serial = hex == "-" ? "" : fromHex(hex, ok);
            if (!ok)
                return false;
            r.entries.push_back(e);
        } else if (word == "end") {
            ended = true;
            break;
        } else {
            return false;
        }
    }
    return ended && r.mac.size() == 64;
}

}  // namespace

PinRejectionStore::PinRejectionStore(std::string path) : path_(std::move(path)) {}

PinRejectionStore::Check PinRejectionStore::check(const std::string& serial,
                                                  const Secret& pin) const {
    Check c;
    if (::access(path_.c_str(), F_OK) != 0 && errno == ENOENT)
        return c;  // no rejection on record
    Key key;
    if (auto e = key.open(keyPath(), false); !e.empty()) {
        c.error = "the PIN rejection record " + path_ + " cannot be checked (" + e + ")";
        return c;
    }
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return c;  // removed by another process meanwhile
        c.error = sysError("cannot read the PIN rejection record", path_);
        return c;
    }
    std::string text;
    const bool read = readAll(fd, text);
    ::close(fd);
    Record r;
    if (!read || !parse(text, r)) {
        c.error = "the PIN rejection record " + path_ +
                  " is unreadable; check the PIN, then remove the file";
        return c;
    }
    const std::string mac = key.mac(pin);
    if (CRYPTO_memcmp(mac.data(), r.mac.data(), mac.size()) != 0) {
        // The PIN file changed since the rejection: the operator acted, the record is void.
        if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
            c.error = sysError("cannot remove the outdated PIN rejection record", path_);
        else
            fsyncDirectory(directoryOf(path_));
        return c;
    }
    for (const auto& e : r.entries)
        if (e.serial == serial) {
            c.rejected = true;
            c.entry = e;
        }
    return c;
}

std::string PinRejectionStore::record(const Entry& entry, const Secret& pin) const {
    Key key;
    if (auto e = key.open(keyPath(), true); !e.empty())
        return e;
    Record r;
    const std::string mac = key.mac(pin);
    if (const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW); fd >= 0) {
        std::string text;
        Record old;
        if (readAll(fd, text) && parse(text, old) && old.mac == mac)
            r = old;  // the same PIN rejected by another card too: keep both
        ::close(fd);
    }
    r.mac = mac;
    std::erase_if(r.entries, [&](const Entry& e) { return e.serial == entry.serial; });
    r.entries.push_back(entry);
    return replaceDurably(path_, format(r));
}

}  // namespace demail::smartcard
