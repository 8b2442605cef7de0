#include "card_keys.h"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace demail::sim {
namespace {

struct FileCloser {
    void operator()(FILE* f) const {
        if (f)
            std::fclose(f);
    }
};
using File = std::unique_ptr<FILE, FileCloser>;

EVP_PKEY* readKey(const std::string& path) {
    File f(std::fopen(path.c_str(), "r"));
    return f ? PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr) : nullptr;
}

X509* readCert(const std::string& path) {
    File f(std::fopen(path.c_str(), "r"));
    return f ? PEM_read_X509(f.get(), nullptr, nullptr, nullptr) : nullptr;
}

bool writeKey(const std::string& path, EVP_PKEY* key) {
    const std::string tmp = path + ".tmp";
    {
        File f(std::fopen(tmp.c_str(), "w"));
        if (!f || chmod(tmp.c_str(), 0600) != 0 ||
            !PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr))
            return false;
        if (std::fflush(f.get()) != 0 || fsync(fileno(f.get())) != 0)
            return false;
    }
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

bool writeCert(const std::string& path, X509* cert) {
    const std::string tmp = path + ".tmp";
    {
        File f(std::fopen(tmp.c_str(), "w"));
        if (!f || !PEM_write_X509(f.get(), cert))
            return false;
        if (std::fflush(f.get()) != 0 || fsync(fileno(f.get())) != 0)
            return false;
    }
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

bool addExtension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext)
        return false;
    const bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

// A certificate for `key`, signed by issuerKey (self-signed when issuer is null).
X509* makeCertificate(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuerKey,
                      long serial, const std::vector<std::pair<int, const char*>>& extensions) {
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 2L * 365 * 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("DE"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("demail-sim"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    for (const auto& [nid, value] : extensions) {
        if (!addExtension(cert, issuer ? issuer : cert, nid, value)) {
            X509_free(cert);
            return nullptr;
        }
    }
    if (X509_sign(cert, issuerKey ? issuerKey : key, EVP_sha256()) == 0) {
        X509_free(cert);
        return nullptr;
    }
    return cert;
}

Bytes toDer(X509* cert) {
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert, &der);
    if (len <= 0)
        return {};
    Bytes out(der, der + len);
    OPENSSL_free(der);
    return out;
}

}  // namespace

CardKeys::~CardKeys() {
    for (auto& [ref, key] : keys_)
        EVP_PKEY_free(key);
}

std::unique_ptr<CardKeys> CardKeys::loadOrCreate(const std::string& dir, const std::string& subject,
                                                 std::string& error) {
    std::filesystem::create_directories(dir);
    std::unique_ptr<CardKeys> keys(new CardKeys);
    const std::string caKeyPath = dir + "/ca.key";
    const std::string caCertPath = dir + "/ca.pem";

    EVP_PKEY* caKey = readKey(caKeyPath);
    X509* caCert = readCert(caCertPath);
    if (!caKey || !caCert) {
        EVP_PKEY_free(caKey);
        X509_free(caCert);
        caKey = EVP_RSA_gen(2048);
        caCert = caKey ? makeCertificate(caKey, "demail-sim card test CA", nullptr, nullptr, 1,
                                         {{NID_basic_constraints, "critical,CA:TRUE"},
                                          {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                          {NID_subject_key_identifier, "hash"}})
                       : nullptr;
        if (!caCert || !writeKey(caKeyPath, caKey) || !writeCert(caCertPath, caCert)) {
            error = "cannot create the test CA in " + dir;
            EVP_PKEY_free(caKey);
            X509_free(caCert);
            return nullptr;
        }
    }

    long serial = 2;
    const std::string san = "email:" + subject;
    for (const auto& slot : kKeySlots) {
        const std::string keyPath = dir + "/" + slot.name + ".key";
        const std::string certPath = dir + "/" + slot.name + ".pem";
        EVP_PKEY* key = readKey(keyPath);
        X509* cert = readCert(certPath);
        if (!key || !cert) {
            EVP_PKEY_free(key);
            X509_free(cert);
            key = EVP_RSA_gen(2048);
            std::vector<std::pair<int, const char*>> ext = {
                {NID_basic_constraints, "critical,CA:FALSE"},
                {NID_authority_key_identifier, "keyid"},
                {NID_subject_alt_name, san.c_str()}};
            if (slot.keyRef == 0x80)
                ext.push_back({NID_key_usage, "critical,nonRepudiation"});
            else if (slot.keyRef == 0x81)
                ext.push_back({NID_key_usage, "critical,keyEncipherment,dataEncipherment"});
            else {
                ext.push_back({NID_key_usage, "critical,digitalSignature,keyEncipherment"});
                ext.push_back({NID_ext_key_usage, "clientAuth,emailProtection"});
            }
            cert = key ? makeCertificate(key, subject, caCert, caKey, serial, ext) : nullptr;
            if (!cert || !writeKey(keyPath, key) || !writeCert(certPath, cert)) {
                error = "cannot create the " + std::string(slot.name) + " key in " + dir;
                EVP_PKEY_free(key);
                X509_free(cert);
                EVP_PKEY_free(caKey);
                X509_free(caCert);
                return nullptr;
            }
        }
        ++serial;
        keys->keys_[slot.keyRef] = key;
        keys->certs_[slot.certFid] = toDer(cert);
        X509_free(cert);
    }
    EVP_PKEY_free(caKey);
    X509_free(caCert);
    return keys;
}

bool CardKeys::hasKey(std::uint8_t keyRef) const {
    return keys_.count(keyRef) > 0;
}

Bytes CardKeys::certificateDer(std::uint16_t fid) const {
    auto it = certs_.find(fid);
    return it == certs_.end() ? Bytes{} : it->second;
}

std::size_t CardKeys::modulusBytes(std::uint8_t keyRef) const {
    auto it = keys_.find(keyRef);
    return it == keys_.end() ? 0 : static_cast<std::size_t>(EVP_PKEY_get_size(it->second));
}

namespace {
std::optional<Bytes> privateOp(EVP_PKEY* key, const Bytes& in, int padding, bool sign) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
    if (!ctx)
        return std::nullopt;
    std::optional<Bytes> result;
    const bool init = sign ? EVP_PKEY_sign_init(ctx) == 1 : EVP_PKEY_decrypt_init(ctx) == 1;
    if (init && EVP_PKEY_CTX_set_rsa_padding(ctx, padding) == 1) {
        Bytes out(static_cast<std::size_t>(EVP_PKEY_get_size(key)));
        std::size_t outLen = out.size();
        const int rc = sign ? EVP_PKEY_sign(ctx, out.data(), &outLen, in.data(), in.size())
                            : EVP_PKEY_decrypt(ctx, out.data(), &outLen, in.data(), in.size());
        if (rc == 1) {
            // Raw results are left-padded to the modulus length, as a card returns them.
            Bytes padded(out.size() - outLen, 0);
            padded.insert(padded.end(), out.begin(), out.begin() + static_cast<long>(outLen));
            result = std::move(padded);
        }
    }
    EVP_PKEY_CTX_free(ctx);
    return result;
}
}  // namespace

std::optional<Bytes> CardKeys::rawPrivate(std::uint8_t keyRef, const Bytes& block) const {
    auto it = keys_.find(keyRef);
    if (it == keys_.end() || block.size() != modulusBytes(keyRef))
        return std::nullopt;
    return privateOp(it->second, block, RSA_NO_PADDING, false);
}

std::optional<Bytes> CardKeys::signPkcs1(std::uint8_t keyRef, const Bytes& digestInfo) const {
    auto it = keys_.find(keyRef);
    if (it == keys_.end())
        return std::nullopt;
    return privateOp(it->second, digestInfo, RSA_PKCS1_PADDING, true);
}

}  // namespace demail::sim
