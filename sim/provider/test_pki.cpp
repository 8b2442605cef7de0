#include "test_pki.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>

namespace demail::sim::provider {
namespace {

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

void addName(X509_NAME* name, const char* field, const std::string& value) {
    X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
}

void addExt(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext) {
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
}

}  // namespace

KeyPtr newRsaKey() {
    return KeyPtr(EVP_RSA_gen(2048));
}

CertPtr makeCert(EVP_PKEY* key, const std::string& cn, const std::string& org, X509* issuer,
                 EVP_PKEY* issuerKey, long serial, bool ca, const char* san, const char* eku) {
    CertPtr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * 825);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    addName(name, "O", org);
    addName(name, "CN", cn);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
    X509* iss = issuer ? issuer : cert.get();
    addExt(cert.get(), iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    addExt(cert.get(), iss, NID_key_usage,
           ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
    addExt(cert.get(), iss, NID_subject_key_identifier, "hash");
    if (issuer)
        addExt(cert.get(), iss, NID_authority_key_identifier, "keyid");
    if (san)
        addExt(cert.get(), iss, NID_subject_alt_name, san);
    if (eku)
        addExt(cert.get(), iss, NID_ext_key_usage, eku);
    if (!X509_sign(cert.get(), issuerKey ? issuerKey : key, EVP_sha256()))
        return nullptr;
    return cert;
}

bool writeCert(const std::string& path, X509* cert) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f)
        return false;
    bool ok = PEM_write_X509(f, cert) == 1;
    return std::fclose(f) == 0 && ok;
}

bool writeKey(const std::string& path, EVP_PKEY* key) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f)
        return false;
    ::chmod(path.c_str(), 0600);
    bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    return std::fclose(f) == 0 && ok;
}

std::optional<std::string> ensureTestPki(const std::string& dir, TestPkiPaths& p) {
    p.caCert = dir + "/ca.pem";
    p.caKey = dir + "/ca.key";
    p.serverCert = dir + "/server.pem";
    p.serverKey = dir + "/server.key";
    p.clientCert = dir + "/client.pem";
    p.clientKey = dir + "/client.key";
    if (exists(p.caCert) && exists(p.serverCert) && exists(p.serverKey) && exists(p.clientCert) &&
        exists(p.clientKey))
        return std::nullopt;
    KeyPtr caKey = newRsaKey(), serverKey = newRsaKey(), clientKey = newRsaKey();
    if (!caKey || !serverKey || !clientKey)
        return "cannot generate RSA keys";
    CertPtr ca = makeCert(caKey.get(), "demail-sim Test CA", "demail-sim", nullptr, nullptr, 1,
                          true, nullptr, nullptr);
    if (!ca)
        return "cannot sign the test CA";
    std::string san = std::string("DNS:") + kTestServerName + ",DNS:localhost,IP:127.0.0.1";
    CertPtr server = makeCert(serverKey.get(), kTestServerName, "demail-sim", ca.get(), caKey.get(),
                              2, false, san.c_str(), "serverAuth");
    CertPtr client = makeCert(clientKey.get(), "demail-gateway-test", "Simulated Firma", ca.get(),
                              caKey.get(), 3, false, nullptr, "clientAuth");
    if (!server || !client)
        return "cannot sign the test certificates";
    if (!writeCert(p.caCert, ca.get()) || !writeKey(p.caKey, caKey.get()) ||
        !writeCert(p.serverCert, server.get()) || !writeKey(p.serverKey, serverKey.get()) ||
        !writeCert(p.clientCert, client.get()) || !writeKey(p.clientKey, clientKey.get()))
        return "cannot write the test PKI into " + dir;
    return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> certificateIdentity(const std::string& pem) {
    FILE* f = std::fopen(pem.c_str(), "r");
    if (!f)
        return std::nullopt;
    CertPtr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    if (!cert)
        return std::nullopt;
    BIO* bio = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(bio, X509_get_subject_name(cert.get()), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string subject(data, static_cast<size_t>(len));
    BIO_free(bio);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdLen = 0;
    X509_digest(cert.get(), EVP_sha256(), md, &mdLen);
    static const char* hex = "0123456789abcdef";
    std::string fp;
    for (unsigned i = 0; i < mdLen; ++i) {
        fp += hex[md[i] >> 4];
        fp += hex[md[i] & 15];
    }
    return std::make_pair(subject, fp);
}

}  // namespace demail::sim::provider
