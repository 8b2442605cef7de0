#include "demail/certpromote/store.h"

#include <acl/libacl.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <sys/acl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

namespace demail::certpromote {
namespace fs = std::filesystem;
namespace {

std::string timeText(const ASN1_TIME* t) {
    std::tm tm{};
    ASN1_TIME_to_tm(t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string nameText(const X509_NAME* n) {
    BIO* b = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253);
    char* p = nullptr;
    const long len = BIO_get_mem_data(b, &p);
    std::string s(p, static_cast<std::size_t>(len));
    BIO_free(b);
    return s;
}

std::string usageText(X509* x) {
    std::vector<std::string> u;
    const uint32_t ku = X509_get_key_usage(x);
    if (ku != UINT32_MAX) {
        if (ku & KU_DIGITAL_SIGNATURE)
            u.push_back("digitalSignature");
        if (ku & KU_NON_REPUDIATION)
            u.push_back("nonRepudiation");
        if (ku & KU_KEY_ENCIPHERMENT)
            u.push_back("keyEncipherment");
        if (ku & KU_DATA_ENCIPHERMENT)
            u.push_back("dataEncipherment");
    }
    const uint32_t xku = X509_get_extended_key_usage(x);
    if (xku != UINT32_MAX) {
        if (xku & XKU_SSL_CLIENT)
            u.push_back("clientAuth");
        if (xku & XKU_SMIME)
            u.push_back("emailProtection");
    }
    std::string out;
    for (const auto& s : u)
        out += (out.empty() ? "" : ",") + s;
    return out.empty() ? "-" : out;
}

std::string pemOf(const Bytes& der) {
    const unsigned char* p = der.data();
    X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char* data = nullptr;
    const long len = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(len));
    BIO_free(b);
    X509_free(x);
    return s;
}

std::string aclText(const StorePolicy& p) {
    std::string t = "u::rw-,g::r--,o::---";
    for (const auto& [name, uid] : p.readUsers)
        t += ",u:" + std::to_string(uid) + ":r--";
    for (const auto& [name, gid] : p.readGroups)
        t += ",g:" + std::to_string(gid) + ":r--";
    if (!p.readUsers.empty() || !p.readGroups.empty())
        t += ",m::r--";
    return t;
}

// The store is only as safe as its directory: whoever can write there can swap certificates
// that other services trust, or plant a symlink for root to write through. Open it without
// following a symlink and refuse it unless only root can change it or any directory above it
// (a sticky directory such as /tmp is fine above it: others cannot rename what is ours there).
std::string openStore(const std::string& dir, int& dfd) {
    dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return "cannot open the store " + dir +
               (errno == ELOOP || errno == ENOTDIR ? std::string(": not a directory (a symlink?)")
                                                   : ": " + std::string(std::strerror(errno)));
    auto refuse = [&](const std::string& why) {
        ::close(dfd);
        dfd = -1;
        return "refusing the store " + dir + ": " + why;
    };
    struct stat st {};
    if (::fstat(dfd, &st) != 0)
        return refuse(std::string("cannot stat it: ") + std::strerror(errno));
    if (st.st_uid != 0)
        return refuse("it is owned by uid " + std::to_string(st.st_uid) +
                      ", not root; only root may be able to change it (chown root: " + dir + ")");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return refuse(
            "it is writable by its group or others; only root may be able to change it "
            "(chmod go-w " +
            dir + ")");
    char* real = ::realpath(dir.c_str(), nullptr);
    if (!real)
        return refuse(std::string("cannot resolve its path: ") + std::strerror(errno));
    std::string path = real;
    std::free(real);
    struct stat same {};
    if (::lstat(path.c_str(), &same) != 0 || same.st_dev != st.st_dev || same.st_ino != st.st_ino)
        return refuse("it changed while it was checked");
    while (path.size() > 1) {
        path = path.substr(0, std::max<std::size_t>(path.rfind('/'), 1));
        struct stat up {};
        if (::lstat(path.c_str(), &up) != 0)
            return refuse("cannot stat " + path + ": " + std::strerror(errno));
        if (up.st_uid != 0)
            return refuse(path + " above it is owned by uid " + std::to_string(up.st_uid) +
                          ", not root");
        if ((up.st_mode & (S_IWGRP | S_IWOTH)) && !(up.st_mode & S_ISVTX))
            return refuse(path + " above it is writable by its group or others");
    }
    return {};
}

// ".<name>.<16 random hex digits>.tmp": unpredictable, so nothing can be planted in its place.
std::string temporaryName(const std::string& name) {
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        std::abort();  // no CSPRNG: nothing sane to fall back to
    static const char* hex = "0123456789abcdef";
    std::string out = "." + name + ".";
    for (unsigned char b : rnd) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out + ".tmp";
}

// The content of an open regular file (of sane size); nullopt for anything else.
std::optional<std::string> readRegular(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 16 * 1024 * 1024)
        return std::nullopt;
    std::string data;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return std::nullopt;
        if (n == 0)
            return data;
        data.append(buf, static_cast<std::size_t>(n));
    }
}

int openEntry(int dfd, const std::string& name) {
    return ::openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

// A regular file in the store, read without following a symlink; nullopt otherwise.
std::optional<std::string> readEntry(int dfd, const std::string& name) {
    const int fd = openEntry(dfd, name);
    if (fd < 0)
        return std::nullopt;
    auto out = readRegular(fd);
    ::close(fd);
    return out;
}

// Whether the entry exists (a symlink counts: it is replaced, never followed).
bool entryExists(int dfd, const std::string& name) {
    struct stat st {};
    return ::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

// Whether entry `name` is a regular file with exactly this content, owner, group, mode bits and
// ACL. A symlink never matches (O_NOFOLLOW), so it is replaced.
bool matches(int dfd, const std::string& name, const std::string& content, const StorePolicy& p) {
    const int fd = openEntry(dfd, name);
    if (fd < 0)
        return false;
    struct stat st {};
    bool same = ::fstat(fd, &st) == 0 && st.st_uid == 0 && st.st_gid == p.group &&
                readRegular(fd) == content;
    if (same) {
        acl_t want = acl_from_text(aclText(p).c_str());
        acl_t have = acl_get_fd(fd);
        same = want && have && acl_cmp(want, have) == 0;
        if (want)
            acl_free(want);
        if (have)
            acl_free(have);
    }
    ::close(fd);
    return same;
}

// Writes entry `name` of the store: a new file under an unpredictable name (O_EXCL|O_NOFOLLOW),
// owner, group and ACL set on that descriptor, fsync, then rename within the directory.
std::string writeAtomically(int dfd, const std::string& dir, const std::string& name,
                            const std::string& content, const StorePolicy& p) {
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 8; ++attempt) {
        tmp = temporaryName(name);
        fd = ::openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    const std::string tmpPath = dir + "/" + tmp;
    if (fd < 0)
        return "cannot create " + tmpPath + ": " + std::strerror(errno);
    std::string err;
    acl_t acl = acl_from_text(aclText(p).c_str());
    if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
        err = "cannot write " + tmpPath + ": " + std::strerror(errno);
    else if (::fchown(fd, 0, p.group) != 0)
        err = "cannot set the owner of " + tmpPath + ": " + std::strerror(errno);
    else if (!acl || acl_set_fd(fd, acl) != 0)
        err = "cannot set the ACL of " + tmpPath +
              " (does the filesystem support ACLs?): " + std::strerror(errno);
    else if (::fsync(fd) != 0)
        err = "cannot fsync " + tmpPath + ": " + std::strerror(errno);
    if (acl)
        acl_free(acl);
    ::close(fd);
    if (err.empty() && ::renameat(dfd, tmp.c_str(), dfd, name.c_str()) != 0)
        err = "cannot rename " + tmpPath + " to " + name + ": " + std::strerror(errno);
    if (!err.empty())
        ::unlinkat(dfd, tmp.c_str(), 0);
    return err;
}

// The names in the store directory (without . and ..).
std::vector<std::string> entries(int dfd) {
    std::vector<std::string> names;
    const int copy = ::dup(dfd);
    if (copy < 0)
        return names;
    DIR* d = ::fdopendir(copy);
    if (!d) {
        ::close(copy);
        return names;
    }
    ::rewinddir(d);
    while (const dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..")
            names.push_back(n);
    }
    ::closedir(d);
    return names;
}

std::string indexText(const std::vector<Certificate>& certs) {
    std::string t =
        "# fingerprint\tsubject\tissuer\tserial\tnot_before\tnot_after\tusage\tkey_uri\n";
    for (const auto& c : certs)
        t += c.fingerprint + "\t" + c.subject + "\t" + c.issuer + "\t" + c.serial + "\t" +
             c.notBefore + "\t" + c.notAfter + "\t" + c.usage + "\t" +
             (c.keyUri.empty() ? "-" : c.keyUri) + "\n";
    return t;
}

}  // namespace

bool parseCertificate(const Bytes& data, Certificate& out, std::string& error) {
    X509* x = nullptr;
    const unsigned char* p = data.data();
    x = d2i_X509(nullptr, &p, static_cast<long>(data.size()));
    if (!x) {
        BIO* b = BIO_new_mem_buf(data.data(), static_cast<int>(data.size()));
        x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
        BIO_free(b);
    }
    if (!x) {
        error = "not an X.509 certificate (neither DER nor PEM)";
        return false;
    }
    unsigned char* der = nullptr;
    const int len = i2d_X509(x, &der);
    out.der.assign(der, der + len);
    OPENSSL_free(der);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdLen = 0;
    X509_digest(x, EVP_sha256(), md, &mdLen);
    static const char* hex = "0123456789abcdef";
    out.fingerprint.clear();
    for (unsigned i = 0; i < mdLen; ++i) {
        out.fingerprint += hex[md[i] >> 4];
        out.fingerprint += hex[md[i] & 15];
    }
    out.subject = nameText(X509_get_subject_name(x));
    out.issuer = nameText(X509_get_issuer_name(x));
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
    char* s = BN_bn2hex(bn);
    out.serial = s;
    OPENSSL_free(s);
    BN_free(bn);
    out.notBefore = timeText(X509_get0_notBefore(x));
    out.notAfter = timeText(X509_get0_notAfter(x));
    out.usage = usageText(x);
    out.expired = X509_cmp_current_time(X509_get0_notAfter(x)) < 0;
    X509_free(x);
    return true;
}

std::string verifyChain(const Certificate& cert, const std::string& caFile) {
    X509_STORE* store = X509_STORE_new();
    if (X509_STORE_load_file(store, caFile.c_str()) != 1) {
        X509_STORE_free(store);
        return "cannot read CA bundle " + caFile;
    }
    const unsigned char* p = cert.der.data();
    X509* x = d2i_X509(nullptr, &p, static_cast<long>(cert.der.size()));
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, x, nullptr);
    std::string err;
    if (X509_verify_cert(ctx) != 1)
        err = std::string("does not chain to ") + caFile + ": " +
              X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    X509_STORE_CTX_free(ctx);
    X509_free(x);
    X509_STORE_free(store);
    return err;
}

bool makePolicy(const std::string& dir, const std::string& group,
                const std::vector<std::string>& users, const std::vector<std::string>& groups,
                StorePolicy& out, std::string& error) {
    out.dir = dir;
    const struct group* g = getgrnam(group.c_str());
    if (!g) {
        error = "[certpromote] group: no group '" + group + "' on this system";
        return false;
    }
    out.group = g->gr_gid;
    for (const auto& u : users) {
        const passwd* pw = getpwnam(u.c_str());
        if (!pw) {
            error = "[certpromote] read_users: no user '" + u + "'";
            return false;
        }
        out.readUsers.emplace_back(u, pw->pw_uid);
    }
    for (const auto& name : groups) {
        const struct group* gr = getgrnam(name.c_str());
        if (!gr) {
            error = "[certpromote] read_groups: no group '" + name + "'";
            return false;
        }
        out.readGroups.emplace_back(name, gr->gr_gid);
    }
    return true;
}

PromoteReport promote(const StorePolicy& p, const std::vector<Certificate>& certs, bool dryRun,
                      bool prune) {
    PromoteReport r;
    std::error_code ec;
    if (!dryRun) {
        fs::create_directories(p.dir, ec);
        if (ec) {
            r.error = "cannot create " + p.dir + ": " + ec.message();
            return r;
        }
    }
    int dfd = -1;
    if (!(dryRun && !fs::exists(p.dir, ec))) {
        if (r.error = openStore(p.dir, dfd); !r.error.empty())
            return r;
    }
    // From here on every access is relative to the checked directory descriptor.
    struct Closer {
        int fd;
        ~Closer() {
            if (fd >= 0)
                ::close(fd);
        }
    } closer{dfd};
    const auto names = dfd >= 0 ? entries(dfd) : std::vector<std::string>{};
    if (!dryRun) {
        // Temporary files of an interrupted run (and "<name>.tmp" of older versions, which a
        // service user could plant while it owned the store): removed, never followed.
        for (const auto& n : names) {
            struct stat st {};
            if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp" &&
                ::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
                ::unlinkat(dfd, n.c_str(), 0);
        }
    }
    std::set<std::string> wanted;
    for (const auto& c : certs) {
        const std::string name = c.fingerprint + ".pem";
        wanted.insert(name);
        const std::string pem = pemOf(c.der);
        const bool exists = dfd >= 0 && entryExists(dfd, name);
        if (exists && matches(dfd, name, pem, p)) {
            r.unchanged.push_back(c.fingerprint);
            continue;
        }
        (exists ? r.updated : r.added).push_back(c.fingerprint);
        if (!dryRun) {
            if (auto e = writeAtomically(dfd, p.dir, name, pem, p); !e.empty()) {
                r.error = e;
                return r;
            }
        }
    }
    std::vector<Certificate> indexed = certs;
    for (const auto& name : names) {
        if (name.size() != 68 || name.substr(64) != ".pem" || wanted.count(name))
            continue;
        if (prune) {
            r.removed.push_back(name.substr(0, 64));
            if (!dryRun)
                ::unlinkat(dfd, name.c_str(), 0);
        } else if (const auto data = readEntry(dfd, name)) {
            Certificate old;
            std::string err;
            if (parseCertificate(Bytes(data->begin(), data->end()), old, err))
                indexed.push_back(old);  // kept: it stays in the index
        }
    }
    const std::string index = indexText(indexed);
    if (!(dfd >= 0 && entryExists(dfd, "index.tsv") && matches(dfd, "index.tsv", index, p))) {
        r.indexChanged = true;
        if (!dryRun) {
            if (auto e = writeAtomically(dfd, p.dir, "index.tsv", index, p); !e.empty()) {
                r.error = e;
                return r;
            }
        }
    }
    if (!dryRun && r.changed() && ::fsync(dfd) != 0)
        r.error = "cannot fsync " + p.dir + ": " + std::strerror(errno);
    return r;
}

std::vector<IndexRow> readIndex(const std::string& dir) {
    std::vector<IndexRow> rows;
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return rows;
    const auto text = readEntry(dfd, "index.tsv");
    ::close(dfd);
    std::istringstream in(text.value_or(""));
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        std::istringstream f(line);
        IndexRow r;
        std::getline(f, r.fingerprint, '\t');
        std::getline(f, r.subject, '\t');
        std::getline(f, r.issuer, '\t');
        std::getline(f, r.serial, '\t');
        std::getline(f, r.notBefore, '\t');
        std::getline(f, r.notAfter, '\t');
        std::getline(f, r.usage, '\t');
        std::getline(f, r.keyUri, '\t');
        rows.push_back(r);
    }
    return rows;
}

}  // namespace demail::certpromote
