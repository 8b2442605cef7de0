#include "demail/certpromote/store.h"

#include <acl/libacl.h>
#include <fcntl.h>
#include <grp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <sys/acl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
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

bool syncDir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

// Whether `path` has exactly this content, owner, group, mode bits and ACL.
bool matches(const std::string& path, const std::string& content, const StorePolicy& p) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || st.st_uid != 0 || st.st_gid != p.group)
        return false;
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str() != content)
        return false;
    acl_t want = acl_from_text(aclText(p).c_str());
    acl_t have = acl_get_file(path.c_str(), ACL_TYPE_ACCESS);
    const bool same = want && have && acl_cmp(want, have) == 0;
    if (want)
        acl_free(want);
    if (have)
        acl_free(have);
    return same;
}

std::string writeAtomically(const std::string& path, const std::string& content,
                            const StorePolicy& p) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return "cannot create " + tmp + ": " + std::strerror(errno);
    std::string err;
    acl_t acl = acl_from_text(aclText(p).c_str());
    if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
        err = "cannot write " + tmp + ": " + std::strerror(errno);
    else if (::fchown(fd, 0, p.group) != 0)
        err = "cannot set the owner of " + tmp + ": " + std::strerror(errno);
    else if (!acl || acl_set_fd(fd, acl) != 0)
        err = "cannot set the ACL of " + tmp +
              " (does the filesystem support ACLs?): " + std::strerror(errno);
    else if (::fsync(fd) != 0)
        err = "cannot fsync " + tmp + ": " + std::strerror(errno);
    if (acl)
        acl_free(acl);
    ::close(fd);
    if (err.empty() && ::rename(tmp.c_str(), path.c_str()) != 0)
        err = "cannot rename " + tmp + ": " + std::strerror(errno);
    if (!err.empty())
        ::unlink(tmp.c_str());
    return err;
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
    std::set<std::string> wanted;
    for (const auto& c : certs) {
        wanted.insert(c.fingerprint + ".pem");
        const std::string path = p.dir + "/" + c.fingerprint + ".pem";
        const std::string pem = pemOf(c.der);
        const bool exists = fs::exists(path, ec);
        if (exists && matches(path, pem, p)) {
            r.unchanged.push_back(c.fingerprint);
            continue;
        }
        (exists ? r.updated : r.added).push_back(c.fingerprint);
        if (!dryRun) {
            if (auto e = writeAtomically(path, pem, p); !e.empty()) {
                r.error = e;
                return r;
            }
        }
    }
    std::vector<Certificate> indexed = certs;
    if (fs::exists(p.dir, ec)) {
        for (const auto& e : fs::directory_iterator(p.dir, ec)) {
            const std::string name = e.path().filename().string();
            if (name.size() != 68 || name.substr(64) != ".pem" || wanted.count(name))
                continue;
            if (prune) {
                r.removed.push_back(name.substr(0, 64));
                if (!dryRun)
                    fs::remove(e.path(), ec);
            } else {
                std::ifstream in(e.path(), std::ios::binary);
                Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
                Certificate old;
                std::string err;
                if (parseCertificate(data, old, err))
                    indexed.push_back(old);  // kept: it stays in the index
            }
        }
    }
    const std::string index = indexText(indexed);
    const std::string indexPath = p.dir + "/index.tsv";
    if (!(fs::exists(indexPath, ec) && matches(indexPath, index, p))) {
        r.indexChanged = true;
        if (!dryRun) {
            if (auto e = writeAtomically(indexPath, index, p); !e.empty()) {
                r.error = e;
                return r;
            }
        }
    }
    if (!dryRun && r.changed())
        syncDir(p.dir);
    return r;
}

std::vector<IndexRow> readIndex(const std::string& dir) {
    std::vector<IndexRow> rows;
    std::ifstream in(dir + "/index.tsv");
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
