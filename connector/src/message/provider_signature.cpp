#include "demail/connector/message/provider_signature.h"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <optional>

#include "demail/connector/message/header_block.h"

namespace demail::connector {
namespace {

std::string opensslError() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e)
        return "unknown error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

std::string subjectOf(X509* cert) {
    BIO* bio = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    std::string s(data, static_cast<std::size_t>(len > 0 ? len : 0));
    BIO_free(bio);
    return s;
}

std::optional<std::string> base64Decode(std::string_view text) {
    std::string in;
    for (char c : text)
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            in += c;
    if (in.empty() || in.size() % 4)
        return std::nullopt;
    std::string out(in.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    if (n < 0)
        return std::nullopt;
    std::size_t len = static_cast<std::size_t>(n);
    if (in.size() >= 1 && in[in.size() - 1] == '=')  // EVP_DecodeBlock keeps the padding bytes
        --len;
    if (in.size() >= 2 && in[in.size() - 2] == '=')
        --len;
    out.resize(len);
    return out;
}

std::string base64(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

struct X509Deleter {
    void operator()(X509* c) const { X509_free(c); }
};
using CertPtr = std::unique_ptr<X509, X509Deleter>;

CertPtr certFromDer(const std::string& der) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    return CertPtr(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

SignatureCheck result(SignatureState s, std::string detail, std::string signer = {}) {
    return {s, std::move(detail), std::move(signer)};
}

// --- X-de-mail-integrity (DKIM, simple/simple) ------------------------------------------------

struct RawField {
    std::string name;
    std::string_view raw;  // "Name: value" with its folding, with the final CRLF
};

// The header section as the fields were written. Nothing when a line does not end in CRLF:
// "simple" canonicalisation is of the bytes, and the gateway does not guess at broken ones.
std::optional<std::vector<RawField>> rawFields(std::string_view message, std::size_t& bodyStart) {
    std::vector<RawField> fields;
    std::size_t pos = 0;
    while (true) {
        const std::size_t eol = message.find("\r\n", pos);
        if (eol == std::string_view::npos ||
            message.substr(pos, eol - pos).find('\n') != std::string_view::npos)
            return std::nullopt;
        if (eol == pos) {  // the empty line
            bodyStart = eol + 2;
            return fields;
        }
        const char c = message[pos];
        if (c == ' ' || c == '\t') {  // continuation of the field before
            if (fields.empty())
                return std::nullopt;
            auto& f = fields.back();
            f.raw = std::string_view(f.raw.data(), eol + 2 - (f.raw.data() - message.data()));
        } else {
            const std::size_t colon = message.find(':', pos);
            if (colon == std::string_view::npos || colon > eol)
                return std::nullopt;
            fields.push_back(
                {trim(message.substr(pos, colon - pos)), message.substr(pos, eol + 2 - pos)});
        }
        pos = eol + 2;
    }
}

const RawField* firstField(const std::vector<RawField>& fields, std::string_view name) {
    for (const auto& f : fields)
        if (equalsIgnoreCase(f.name, name))
            return &f;
    return nullptr;
}

std::string unfoldedValue(const RawField& f) {
    std::string v(f.raw.substr(f.raw.find(':') + 1));
    std::string out;
    for (char c : v)
        if (c != '\r' && c != '\n')
            out += c;
    return trim(out);
}

// tag=value list (RFC 6376 §3.2); values with all white space removed.
std::vector<std::pair<std::string, std::string>> tags(const std::string& value) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t pos = 0;
    while (pos <= value.size()) {
        std::size_t end = value.find(';', pos);
        if (end == std::string::npos)
            end = value.size();
        const std::string item = value.substr(pos, end - pos);
        const auto eq = item.find('=');
        if (eq != std::string::npos) {
            std::string v;
            for (char c : item.substr(eq + 1))
                if (c != ' ' && c != '\t')
                    v += c;
            out.emplace_back(trim(item.substr(0, eq)), v);
        }
        pos = end + 1;
    }
    return out;
}

std::optional<std::string> tag(const std::vector<std::pair<std::string, std::string>>& t,
                               std::string_view name) {
    for (const auto& [k, v] : t)
        if (k == name)
            return v;
    return std::nullopt;
}

// The raw field without the final CRLF and with the value of its b= tag removed.
std::optional<std::string> withoutSignatureValue(std::string_view raw) {
    std::string f(raw.substr(0, raw.size() - 2));
    std::size_t pos = f.find(':') + 1;
    while (pos < f.size()) {
        std::size_t start = pos;
        while (start < f.size() &&
               (f[start] == ' ' || f[start] == '\t' || f[start] == '\r' || f[start] == '\n'))
            ++start;
        std::size_t name = start;
        while (name < f.size() && f[name] != '=' && f[name] != ';' && f[name] != ' ' &&
               f[name] != '\t' && f[name] != '\r')
            ++name;
        std::size_t eq = name;
        while (eq < f.size() && (f[eq] == ' ' || f[eq] == '\t' || f[eq] == '\r' || f[eq] == '\n'))
            ++eq;
        std::size_t end = f.find(';', start);
        if (end == std::string::npos)
            end = f.size();
        if (f.compare(start, name - start, "b") == 0 && eq < f.size() && f[eq] == '=') {
            f.erase(eq + 1, end - (eq + 1));
            return f;
        }
        pos = end + 1;
    }
    return std::nullopt;
}

std::string canonicalBody(std::string_view body) {
    std::string b(body);
    if (b.size() < 2 || b.compare(b.size() - 2, 2, "\r\n") != 0)
        b += "\r\n";
    while (b.size() >= 4 && b.compare(b.size() - 4, 4, "\r\n\r\n") == 0)
        b.resize(b.size() - 2);
    return b;
}

const EVP_MD* digestNamed(std::string_view name) {
    if (name == "sha256")
        return EVP_sha256();
    if (name == "sha384")
        return EVP_sha384();
    if (name == "sha512")
        return EVP_sha512();
    return nullptr;
}

std::string digest(const EVP_MD* md, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
    return std::string(reinterpret_cast<char*>(out), len);
}

bool verifySignatureValue(X509* cert, const EVP_MD* md, std::string_view algorithm,
                          std::string_view data, const std::string& sig, std::string& why) {
    EVP_PKEY* key = X509_get0_pubkey(cert);
    if (!key) {
        why = "the signature certificate holds no usable key";
        return false;
    }
    const bool rsa = EVP_PKEY_is_a(key, "RSA") == 1;
    const bool ec = EVP_PKEY_is_a(key, "EC") == 1;
    if ((algorithm == "rsa" || algorithm == "rsassa-pss") != rsa || (algorithm == "ec-dsa") != ec) {
        why =
            "signature algorithm " + std::string(algorithm) + " does not fit the certificate's key";
        return false;
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX* pctx = nullptr;
    bool ok = EVP_DigestVerifyInit(ctx, &pctx, md, nullptr, key) == 1;
    if (ok && algorithm == "rsassa-pss")
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0;
    ok = ok &&
         EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        why = "the signature does not match the signed header fields";
    return ok;
}

SignatureCheck checkIntegrity(std::string_view message, const ProviderTrust* trust) {
    std::size_t bodyStart = 0;
    const auto fields = rawFields(message, bodyStart);
    if (!fields)
        return result(SignatureState::Invalid, "the header section is not CRLF-canonical");
    const RawField* integrity = firstField(*fields, "X-de-mail-integrity");
    if (!integrity)
        return result(SignatureState::Absent, "no X-de-mail-integrity");
    const auto t = tags(unfoldedValue(*integrity));
    const auto a = tag(t, "a"), h = tag(t, "h"), bh = tag(t, "bh"), b = tag(t, "b");
    const auto c = tag(t, "c");
    if (tag(t, "v").value_or("") != "1" || !a || !h || !bh || !b || b->empty())
        return result(SignatureState::Invalid, "X-de-mail-integrity lacks v=1, a=, h=, bh= or b=");
    if (c && *c != "simple/simple")
        return result(SignatureState::Invalid, "canonicalisation " + *c + " (the TR asks simple)");
    const auto slash = a->find('/');
    const std::string hashName = a->substr(0, slash);
    const std::string sigAlgorithm = slash == std::string::npos ? "" : a->substr(slash + 1);
    const EVP_MD* md = digestNamed(hashName);
    if (!md || (slash != std::string::npos && sigAlgorithm != "rsa" && sigAlgorithm != "ec-dsa" &&
                sigAlgorithm != "rsassa-pss"))
        return result(SignatureState::Invalid, "unknown algorithm a=" + *a);
    // l= is ignored (PVD_IO §3.1.21): the whole body counts.
    if (base64(digest(md, canonicalBody(message.substr(bodyStart)))) != *bh)
        return result(SignatureState::Invalid, "the body was changed (body hash differs)");

    std::string input;
    std::size_t from = 0;
    while (from <= h->size()) {
        std::size_t to = h->find(':', from);
        if (to == std::string::npos)
            to = h->size();
        if (const RawField* f = firstField(*fields, trim(h->substr(from, to - from))))
            input += f->raw;
        from = to + 1;
    }
    const auto self = withoutSignatureValue(integrity->raw);
    if (!self)
        return result(SignatureState::Invalid, "X-de-mail-integrity has no b= tag");
    input += *self;

    if (sigAlgorithm.empty()) {  // only hashed
        if (base64(digest(md, input)) != *b)
            return result(SignatureState::Invalid, "the signed header fields were changed");
        return result(SignatureState::HashOnly, "header and body hash match (not signed)");
    }
    const RawField* certField = firstField(*fields, "X-de-mail-signature-certificate");
    if (!certField)
        return result(SignatureState::Invalid, "signed, but no X-de-mail-signature-certificate");
    const auto der = base64Decode(unfoldedValue(*certField));
    CertPtr cert = der ? certFromDer(*der) : nullptr;
    if (!cert)
        return result(SignatureState::Invalid,
                      "X-de-mail-signature-certificate is not a certificate");
    const std::string signer = subjectOf(cert.get());
    const auto sig = base64Decode(*b);
    std::string why;
    if (!sig || !verifySignatureValue(cert.get(), md, sigAlgorithm, input, *sig, why))
        return result(SignatureState::Invalid, sig ? why : "b= is not base64", signer);
    if (!trust)
        return result(SignatureState::Unverified,
                      "signature matches its certificate; no provider trust anchor configured",
                      signer);
    if (auto e = trust->verifyCertificate(cert.get(), {}); !e.empty())
        return result(SignatureState::Invalid, "signer certificate: " + e, signer);
    return result(SignatureState::Valid, "signed by the provider", signer);
}

// --- XML-DSig --------------------------------------------------------------------------------

thread_local std::string xmlSecLastError;

void quietXmlSecErrors(const char* /*file*/, int /*line*/, const char* func,
                       const char* /*errorObject*/, const char* /*errorSubject*/, int reason,
                       const char* msg) {
    xmlSecLastError = std::string(func ? func : "?") + ": " + (msg ? msg : "") + " (reason " +
                      std::to_string(reason) + ")";
}

void quietXmlErrors(void* /*ctx*/, const char* /*msg*/, ...) {}

bool initXmlSec(std::string& error) {
    static std::once_flag once;
    static bool ok = false;
    std::call_once(once, [] {
        xmlInitParser();
        ok = xmlSecInit() >= 0 && xmlSecCryptoAppInit(nullptr) >= 0 && xmlSecCryptoInit() >= 0;
        xmlSecErrorsSetCallback(quietXmlSecErrors);
    });
    if (!ok)
        error = "libxmlsec1 did not initialise";
    return ok;
}

struct XmlDoc {
    xmlDocPtr doc = nullptr;
    ~XmlDoc() {
        if (doc)
            xmlFreeDoc(doc);
    }
};

struct DSigCtx {
    xmlSecDSigCtxPtr ctx = nullptr;
    ~DSigCtx() {
        if (ctx)
            xmlSecDSigCtxDestroy(ctx);
    }
};

bool enable(xmlSecDSigCtxPtr ctx) {
    const xmlSecTransformId sig[] = {xmlSecTransformExclC14NId,    xmlSecTransformInclC14NId,
                                     xmlSecTransformRsaSha256Id,   xmlSecTransformRsaSha384Id,
                                     xmlSecTransformRsaSha512Id,   xmlSecTransformEcdsaSha256Id,
                                     xmlSecTransformEcdsaSha384Id, xmlSecTransformEcdsaSha512Id};
    const xmlSecTransformId ref[] = {xmlSecTransformEnvelopedId, xmlSecTransformExclC14NId,
                                     xmlSecTransformInclC14NId,  xmlSecTransformSha256Id,
                                     xmlSecTransformSha384Id,    xmlSecTransformSha512Id};
    for (auto id : sig)
        if (xmlSecDSigCtxEnableSignatureTransform(ctx, id) < 0)
            return false;
    for (auto id : ref)
        if (xmlSecDSigCtxEnableReferenceTransform(ctx, id) < 0)
            return false;
    return true;
}

// Every ds:X509Certificate inside the signature element (and nowhere else), in document order.
void collectCertificates(xmlNodePtr node, std::vector<CertPtr>& out) {
    for (xmlNodePtr n = node; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (xmlSecCheckNodeName(n, xmlSecNodeX509Certificate, xmlSecDSigNs)) {
            xmlChar* content = xmlNodeGetContent(n);
            const auto der = content ? base64Decode(reinterpret_cast<const char*>(content))
                                     : std::optional<std::string>();
            xmlFree(content);
            if (auto c = der ? certFromDer(*der) : nullptr)
                out.push_back(std::move(c));
        } else {
            collectCertificates(n->children, out);
        }
    }
}

}  // namespace

std::shared_ptr<const ProviderTrust> ProviderTrust::load(const std::string& caFile,
                                                         const std::string& crlFile,
                                                         std::string& error) {
    std::shared_ptr<ProviderTrust> t(new ProviderTrust());
    t->store_ = X509_STORE_new();
    X509_LOOKUP* lookup = X509_STORE_add_lookup(t->store_, X509_LOOKUP_file());
    const int anchors = lookup ? X509_load_cert_file(lookup, caFile.c_str(), X509_FILETYPE_PEM) : 0;
    if (anchors <= 0) {
        error = "no certificate in the provider trust anchor file " + caFile + " (" +
                opensslError() + ")";
        return nullptr;
    }
    if (!crlFile.empty()) {
        if (X509_load_crl_file(lookup, crlFile.c_str(), X509_FILETYPE_PEM) <= 0) {
            error = "no CRL in " + crlFile + " (" + opensslError() + ")";
            return nullptr;
        }
        X509_STORE_set_flags(t->store_, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
        t->crl_ = true;
    }
    return t;
}

ProviderTrust::~ProviderTrust() {
    if (store_)
        X509_STORE_free(store_);
}

std::string ProviderTrust::verifyCertificate(X509* cert,
                                             const std::vector<X509*>& intermediates) const {
    STACK_OF(X509)* chain = sk_X509_new_null();
    for (X509* c : intermediates)
        sk_X509_push(chain, c);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    std::string why;
    if (!ctx || X509_STORE_CTX_init(ctx, store_, cert, chain) != 1) {
        why = "cannot check the chain";
    } else if (X509_verify_cert(ctx) != 1) {
        why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(chain);
    ERR_clear_error();
    return why;
}

const char* toString(SignatureState s) {
    switch (s) {
        case SignatureState::Valid:
            return "pass";
        case SignatureState::HashOnly:
            return "hash-only";
        case SignatureState::Unverified:
            return "unverified";
        case SignatureState::Invalid:
            return "fail";
        case SignatureState::Absent:
            return "none";
    }
    return "fail";
}

SignatureCheck verifyIntegrity(std::string_view message, const ProviderTrust* trust) {
    SignatureCheck c = checkIntegrity(message, trust);
    std::string error;
    if (c.state == SignatureState::Valid || c.state == SignatureState::Unverified ||
        c.state == SignatureState::Invalid)
        return c;
    const auto h = HeaderBlock::parse(message, error);
    const std::string* authoritative = h ? h->get("X-de-mail-authoritative") : nullptr;
    if (authoritative && equalsIgnoreCase(trim(*authoritative), "yes"))
        return result(SignatureState::Invalid,
                      "absenderbestätigt, but not signed by the provider (" + c.detail + ")");
    return c;
}

SignatureCheck verifyXmlSignature(std::string_view xml, const ProviderTrust* trust) {
    std::string error;
    if (!initXmlSec(error))
        return result(SignatureState::Invalid, error);
    xmlSecLastError.clear();
    xmlSetGenericErrorFunc(nullptr, quietXmlErrors);
    XmlDoc d;
    d.doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "confirmation.xml", nullptr,
                          XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = d.doc ? xmlDocGetRootElement(d.doc) : nullptr;
    if (!root)
        return result(SignatureState::Invalid, "the confirmation XML cannot be parsed");
    if (d.doc->intSubset)
        return result(SignatureState::Invalid, "the confirmation XML has a DTD");
    xmlNodePtr sigNode = nullptr;
    int signatures = 0;
    for (xmlNodePtr n = root->children; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE &&
            xmlSecCheckNodeName(n, xmlSecNodeSignature, xmlSecDSigNs)) {
            if (!sigNode)
                sigNode = n;
            ++signatures;
        }
    }
    if (!sigNode)
        return result(SignatureState::Absent, "the confirmation XML carries no ds:Signature");
    if (signatures > 1)
        return result(SignatureState::Invalid,
                      "more than one ds:Signature in the confirmation XML");

    // The signer's certificate from KeyInfo: checked against the trust anchor here, its key
    // then the only one the signature may be verified with (no key lookup by xmlsec).
    std::vector<CertPtr> certs;
    collectCertificates(sigNode->children, certs);
    if (certs.empty())
        return result(SignatureState::Invalid, "the ds:Signature carries no X509Certificate");
    X509* leaf = certs.front().get();
    const std::string signer = subjectOf(leaf);

    DSigCtx c;
    c.ctx = xmlSecDSigCtxCreate(nullptr);
    if (!c.ctx || !enable(c.ctx))
        return result(SignatureState::Invalid, "cannot create an XML-DSig context");
    EVP_PKEY* pub = X509_get_pubkey(leaf);  // a reference of our own, adopted by xmlsec
    xmlSecKeyDataPtr data = pub ? xmlSecOpenSSLEvpKeyAdopt(pub) : nullptr;
    if (!data) {
        if (pub)
            EVP_PKEY_free(pub);
        return result(SignatureState::Invalid, "the signer's key cannot be used", signer);
    }
    c.ctx->signKey = xmlSecKeyCreate();
    if (!c.ctx->signKey || xmlSecKeySetValue(c.ctx->signKey, data) < 0) {
        xmlSecKeyDataDestroy(data);
        return result(SignatureState::Invalid, "the signer's key cannot be used", signer);
    }
    if (xmlSecDSigCtxVerify(c.ctx, sigNode) < 0)
        return result(SignatureState::Invalid,
                      "the XML signature cannot be processed" +
                          (xmlSecLastError.empty() ? std::string() : " (" + xmlSecLastError + ")"),
                      signer);
    if (c.ctx->status != xmlSecDSigStatusSucceeded)
        return result(SignatureState::Invalid, "the confirmation XML was changed after signing",
                      signer);
    // Only a signature over the whole document proves the elements the gateway reads.
    if (xmlSecPtrListGetSize(&c.ctx->signedInfoReferences) != 1)
        return result(SignatureState::Invalid, "the XML signature has more than one reference",
                      signer);
    auto* ref = static_cast<xmlSecDSigReferenceCtxPtr>(
        xmlSecPtrListGetItem(&c.ctx->signedInfoReferences, 0));
    if (!ref || (ref->uri && *ref->uri))
        return result(SignatureState::Invalid,
                      "the XML signature does not cover the whole document", signer);
    if (!trust)
        return result(SignatureState::Unverified,
                      "XML signature matches its certificate; no provider trust anchor configured",
                      signer);
    std::vector<X509*> intermediates;
    for (std::size_t i = 1; i < certs.size(); ++i)
        intermediates.push_back(certs[i].get());
    if (auto e = trust->verifyCertificate(leaf, intermediates); !e.empty())
        return result(SignatureState::Invalid, "signer certificate: " + e, signer);
    return result(SignatureState::Valid, "XML signature by the provider", signer);
}

}  // namespace demail::connector
