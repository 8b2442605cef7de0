// Integration: the TLS client key as an OpenSSL ENGINE key (libp11 "pkcs11" engine on SoftHSM2),
// as the gateway will pass it from the smartcard module. Checks that the raw
// SSL_CTX_use_PrivateKey path keeps the engine binding, that the token signs with PKCS#1 v1.5,
// and that keep-alive + resumption keep it to one signature.
#define OPENSSL_SUPPRESS_DEPRECATED  // ENGINE API (deprecated in OpenSSL 3), this file only
#include <gtest/gtest.h>
#include <openssl/engine.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "demail/connector/transport/json_api_binding.h"
#include "sim_process.h"

using namespace demail::connector;
using demail::connector::testing::SimProcess;

namespace {

const char* kModule = "/usr/lib/softhsm/libsofthsm2.so";

class EngineCredentials final : public ClientCredentials {
  public:
    EngineCredentials(X509* cert, EVP_PKEY* key) : cert_(cert), key_(key) {}
    ~EngineCredentials() override {
        EVP_PKEY_free(key_);
        X509_free(cert_);
    }
    X509* certificate() override { return cert_; }
    EVP_PKEY* privateKey() override { return key_; }
    std::string describe() const override { return "pkcs11:token=h4-tls;id=%01"; }

  private:
    X509* cert_;
    EVP_PKEY* key_;
};

int run(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str());
}

class EngineKey : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!std::filesystem::exists(kModule))
            GTEST_SKIP() << "softhsm2 not installed";
        sim = std::make_unique<SimProcess>();
        char tmpl[] = "/tmp/h4-hsm.XXXXXX";
        ASSERT_TRUE(mkdtemp(tmpl));
        dir = tmpl;
        std::filesystem::create_directory(dir + "/tokens");
        std::ofstream(dir + "/softhsm2.conf")
            << "directories.tokendir = " << dir << "/tokens\nobjectstore.backend = file\n"
            << "log.level = ERROR\nslots.removable = false\n";
        setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);
        ASSERT_EQ(run("softhsm2-util --init-token --free --label h4-tls --so-pin 12345678 "
                      "--pin 123456"),
                  0);
        ASSERT_EQ(run("openssl pkcs8 -topk8 -nocrypt -in " + sim->clientKey() + " -out " + dir +
                      "/client.pk8"),
                  0);
        ASSERT_EQ(run("softhsm2-util --import " + dir +
                      "/client.pk8 --token h4-tls --label client --id 01 --pin 123456"),
                  0);
        ASSERT_EQ(run("openssl x509 -in " + sim->clientCert() + " -outform DER -out " + dir +
                      "/client.der"),
                  0);
        ASSERT_EQ(run(std::string("pkcs11-tool --module ") + kModule +
                      " --token-label h4-tls --login --pin 123456 --write-object " + dir +
                      "/client.der --type cert --id 01 --label client"),
                  0);

        ENGINE_load_builtin_engines();
        engine = ENGINE_by_id("pkcs11");
        ASSERT_NE(engine, nullptr) << "libengine-pkcs11-openssl missing";
        ASSERT_EQ(ENGINE_ctrl_cmd_string(engine, "MODULE_PATH", kModule, 0), 1);
        ASSERT_EQ(ENGINE_ctrl_cmd_string(engine, "PIN", "123456", 0), 1);
        ASSERT_EQ(ENGINE_init(engine), 1);
        EVP_PKEY* key = ENGINE_load_private_key(engine, "pkcs11:token=h4-tls;id=%01;type=private",
                                                nullptr, nullptr);
        ASSERT_NE(key, nullptr);
        FILE* f = std::fopen(sim->clientCert().c_str(), "r");
        ASSERT_NE(f, nullptr);
        X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
        std::fclose(f);
        ASSERT_NE(cert, nullptr);
        creds = std::make_unique<EngineCredentials>(cert, key);
    }
    void TearDown() override {
        // Order matters with engine keys (openssl#22508): TLS objects, key, then the engine.
        transport.reset();
        creds.reset();
        if (engine) {
            ENGINE_finish(engine);
            ENGINE_free(engine);
        }
        sim.reset();
        if (!dir.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
        }
    }

    std::unique_ptr<SimProcess> sim;
    std::string dir;
    ENGINE* engine = nullptr;
    std::unique_ptr<EngineCredentials> creds;
    std::unique_ptr<JsonApiConnection> transport;
};

}  // namespace

TEST_F(EngineKey, SignsOncePerSessionWithPkcs1) {
    // Really a token key: libp11 puts its own RSA_METHOD on the key (PKCS#11 C_Sign).
    const RSA* rsa = EVP_PKEY_get0_RSA(creds->privateKey());
    ASSERT_NE(rsa, nullptr);
    ASSERT_NE(RSA_get_method(rsa), RSA_get_default_method());
    transport = std::make_unique<JsonApiConnection>(sim->endpoint(), *creds);
    for (int i = 0; i < 20; ++i) {
        Submission s{"eng-" + std::to_string(i),
                     "poststelle@firma.de-mail.de",
                     "From: poststelle@firma.de-mail.de\r\nTo: buerger@example.de-mail.de\r\n"
                     "Subject: t\r\n\r\nx\r\n",
                     {}};
        auto r = transport->submit(s);
        ASSERT_TRUE(r.ok()) << r.error().reason;
    }
    EXPECT_EQ(transport->lastHandshake().clientSignature, "rsaEncryption");  // PKCS#1 v1.5
    transport->disconnect();
    ASSERT_TRUE(transport->listAccounts().ok());
    EXPECT_TRUE(transport->lastHandshake().resumed);
    EXPECT_EQ(transport->counters().cardSignatures.load(), 1u);
    EXPECT_EQ(sim->stat("clientSignatures"), 1);
}
