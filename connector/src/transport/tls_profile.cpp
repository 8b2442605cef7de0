// The enforced client TLS profile on a Poco Context, plus the handshake bookkeeping (counters,
// negotiated parameters, first certificate verification error) done in OpenSSL callbacks.
#include "demail/connector/transport/tls_profile.h"

#include <Poco/Exception.h>
#include <Poco/Net/IPAddress.h>
#include <openssl/ec.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <mutex>
#include <stdexcept>

namespace demail::connector {
namespace {

thread_local HandshakeInfo t_handshake;

int countersIndex() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

TlsCounters* countersOf(const SSL* ssl) {
    return static_cast<TlsCounters*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), countersIndex()));
}

std::string nameOf(X509* cert) {
    return certificateSubject(cert);
}

// NIST name of the ephemeral key's curve ("P-521"), or the OpenSSL name for other groups.
std::string groupOf(SSL* ssl) {
    EVP_PKEY* tmp = nullptr;
    if (!SSL_get_peer_tmp_key(ssl, &tmp) || !tmp)
        return {};
    char name[80] = {0};
    size_t len = 0;
    std::string group;
    if (EVP_PKEY_get_group_name(tmp, name, sizeof name, &len) == 1) {
        group = name;
        int nid = OBJ_sn2nid(name);
        if (nid == NID_undef)
            nid = OBJ_ln2nid(name);
        if (const char* nist = nid != NID_undef ? EC_curve_nid2nist(nid) : nullptr)
            group = nist;
    } else {
        group = OBJ_nid2sn(EVP_PKEY_get_base_id(tmp));
    }
    EVP_PKEY_free(tmp);
    return group;
}

// Every handshake message the client writes passes here; a CertificateVerify is one signature
// by the client key, i.e. one operation on the card.
void onMessage(int writeP, int, int contentType, const void* buf, size_t len, SSL* ssl, void*) {
    if (!writeP || contentType != SSL3_RT_HANDSHAKE || len == 0)
        return;
    if (static_cast<const unsigned char*>(buf)[0] == SSL3_MT_CERTIFICATE_VERIFY)
        if (TlsCounters* c = countersOf(ssl))
            ++c->cardSignatures;
}

void onInfo(const SSL* constSsl, int where, int) {
    if (!(where & SSL_CB_HANDSHAKE_DONE))
        return;
    SSL* ssl = const_cast<SSL*>(constSsl);
    HandshakeInfo& info = t_handshake;
    info.completed = true;
    info.resumed = SSL_session_reused(ssl) == 1;
    info.protocol = SSL_get_version(ssl);
    info.cipher = SSL_get_cipher_name(ssl);
    info.group = info.resumed ? std::string{} : groupOf(ssl);
    int sigNid = NID_undef;
    if (!info.resumed && SSL_get_signature_type_nid(ssl, &sigNid) == 1 && sigNid != NID_undef)
        info.clientSignature = OBJ_nid2sn(sigNid);
    X509* peer = SSL_get0_peer_certificate(ssl);
    info.serverSubject = nameOf(peer);
    if (TlsCounters* c = countersOf(ssl)) {
        if (info.resumed)
            ++c->resumedHandshakes;
        else
            ++c->fullHandshakes;
    }
}

// Replaces Poco's callback: keeps OpenSSL's verdict, remembers the first error for the reason.
int onVerify(int preverifyOk, X509_STORE_CTX* store) {
    if (!preverifyOk && t_handshake.verifyError == X509_V_OK) {
        t_handshake.verifyError = X509_STORE_CTX_get_error(store);
        t_handshake.verifyErrorSubject = nameOf(X509_STORE_CTX_get_current_cert(store));
        auto* ssl = static_cast<SSL*>(
            X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
        if (TlsCounters* c = ssl ? countersOf(ssl) : nullptr)
            ++c->verifyFailures;
    }
    return preverifyOk;
}

}  // namespace

void resetThreadHandshakeInfo() {
    t_handshake = HandshakeInfo{};
}
const HandshakeInfo& threadHandshakeInfo() {
    return t_handshake;
}

const TlsPolicy& bsiTlsPolicy() {
    static const TlsPolicy policy{"bsi-tr-03116-4", tls_profile::kProtocol, tls_profile::kCipher,
                                  tls_profile::kGroup, tls_profile::kClientSigalgs};
    return policy;
}

const TlsPolicy* findTlsPolicy(const std::string& name) {
    return name == bsiTlsPolicy().name ? &bsiTlsPolicy() : nullptr;
}

std::optional<std::string> checkNegotiated(const HandshakeInfo& info, const TlsPolicy& policy) {
    if (!info.completed)
        return "handshake did not complete";
    if (info.protocol != policy.protocol)
        return "server negotiated " + info.protocol + ", profile requires " + policy.protocol;
    if (info.cipher != policy.cipher)
        return "server negotiated cipher " + info.cipher + ", profile requires " + policy.cipher;
    // A resumed session has no key exchange; its group was checked when it was established.
    if (!info.resumed && info.group != policy.group)
        return "server negotiated group " + (info.group.empty() ? "none" : info.group) +
               ", profile requires " + policy.group;
    return std::nullopt;
}

Poco::Net::Context::Ptr makeClientContext(const ProviderEndpoint& endpoint,
                                          ClientCredentials& credentials, TlsCounters& counters,
                                          const TlsPolicy& policy) {
    if (policy.protocol != "TLSv1.2")
        throw std::runtime_error("provider: TLS policy " + policy.name + " asks for " +
                                 policy.protocol + "; the client builds TLS 1.2 contexts only");
    const std::string serverName = effectiveServerName(endpoint);
    if (serverName.empty())
        throw std::runtime_error("provider: no server name to verify");
    Poco::Net::Context::Params params;
    params.caLocation = endpoint.caFile;
    params.loadDefaultCAs = false;
    params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
    params.cipherList = policy.cipher;
    params.ecdhCurve = policy.group;
    Poco::Net::Context::Ptr ctx;
    try {
        ctx = new Poco::Net::Context(Poco::Net::Context::TLSV1_2_CLIENT_USE, params);
    } catch (const Poco::Exception& e) {
        throw std::runtime_error("provider: TLS context: " + e.displayText());
    }
    ctx->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                          Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1 |
                          Poco::Net::Context::PROTO_TLSV1_3);
    ctx->enableExtendedCertificateVerification(false);  // OpenSSL checks the name (see header)
    ctx->enableSessionCache(true);
    SSL_CTX* s = ctx->sslContext();
    bool ok = SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) == 1 &&
              SSL_CTX_set_max_proto_version(s, TLS1_2_VERSION) == 1 &&
              SSL_CTX_set_cipher_list(s, policy.cipher.c_str()) == 1 &&
              SSL_CTX_set1_groups_list(s, policy.group.c_str()) == 1 &&
              SSL_CTX_set1_client_sigalgs_list(s, policy.clientSigalgs.c_str()) == 1 &&
              SSL_CTX_set1_sigalgs_list(s,
                                        "RSA+SHA256:RSA+SHA384:RSA+SHA512:"
                                        "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:"
                                        "rsa_pss_rsae_sha512") == 1;
    if (!ok)
        throw std::runtime_error("provider: OpenSSL refused the TLS profile settings");
    // A server-initiated renegotiation would cost one more card signature per request (200-500 ms
    // on a real card) and is never needed with this profile: refuse it (review L6).
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION);

    X509_VERIFY_PARAM* vp = SSL_CTX_get0_param(s);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (Poco::Net::IPAddress addr; Poco::Net::IPAddress::tryParse(serverName, addr))
        ok = X509_VERIFY_PARAM_set1_ip_asc(vp, serverName.c_str()) == 1;
    else
        ok = X509_VERIFY_PARAM_set1_host(vp, serverName.c_str(), serverName.size()) == 1;
    if (!ok)
        throw std::runtime_error("provider: cannot set server name '" + serverName + "'");
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER, onVerify);

    // Raw OpenSSL calls, not Poco's EVPPKey: that copies the key and loses the ENGINE binding.
    if (SSL_CTX_use_certificate(s, credentials.certificate()) != 1)
        throw std::runtime_error("provider: client certificate unusable: " +
                                 credentials.describe());
    if (SSL_CTX_use_PrivateKey(s, credentials.privateKey()) != 1 ||
        SSL_CTX_check_private_key(s) != 1)
        throw std::runtime_error("provider: client key does not match certificate: " +
                                 credentials.describe());

    SSL_CTX_set_ex_data(s, countersIndex(), &counters);
    SSL_CTX_set_msg_callback(s, onMessage);
    SSL_CTX_set_info_callback(s, onInfo);
    return ctx;
}

std::string describeHandshakeFailure(const ProviderEndpoint& endpoint, const std::string& errorText,
                                     const TlsPolicy& policy) {
    const HandshakeInfo& info = t_handshake;
    switch (info.verifyError) {
        case X509_V_OK:
            break;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            return "server certificate name mismatch: expected " + effectiveServerName(endpoint);
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return "server certificate expired (" + info.verifyErrorSubject + ")";
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return "server certificate not yet valid (" + info.verifyErrorSubject + ")";
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
            return "server certificate not issued by the configured CA " + endpoint.caFile;
        default:
            return std::string("server certificate rejected: ") +
                   X509_verify_cert_error_string(info.verifyError);
    }
    if (info.completed) {
        if (auto bad = checkNegotiated(info, policy))
            return *bad;
    }
    return "TLS handshake failed: " + errorText;
}

}  // namespace demail::connector
