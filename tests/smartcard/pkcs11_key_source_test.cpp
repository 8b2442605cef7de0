// The PKCS#11 key source through real PKCS#11 modules: OpenSC against the simulated card, and
// SoftHSM2. A signature made with the loaded key must verify with the certificate; a wrong PIN
// costs the card exactly one try, and never a second.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "demail/smartcard/card_profile.h"
#include "demail/smartcard/pcsc.h"
#include "demail/smartcard/pkcs11_key_source.h"
#include "demail/smartcard/tcos.h"
#include "pcsc_fixture.h"

using namespace demail::smartcard;
namespace fs = std::filesystem;

namespace {

const char* kOpenSc = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const char* kSoftHsm = "/usr/lib/softhsm/libsofthsm2.so";
const char* kCardUri = "pkcs11:token=NetKey%20V3%20Card%20%28NetKey%20PIN2%29;id=%47;type=private";

std::string writePin(const std::string& dir, const std::string& pin) {
    const std::string path = dir + "/card.pin";
    std::ofstream(path) << pin << "\n";
    return path;
}

bool signsAndVerifies(EVP_PKEY* key, EVP_PKEY* pub) {
    const std::string data = "TLS handshake transcript stand-in";
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    std::size_t len = sizeof sig;
    bool ok = EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key) == 1 &&
              EVP_DigestSign(md, sig, &len, reinterpret_cast<const unsigned char*>(data.data()),
                             data.size()) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return false;
    md = EVP_MD_CTX_new();
    ok = EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, pub) == 1 &&
         EVP_DigestVerify(md, sig, len, reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

EVP_PKEY* publicKeyOf(const std::string& certPem) {
    FILE* f = std::fopen(certPem.c_str(), "r");
    X509* x = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f)
        std::fclose(f);
    EVP_PKEY* k = x ? X509_get_pubkey(x) : nullptr;
    X509_free(x);
    return k;
}

int triesLeftOnCard() {
    PcscContext ctx;
    auto reader = ctx.findReader("Virtual PCD 00 00", true);
    if (!reader.ok())
        return -100;
    auto card = PcscCard::connect(ctx, reader.value());
    if (!card.ok())
        return -101;
    TcosCard tcos(*card.value(), *profileForAtr(card.value()->atr()));
    auto st = tcos.pinStatus(0x83);
    return st.ok() ? st.value().triesLeft : -102;
}

}  // namespace

TEST(Pkcs11KeySource, SignsWithTheCardKeyThroughOpenSc) {
    demail::test::PcscSimulator sim;
    Pkcs11KeySource source({kOpenSc, kCardUri, writePin(sim.dir(), "123456")});
    const auto r = source.load();
    ASSERT_TRUE(r.ok()) << r.message;
    ASSERT_NE(source.privateKey(), nullptr);
    EVP_PKEY* pub = publicKeyOf(sim.authCertPem());
    EXPECT_TRUE(signsAndVerifies(source.privateKey(), pub));
    EXPECT_EQ(source.signatureCount(), 1u);
    EVP_PKEY_free(pub);
    // The card is pulled: signing fails and says the token is lost; back in, load() recovers.
    sim.pullCard();
    pub = publicKeyOf(sim.authCertPem());
    EXPECT_FALSE(signsAndVerifies(source.privateKey(), pub));
    EVP_PKEY_free(pub);
    EXPECT_TRUE(source.tokenLost());
    EXPECT_EQ(source.load().kind, KeyErrorKind::TokenAbsent);
    sim.insertCard();
    ASSERT_TRUE(source.load().ok());
    pub = publicKeyOf(sim.authCertPem());
    EXPECT_TRUE(signsAndVerifies(source.privateKey(), pub));
    EVP_PKEY_free(pub);
}

// A reload (SIGHUP) finalises and initialises OpenSC again, which clears a stale view of the
// reader; a key handed out before must then fail cleanly and never touch the new session.
TEST(Pkcs11KeySource, AReloadStartsTheModuleAfreshAndOldKeysFailCleanly) {
    demail::test::PcscSimulator sim;
    Pkcs11KeySource source({kOpenSc, kCardUri, writePin(sim.dir(), "123456")});
    ASSERT_TRUE(source.load().ok());
    EVP_PKEY* pub = publicKeyOf(sim.authCertPem());
    EVP_PKEY* old = source.privateKey();
    EVP_PKEY_up_ref(old);  // as an SSL_CTX made before the reload would hold it
    EXPECT_TRUE(signsAndVerifies(old, pub));
    source.resetAfterConfigChange();
    const auto r = source.load();
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_FALSE(signsAndVerifies(old, pub)) << "a session from before the restart is gone";
    EXPECT_TRUE(signsAndVerifies(source.privateKey(), pub));
    EVP_PKEY_free(old);  // closes nothing: its handle may now name the new session
    EXPECT_TRUE(signsAndVerifies(source.privateKey(), pub));
    EXPECT_FALSE(source.tokenLost());
    EXPECT_EQ(source.signatureCount(), 3u);
    EVP_PKEY_free(pub);
}

TEST(Pkcs11KeySource, WrongPinCostsOneTryAndIsNeverSentAgain) {
    demail::test::PcscSimulator sim;
    ASSERT_EQ(triesLeftOnCard(), 3);
    const std::string pinFile = writePin(sim.dir(), "999999");
    Pkcs11KeySource source({kOpenSc, kCardUri, pinFile});
    const auto first = source.load();
    EXPECT_EQ(first.kind, KeyErrorKind::WrongPin) << first.message;
    EXPECT_EQ(first.message.find("999999"), std::string::npos) << "the PIN is never in a message";
    EXPECT_EQ(triesLeftOnCard(), 2) << "exactly one try";
    const auto second = source.load();
    EXPECT_EQ(second.kind, KeyErrorKind::PinPreviouslyRejected);
    EXPECT_EQ(triesLeftOnCard(), 2) << "the second load() does not touch the card";
    // The operator fixes the PIN file and reloads the configuration.
    writePin(sim.dir(), "123456");
    source.resetAfterConfigChange();
    EXPECT_TRUE(source.load().ok());
    EXPECT_EQ(triesLeftOnCard(), 3);
}

TEST(Pkcs11KeySource, BlockedPinIsReportedAsLockedWithoutSpendingAnything) {
    demail::test::PcscSimulator sim;
    {
        PcscContext ctx;
        auto reader = ctx.findReader("Virtual PCD 00 00", true);
        ASSERT_TRUE(reader.ok()) << reader.error().message;
        auto card = PcscCard::connect(ctx, reader.value());
        ASSERT_TRUE(card.ok()) << card.error().message;
        TcosCard tcos(*card.value(), *profileForAtr(card.value()->atr()));
        for (int i = 0; i < 3; ++i)
            tcos.verify(0x83, Secret("000000"));
    }
    ASSERT_EQ(triesLeftOnCard(), 0);
    Pkcs11KeySource source({kOpenSc, kCardUri, writePin(sim.dir(), "123456")});
    const auto r = source.load();
    EXPECT_EQ(r.kind, KeyErrorKind::PinLocked) << r.message;
    EXPECT_EQ(source.privateKey(), nullptr);
    EXPECT_EQ(source.load().kind, KeyErrorKind::PinLocked);  // seen on the card, nothing sent
    EXPECT_EQ(triesLeftOnCard(), 0);
}

// VERIFY commands that carried a PIN, as the simulated card logged them (header only).
int pinVerifies(const demail::test::PcscSimulator& sim) {
    std::ifstream in(sim.dir() + "/apdu.log");
    int n = 0;
    for (std::string line; std::getline(in, line);)
        n += line.rfind("> 00 20 00 83 [", 0) == 0;
    return n;
}

std::string fingerprintOf(const std::string& pem) {
    FILE* f = std::fopen(pem.c_str(), "r");
    X509* x = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f)
        std::fclose(f);
    unsigned char md[32];
    unsigned int len = 0;
    X509_digest(x, EVP_sha256(), md, &len);
    X509_free(x);
    std::string hex;
    char b[3];
    for (unsigned i = 0; i < len; ++i) {
        std::snprintf(b, sizeof b, "%02x", md[i]);
        hex += b;
    }
    return hex;
}

TEST(Pkcs11KeySource, ARejectionIsHonouredByEveryKeySourceOnTheRecordUntilThePinFileChanges) {
    demail::test::PcscSimulator sim;
    const std::string record = sim.dir() + "/pin-rejected";
    Pkcs11KeyConfig config{kOpenSc, kCardUri, writePin(sim.dir(), "999999")};
    config.rejectionFile = record;
    {
        Pkcs11KeySource first(config);  // the daemon
        EXPECT_EQ(first.load().kind, KeyErrorKind::WrongPin);
        first.resetAfterConfigChange();  // a reload with the same PIN file
        EXPECT_EQ(first.load().kind, KeyErrorKind::PinPreviouslyRejected);
    }
    Pkcs11KeySource restarted(config);  // a restart, or demailctl: another process
    const auto r = restarted.load();
    EXPECT_EQ(r.kind, KeyErrorKind::PinPreviouslyRejected) << r.message;
    EXPECT_EQ(r.message.find("999999"), std::string::npos);
    EXPECT_EQ(pinVerifies(sim), 1);
    EXPECT_EQ(triesLeftOnCard(), 2);

    writePin(sim.dir(), "123456");
    restarted.resetAfterConfigChange();
    EXPECT_TRUE(restarted.load().ok());
    EXPECT_EQ(pinVerifies(sim), 2);
    EXPECT_FALSE(fs::exists(record)) << "another PIN voids the record";
}

TEST(Pkcs11KeySource, TheLastTryIsNeverSpent) {
    demail::test::PcscSimulator sim;
    {
        PcscContext ctx;
        auto reader = ctx.findReader("Virtual PCD 00 00", true);
        ASSERT_TRUE(reader.ok()) << reader.error().message;
        auto card = PcscCard::connect(ctx, reader.value());
        ASSERT_TRUE(card.ok()) << card.error().message;
        TcosCard tcos(*card.value(), *profileForAtr(card.value()->atr()));
        for (int i = 0; i < 2; ++i)
            tcos.verify(0x83, Secret("000000"));
    }
    ASSERT_EQ(triesLeftOnCard(), 1);
    const int before = pinVerifies(sim);
    Pkcs11KeySource source({kOpenSc, kCardUri, writePin(sim.dir(), "123456")});
    const auto r = source.load();  // even the right PIN: the last try is the operator's
    EXPECT_EQ(r.kind, KeyErrorKind::PinLastTry) << r.message;
    EXPECT_NE(r.message.find("--force"), std::string::npos) << r.message;
    EXPECT_EQ(pinVerifies(sim), before);
    EXPECT_EQ(triesLeftOnCard(), 1);
}

TEST(Pkcs11KeySource, ThePinGoesOnlyToTheCardWithTheExpectedCertificate) {
    demail::test::PcscSimulator sim;
    Pkcs11KeyConfig config{kOpenSc, kCardUri, writePin(sim.dir(), "123456")};
    config.expectedCertificates = {std::string(64, '0')};
    Pkcs11KeySource other(config);
    const auto r = other.load();
    EXPECT_EQ(r.kind, KeyErrorKind::WrongCard) << r.message;
    EXPECT_EQ(pinVerifies(sim), 0);

    config.expectedCertificates = {std::string(64, '0'), fingerprintOf(sim.authCertPem())};
    Pkcs11KeySource right(config);
    const auto ok = right.load();
    EXPECT_TRUE(ok.ok()) << ok.message;
    EXPECT_EQ(pinVerifies(sim), 1);
}

TEST(Pkcs11KeySource, ReportsAbsentTokenAndUnreadablePinFile) {
    demail::test::PcscSimulator sim;
    Pkcs11KeySource noPin({kOpenSc, kCardUri, sim.dir() + "/missing.pin"});
    EXPECT_EQ(noPin.load().kind, KeyErrorKind::PinFileUnreadable);
    sim.pullCard();
    Pkcs11KeySource absent({kOpenSc, kCardUri, writePin(sim.dir(), "123456")});
    const auto r = absent.load();
    EXPECT_EQ(r.kind, KeyErrorKind::TokenAbsent) << r.message;
}

TEST(Pkcs11KeySource, SignsWithASoftHsmToken) {
    char t[] = "/tmp/demail-softhsm-XXXXXX";
    const std::string dir = mkdtemp(t);
    std::ofstream(dir + "/softhsm2.conf")
        << "directories.tokendir = " << dir << "/tokens\nobjectstore.backend = file\n";
    fs::create_directories(dir + "/tokens");
    setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);
    const std::string script =
        "set -e; cd " + dir +
        "; softhsm2-util --init-token --free --label tls-test --so-pin 12345678 --pin 123456 "
        ">/dev/null; openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 2 "
        "-subj /CN=softhsm-client 2>/dev/null; openssl pkcs8 -topk8 -nocrypt -in k.pem -out k.p8;"
        " softhsm2-util --import k.p8 --token tls-test --label client --id 01 --pin 123456 "
        ">/dev/null";
    ASSERT_EQ(std::system(script.c_str()), 0);
    Pkcs11KeySource source({kSoftHsm,
                            "pkcs11:model=SoftHSM%20v2;token=tls-test;id=%01;type=private",
                            writePin(dir, "123456"), dir + "/c.pem"});
    const auto r = source.load();
    ASSERT_TRUE(r.ok()) << r.message;
    EVP_PKEY* pub = publicKeyOf(dir + "/c.pem");
    EXPECT_TRUE(signsAndVerifies(source.privateKey(), pub));
    EVP_PKEY_free(pub);
    unsetenv("SOFTHSM2_CONF");
    fs::remove_all(dir);
}

TEST(Pkcs11KeySourceUri, ParsesTheAttributesUsedToFindTheKey) {
    const auto u = Pkcs11KeySource::parseUri(
        "pkcs11:model=PKCS%2315%20emulated;token=NetKey%20V3%20Card%20(NetKey%20PIN2);slot-id=3;"
        "id=%47;library-description=OpenSC;type=private");
    ASSERT_TRUE(u.valid) << u.error;
    EXPECT_EQ(u.model, "PKCS#15 emulated");
    EXPECT_EQ(u.token, "NetKey V3 Card (NetKey PIN2)");
    EXPECT_EQ(u.id, (std::vector<unsigned char>{0x47}));
    EXPECT_FALSE(Pkcs11KeySource::parseUri("pkcs11:token=x").valid) << "no key named";
    EXPECT_FALSE(Pkcs11KeySource::parseUri("pkcs11:id=%4").valid);
    EXPECT_FALSE(Pkcs11KeySource::parseUri("file:/etc/key").valid);
}

TEST(Pkcs11KeySource, DebianPlainDerQuirkIsBridgedByAConfiguredCertificate) {
    demail::test::PcscSimulator sim({"--cert-form", "der"});
    Pkcs11KeySource withoutCert({kOpenSc, kCardUri, writePin(sim.dir(), "123456")});
    const auto r = withoutCert.load();
    EXPECT_EQ(r.kind, KeyErrorKind::KeyNotFound) << r.message;
    Pkcs11KeySource withCert({kOpenSc, kCardUri, writePin(sim.dir(), "123456"), sim.authCertPem()});
    ASSERT_TRUE(withCert.load().ok());
    EVP_PKEY* pub = publicKeyOf(sim.authCertPem());
    EXPECT_TRUE(signsAndVerifies(withCert.privateKey(), pub));
    EVP_PKEY_free(pub);
}
