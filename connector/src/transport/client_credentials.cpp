// PEM-file client credentials (tests, and deployments without a card).
#include "demail/connector/transport/client_credentials.h"

#include <openssl/bio.h>
#include <openssl/pem.h>

#include <cstdio>
#include <stdexcept>

namespace demail::connector {

PemClientCredentials::PemClientCredentials(const std::string& certFile, const std::string& keyFile)
    : certFile_(certFile) {
    if (FILE* f = std::fopen(certFile.c_str(), "r")) {
        cert_ = PEM_read_X509(f, nullptr, nullptr, nullptr);
        std::fclose(f);
    }
    if (!cert_)
        throw std::runtime_error("cannot read client certificate " + certFile);
    if (FILE* f = std::fopen(keyFile.c_str(), "r")) {
        key_ = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
        std::fclose(f);
    }
    if (!key_) {
        X509_free(cert_);
        throw std::runtime_error("cannot read client key " + keyFile);
    }
}

PemClientCredentials::~PemClientCredentials() {
    EVP_PKEY_free(key_);
    X509_free(cert_);
}

std::string PemClientCredentials::describe() const {
    return "pem:" + certFile_ + " subject=\"" + certificateSubject(cert_) + "\"";
}

std::string certificateSubject(X509* cert) {
    if (!cert)
        return {};
    BIO* bio = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string subject(data, static_cast<size_t>(len));
    BIO_free(bio);
    return subject;
}

}  // namespace demail::connector
