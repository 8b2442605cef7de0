// The verifier of the provider's signatures (provider_signature.h) against messages this test
// signs itself with OpenSSL, the way PVD_IO §3.1.21 describes: a hash-only and a signed
// X-de-mail-integrity, altered bodies and headers, a signer from an unknown CA, malformed input.
// The signatures the simulated provider makes are checked end to end (gateway.signatures).
#include "demail/connector/message/provider_signature.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace demail::connector {
namespace {

std::string b64(const std::string& s) {
    std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(s.data()),
                                  static_cast<int>(s.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string sha256(const std::string& s) {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(md), len);
}

struct Pki {
    EVP_PKEY* caKey = EVP_RSA_gen(2048);
    EVP_PKEY* key = EVP_RSA_gen(2048);
    X509* ca = nullptr;
    X509* leaf = nullptr;
    std::string caFile;

    static X509* cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuerKey, bool isCa) {
        X509* c = X509_new();
        X509_set_version(c, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(c), isCa ? 1 : 2);
        X509_gmtime_adj(X509_getm_notBefore(c), -3600);
        X509_gmtime_adj(X509_getm_notAfter(c), 3600);
        X509_set_pubkey(c, key);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
        X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(c));
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer ? issuer : c, c, nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints,
                                                  isCa ? "critical,CA:TRUE" : "CA:FALSE");
        X509_add_ext(c, ext, -1);
        X509_EXTENSION_free(ext);
        X509_sign(c, issuerKey ? issuerKey : key, EVP_sha256());
        return c;
    }

    Pki() {
        ca = cert(caKey, "Test Provider CA", nullptr, nullptr, true);
        leaf = cert(key, "Test Bestaetigungsdienst", ca, caKey, false);
        char path[] = "/tmp/provider-signature-test-XXXXXX";
        const int fd = mkstemp(path);
        FILE* f = fdopen(fd, "w");
        PEM_write_X509(f, ca);
        std::fclose(f);
        caFile = path;
    }
    ~Pki() {
        std::remove(caFile.c_str());
        X509_free(leaf);
        X509_free(ca);
        EVP_PKEY_free(key);
        EVP_PKEY_free(caKey);
    }
    std::string leafBase64() const {
        unsigned char* der = nullptr;
        const int n = i2d_X509(leaf, &der);
        std::string s(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
        OPENSSL_free(der);
        return b64(s);
    }
    std::string sign(const std::string& data) const {
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        std::size_t len = 512;
        std::string sig(len, '\0');
        EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size());
        EVP_MD_CTX_free(ctx);
        sig.resize(len);
        return b64(sig);
    }
};

const std::string kHeaders =
    "From: amt@behoerde.de-mail.de\r\n"
    "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
    "Subject: Bescheid\r\n"
    "X-de-mail-authoritative: no\r\n";
const std::string kBody = "Sehr geehrte Damen und Herren,\r\n\r\nText.\r\n\r\n";

// A message with X-de-mail-integrity over From, Date, Subject, X-de-mail-authoritative, signed
// by pki (or only hashed without it), the b= value folded over two lines.
std::string message(const Pki* pki, const std::string& headers = kHeaders,
                    const std::string& body = kBody) {
    const std::string canonBody = "Sehr geehrte Damen und Herren,\r\n\r\nText.\r\n";
    std::string value = std::string("v=1; a=") + (pki ? "sha256/rsa" : "sha256") +
                        "; c=simple/simple;\r\n h=From:Date:Subject:X-de-mail-authoritative;\r\n "
                        "bh=" +
                        b64(sha256(canonBody)) + ";\r\n b=";
    const std::string input = headers + "X-de-mail-integrity: " + value;
    std::string b = pki ? pki->sign(input) : b64(sha256(input));
    std::string sig = b.substr(0, 40) + "\r\n " + b.substr(40);
    std::string out = headers + "X-de-mail-integrity: " + value + sig + "\r\n";
    if (pki)
        out += "X-de-mail-signature-certificate: " + pki->leafBase64() + "\r\n";
    return out + "\r\n" + body;
}

TEST(ProviderSignature, HashOnlyMatchesAndFindsChanges) {
    EXPECT_EQ(verifyIntegrity(message(nullptr), nullptr).state, SignatureState::HashOnly);
    std::string m = message(nullptr);
    m.replace(m.find("Text."), 5, "Txet.");
    auto c = verifyIntegrity(m, nullptr);
    EXPECT_EQ(c.state, SignatureState::Invalid);
    EXPECT_EQ(c.detail, "the body was changed (body hash differs)");
    m = message(nullptr);
    m.replace(m.find("Bescheid"), 8, "Bescheld");
    c = verifyIntegrity(m, nullptr);
    EXPECT_EQ(c.state, SignatureState::Invalid);
    EXPECT_EQ(c.detail, "the signed header fields were changed");
    // Trailing empty lines are not part of the body hash (simple canonicalisation).
    EXPECT_EQ(verifyIntegrity(message(nullptr) + "\r\n\r\n", nullptr).state,
              SignatureState::HashOnly);
}

TEST(ProviderSignature, FirstOccurrenceCountsAndLaterCopiesDoNotMatter) {
    // A second Subject below: the TR's rule takes the first, so the hash still holds.
    std::string m = message(nullptr);
    m.insert(m.find("\r\n\r\n") + 2, "Subject: untergeschoben\r\n");
    EXPECT_EQ(verifyIntegrity(m, nullptr).state, SignatureState::HashOnly);
    // A Subject above the signed one takes its place: detected.
    EXPECT_EQ(verifyIntegrity("Subject: untergeschoben\r\n" + message(nullptr), nullptr).state,
              SignatureState::Invalid);
}

TEST(ProviderSignature, SignedWithTrustAnchor) {
    Pki pki;
    std::string error;
    auto trust = ProviderTrust::load(pki.caFile, "", error);
    ASSERT_TRUE(trust) << error;
    auto c = verifyIntegrity(message(&pki), trust.get());
    EXPECT_EQ(c.state, SignatureState::Valid) << c.detail;
    EXPECT_EQ(c.signer, "CN=Test Bestaetigungsdienst");
    // Without an anchor the value is checked, the signer is not.
    EXPECT_EQ(verifyIntegrity(message(&pki), nullptr).state, SignatureState::Unverified);
    // An altered header under a real signature.
    std::string m = message(&pki);
    m.replace(m.find("10:00:00"), 8, "11:00:00");
    c = verifyIntegrity(m, trust.get());
    EXPECT_EQ(c.state, SignatureState::Invalid);
    EXPECT_EQ(c.detail, "the signature does not match the signed header fields");
}

TEST(ProviderSignature, SignerFromAnotherCaIsRefused) {
    Pki pki, other;
    std::string error;
    auto trust = ProviderTrust::load(other.caFile, "", error);
    ASSERT_TRUE(trust) << error;
    auto c = verifyIntegrity(message(&pki), trust.get());
    EXPECT_EQ(c.state, SignatureState::Invalid);
    // Same CA name, another key: the chain does not hold.
    EXPECT_EQ(c.detail, "signer certificate: certificate signature failure");
}

TEST(ProviderSignature, AuthoritativeMustBeSigned) {
    std::string h = kHeaders;
    h.replace(h.find("authoritative: no"), 17, "authoritative: yes");
    auto c = verifyIntegrity(message(nullptr, h), nullptr);
    EXPECT_EQ(c.state, SignatureState::Invalid);
    EXPECT_NE(c.detail.find("not signed by the provider"), std::string::npos) << c.detail;
    EXPECT_EQ(verifyIntegrity(h + "\r\n" + kBody, nullptr).state, SignatureState::Invalid);
}

TEST(ProviderSignature, MalformedInputIsAnErrorNotACrash) {
    EXPECT_EQ(verifyIntegrity(kHeaders + "\r\n" + kBody, nullptr).state, SignatureState::Absent);
    EXPECT_EQ(verifyIntegrity("From: a@b\nSubject: x\n\nbody\n", nullptr).state,
              SignatureState::Invalid);  // bare LF: not the bytes that were signed
    EXPECT_EQ(verifyIntegrity("X-de-mail-integrity: v=1; a=sha256\r\n\r\n", nullptr).state,
              SignatureState::Invalid);
    EXPECT_EQ(verifyIntegrity("", nullptr).state, SignatureState::Invalid);
    std::string signedWithoutCert = message(nullptr);
    signedWithoutCert.replace(signedWithoutCert.find("a=sha256"), 8, "a=sha256/rsa");
    EXPECT_EQ(verifyIntegrity(signedWithoutCert, nullptr).detail,
              "signed, but no X-de-mail-signature-certificate");
}

TEST(ProviderSignature, XmlWithoutSignatureOrWithDtd) {
    EXPECT_EQ(verifyXmlSignature("<Acknowledge-Message xmlns=\"urn:de-mail\"><Sender>s</Sender>"
                                 "</Acknowledge-Message>",
                                 nullptr)
                  .state,
              SignatureState::Absent);
    auto c = verifyXmlSignature("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", nullptr);
    EXPECT_EQ(c.state, SignatureState::Invalid);
    EXPECT_EQ(c.detail, "the confirmation XML has a DTD");
    EXPECT_EQ(verifyXmlSignature("not xml", nullptr).state, SignatureState::Invalid);
    c = verifyXmlSignature(
        "<a xmlns=\"urn:de-mail\"><Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"/></a>",
        nullptr);
    EXPECT_EQ(c.state, SignatureState::Invalid);
}

TEST(ProviderSignature, TrustFilesMustHoldSomething) {
    std::string error;
    EXPECT_FALSE(ProviderTrust::load("/nonexistent/ca.pem", "", error));
    EXPECT_NE(error.find("/nonexistent/ca.pem"), std::string::npos);
    Pki pki;
    EXPECT_FALSE(ProviderTrust::load(pki.caFile, pki.caFile, error));  // a certificate, no CRL
    EXPECT_NE(error.find("no CRL"), std::string::npos) << error;
}

}  // namespace
}  // namespace demail::connector
