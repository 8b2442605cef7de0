#include "provider_signer.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <xmlsec/crypto.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>

#include <cstdio>

#include "mime_util.h"

namespace demail::sim::provider {
namespace {

// The TR's field order for the hash (PVD_IO §3.1.21); only present fields go into h=.
constexpr const char* kSignedFields[] = {"From",
                                         "Date",
                                         "Message-ID",
                                         "Subject",
                                         "Reply-To",
                                         "X-de-mail-confirmation-of-dispatch",
                                         "X-de-mail-confirmation-of-receipt",
                                         "X-de-mail-confirmation-of-retrieve",
                                         "X-de-mail-authoritative",
                                         "X-de-mail-private",
                                         "X-de-mail-sender",
                                         "X-de-mail-chosen-recipient",
                                         "X-de-mail-auth-mechanism",
                                         "X-de-mail-auth-level",
                                         "X-de-mail-originator-provider",
                                         "X-de-mail-message-type",
                                         "X-de-mail-version",
                                         "X-de-mail-private-id",
                                         "X-de-mail-message-id",
                                         "X-de-mail-account-holder"};

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

std::string base64(const unsigned char* data, std::size_t n) {
    std::string out(4 * ((n + 2) / 3) + 1, '\0');
    const int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
    out.resize(static_cast<std::size_t>(len));
    return out;
}

// A long base64 value folded into continuation lines (FWS, ignored by the reader).
std::string folded(const std::string& b64, std::size_t width) {
    std::string out;
    for (std::size_t i = 0; i < b64.size(); i += width)
        out += (i ? "\r\n " : "") + b64.substr(i, width);
    return out;
}

// RFC 6376 §3.4.3 "simple" body: trailing empty lines removed, one CRLF at the end.
std::string canonicalBody(const std::string& body) {
    std::string b = body;
    if (b.size() < 2 || b.compare(b.size() - 2, 2, "\r\n") != 0)
        b += "\r\n";
    while (b.size() >= 4 && b.compare(b.size() - 4, 4, "\r\n\r\n") == 0)
        b.resize(b.size() - 2);
    return b;
}

// The integrity header's value up to and including "b=", and the bytes the header hash (and
// the signature) covers: the signed fields as written, then this header without b='s value.
std::string integrityPrefix(const HeaderList& headers, const std::string& body, bool sign,
                            std::string& hashInput) {
    std::string names, canon;
    for (const char* name : kSignedFields) {
        for (const auto& [n, v] : headers) {
            if (lower(n) == lower(name)) {
                canon += serializeField(n, v);
                names += (names.empty() ? "" : ":") + std::string(name);
                break;  // the first occurrence counts (PVD_IO §3.1.21)
            }
        }
    }
    std::string value =
        std::string("v=1; a=") + (sign ? "sha256/rsa" : "sha256") + "; c=simple/simple;" +
        (sign ? "\r\n q=x-header/x-de-mail-signature-certificate;" : "") + "\r\n h=" + names +
        ";\r\n bh=" + sha256Base64(canonicalBody(body)) + ";\r\n b=";
    hashInput = canon + "X-de-mail-integrity: " + value;
    return value;
}

void initXmlSec() {
    static std::once_flag once;
    std::call_once(once, [] {
        xmlInitParser();
        if (xmlSecInit() < 0 || xmlSecCryptoAppInit(nullptr) < 0 || xmlSecCryptoInit() < 0)
            std::fputs("demail-sim provider: libxmlsec1 did not initialise\n", stderr);
    });
}

bool writeCrl(const std::string& path, X509* ca, EVP_PKEY* caKey, X509* revoked) {
    X509_CRL* crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    ASN1_TIME* last = X509_gmtime_adj(nullptr, -60);
    ASN1_TIME* next = X509_gmtime_adj(nullptr, 60L * 60 * 24 * 30);
    X509_CRL_set1_lastUpdate(crl, last);
    X509_CRL_set1_nextUpdate(crl, next);
    if (revoked) {
        X509_REVOKED* r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked));
        X509_REVOKED_set_revocationDate(r, last);
        X509_CRL_add0_revoked(crl, r);
        X509_CRL_sort(crl);
    }
    bool ok = X509_CRL_sign(crl, caKey, EVP_sha256()) > 0;
    const std::string tmp = path + ".tmp";
    if (FILE* f = ok ? std::fopen(tmp.c_str(), "w") : nullptr) {
        ok = PEM_write_X509_CRL(f, crl) == 1;
        ok = std::fclose(f) == 0 && ok && std::rename(tmp.c_str(), path.c_str()) == 0;
    } else {
        ok = false;
    }
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    return ok;
}

CertPtr readCert(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f)
        return nullptr;
    CertPtr c(PEM_read_X509(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    return c;
}

KeyPtr readKey(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f)
        return nullptr;
    KeyPtr k(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    return k;
}

}  // namespace

std::unique_ptr<ProviderSigner> ProviderSigner::open(const std::string& stateDir,
                                                     std::string& error) {
    const std::string dir = stateDir + "/signing";
    ::mkdir(dir.c_str(), 0700);
    std::unique_ptr<ProviderSigner> s(new ProviderSigner());
    s->caPath_ = dir + "/ca.pem";
    s->crlPath_ = dir + "/crl.pem";
    s->signerCertPath_ = dir + "/signer.pem";
    s->signerKeyPath_ = dir + "/signer.key";
    const std::string caKeyPath = dir + "/ca.key";
    if (exists(s->caPath_) && exists(caKeyPath) && exists(s->signerCertPath_) &&
        exists(s->signerKeyPath_)) {
        s->ca_ = readCert(s->caPath_);
        s->caKey_ = readKey(caKeyPath);
        s->signer_ = readCert(s->signerCertPath_);
        s->signerKey_ = readKey(s->signerKeyPath_);
    } else {
        s->caKey_ = newRsaKey();
        s->signerKey_ = newRsaKey();
        if (s->caKey_)
            s->ca_ = makeCert(s->caKey_.get(), "demail-sim Provider Signature CA", "demail-sim",
                              nullptr, nullptr, 1, true, nullptr, nullptr);
        if (s->ca_ && s->signerKey_)
            s->signer_ =
                makeCert(s->signerKey_.get(), "Bestaetigungsdienst sim-provider", "demail-sim",
                         s->ca_.get(), s->caKey_.get(), 2, false, nullptr, nullptr);
        if (!s->signer_ || !writeCert(s->caPath_, s->ca_.get()) ||
            !writeKey(caKeyPath, s->caKey_.get()) ||
            !writeCert(s->signerCertPath_, s->signer_.get()) ||
            !writeKey(s->signerKeyPath_, s->signerKey_.get()) ||
            !writeCrl(s->crlPath_, s->ca_.get(), s->caKey_.get(), nullptr)) {
            error = "cannot create the signing PKI in " + dir;
            return nullptr;
        }
    }
    if (!s->ca_ || !s->caKey_ || !s->signer_ || !s->signerKey_) {
        error = "cannot read the signing PKI in " + dir;
        return nullptr;
    }
    unsigned char* der = nullptr;
    const int len = i2d_X509(s->signer_.get(), &der);
    if (len <= 0) {
        error = "cannot encode the signer certificate";
        return nullptr;
    }
    s->signerDerBase64_ = base64(der, static_cast<std::size_t>(len));
    OPENSSL_free(der);
    initXmlSec();
    return s;
}

void ProviderSigner::addIntegrity(HeaderList& headers, const std::string& body, bool sign) const {
    if (!sign) {
        addHashOnlyIntegrity(headers, body);
        return;
    }
    std::string input;
    const std::string prefix = integrityPrefix(headers, body, true, input);
    std::string sig(static_cast<std::size_t>(EVP_PKEY_get_size(signerKey_.get())), '\0');
    std::size_t sigLen = sig.size();
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok =
        EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, signerKey_.get()) == 1 &&
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &sigLen,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {  // a provider that cannot sign still states the hash
        addHashOnlyIntegrity(headers, body);
        return;
    }
    headers.emplace_back(
        "X-de-mail-integrity",
        prefix + folded(base64(reinterpret_cast<unsigned char*>(sig.data()), sigLen), 64));
    headers.emplace_back("X-de-mail-signature-certificate", folded(signerDerBase64_, 76));
}

void addHashOnlyIntegrity(HeaderList& headers, const std::string& body) {
    std::string input;
    const std::string prefix = integrityPrefix(headers, body, false, input);
    headers.emplace_back("X-de-mail-integrity", prefix + sha256Base64(input));
}

std::string ProviderSigner::signXml(const std::string& xml) const {
    std::lock_guard lock(xmlMutex_);
    xmlDocPtr doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "confirmation.xml",
                                  nullptr, XML_PARSE_NONET);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : nullptr;
    std::string out;
    xmlSecDSigCtxPtr ctx = nullptr;
    if (root) {
        xmlNodePtr sig = xmlSecTmplSignatureCreate(doc, xmlSecTransformExclC14NId,
                                                   xmlSecTransformRsaSha256Id, nullptr);
        xmlAddChild(root, sig);
        xmlNodePtr ref = xmlSecTmplSignatureAddReference(sig, xmlSecTransformSha256Id, nullptr,
                                                         BAD_CAST "", nullptr);
        xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId);
        xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId);
        xmlSecTmplX509DataAddCertificate(
            xmlSecTmplKeyInfoAddX509Data(xmlSecTmplSignatureEnsureKeyInfo(sig, nullptr)));
        ctx = xmlSecDSigCtxCreate(nullptr);
        ctx->signKey = xmlSecCryptoAppKeyLoad(signerKeyPath_.c_str(), xmlSecKeyDataFormatPem,
                                              nullptr, nullptr, nullptr);
        if (ctx->signKey &&
            xmlSecCryptoAppKeyCertLoad(ctx->signKey, signerCertPath_.c_str(),
                                       xmlSecKeyDataFormatPem) == 0 &&
            xmlSecDSigCtxSign(ctx, sig) == 0) {
            xmlChar* dumped = nullptr;
            int len = 0;
            xmlDocDumpMemoryEnc(doc, &dumped, &len, "UTF-8");
            for (int i = 0; i < len; ++i) {  // mail wants CRLF; the XML reader folds it back
                if (dumped[i] == '\n')
                    out += "\r\n";
                else if (dumped[i] != '\r')
                    out += static_cast<char>(dumped[i]);
            }
            xmlFree(dumped);
        }
    }
    if (ctx)
        xmlSecDSigCtxDestroy(ctx);
    if (doc)
        xmlFreeDoc(doc);
    return out;
}

bool ProviderSigner::setRevoked(bool revoked, std::string& error) {
    if (writeCrl(crlPath_, ca_.get(), caKey_.get(), revoked ? signer_.get() : nullptr))
        return true;
    error = "cannot write " + crlPath_;
    return false;
}

}  // namespace demail::sim::provider
