// The simulator's own APDU parsing and card logic, without pcscd (OpenSC judges it in the
// integration tests next to this file).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <filesystem>

#include "apdu.h"
#include "card_keys.h"
#include "tcos_card.h"

using namespace demail::sim;

namespace {

std::uint16_t swOf(const Bytes& r) {
    return static_cast<std::uint16_t>((r[r.size() - 2] << 8) | r.back());
}

Bytes ascii(const std::string& s) {
    return Bytes(s.begin(), s.end());
}

Bytes cmd(std::initializer_list<std::uint8_t> header, const Bytes& data = {}) {
    Bytes c(header);
    if (!data.empty()) {
        c.push_back(static_cast<std::uint8_t>(data.size()));
        c.insert(c.end(), data.begin(), data.end());
    }
    return c;
}

class Card : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        char t[] = "/tmp/demail-simcard-XXXXXX";
        dir_ = mkdtemp(t);
        std::string err;
        keys_ = CardKeys::loadOrCreate(dir_, "poststelle@firma.de-mail.de", err).release();
        ASSERT_NE(keys_, nullptr) << err;
    }
    static void TearDownTestSuite() {
        delete keys_;
        std::filesystem::remove_all(dir_);
    }
    void SetUp() override { card_ = std::make_unique<TcosCard>(*keys_, state(), form(), nullptr); }
    virtual CardState state() { return CardState::fresh(false, "123456", "12345678"); }
    virtual CertForm form() { return CertForm::OidPrefixed; }
    Bytes run(const Bytes& c) { return card_->process(c); }
    void selectPwdd() {
        ASSERT_EQ(swOf(run(cmd({0, 0xA4, 8, 0x0C}, {0xDF, 1, 0x50, 0x49}))), 0x9000);
    }

    static inline std::string dir_;
    static inline CardKeys* keys_ = nullptr;
    std::unique_ptr<TcosCard> card_;
};

class SealedCard : public Card {
    CardState state() override { return CardState::fresh(true, "", "12345678"); }
};

}  // namespace

TEST(Apdu, ParsesShortAndExtendedCases) {
    auto c1 = parseApdu({0x00, 0x20, 0x00, 0x83});
    ASSERT_TRUE(c1);
    EXPECT_TRUE(c1->data.empty());
    EXPECT_FALSE(c1->le);
    auto c2 = parseApdu({0x00, 0xB0, 0x00, 0x00, 0x00});
    ASSERT_TRUE(c2);
    EXPECT_EQ(*c2->le, 256u);
    auto c4 = parseApdu({0x00, 0xA4, 0x08, 0x04, 0x02, 0x2F, 0x02, 0x00});
    ASSERT_TRUE(c4);
    EXPECT_EQ(c4->data, (Bytes{0x2F, 0x02}));
    EXPECT_EQ(*c4->le, 256u);
    Bytes ext = {0x00, 0x2A, 0x80, 0x86, 0x00, 0x01, 0x01};
    ext.insert(ext.end(), 257, 0xAB);
    ext.push_back(0x01);
    ext.push_back(0x00);
    auto e = parseApdu(ext);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->extended);
    EXPECT_EQ(e->data.size(), 257u);
    EXPECT_EQ(*e->le, 256u);
    EXPECT_FALSE(parseApdu({0x00, 0xA4, 0x08}));
    EXPECT_FALSE(parseApdu({0x00, 0xA4, 0x08, 0x04, 0x05, 0x01}));  // Lc longer than the data
}

TEST_F(Card, SerialFromEfGdo) {
    EXPECT_EQ(swOf(run(cmd({0, 0xA4, 8, 0x0C}, {0x2F, 0x02}))), 0x9000);
    const Bytes r = run({0, 0xB0, 0, 0, 0x0C});
    ASSERT_EQ(swOf(r), 0x9000);
    EXPECT_EQ(Bytes(r.begin(), r.begin() + 4), (Bytes{0x5A, 0x0A, 0x89, 0x49}));
}

TEST_F(Card, SelectByAidAnswersFcpWithTheDfFid) {
    const Bytes r = run(cmd({0, 0xA4, 4, 4}, {0xD2, 0x76, 0, 0, 3, 1, 2}));
    ASSERT_EQ(swOf(r), 0x9000);
    EXPECT_EQ(r[0], 0x62);
    const std::string s = hex(r);
    EXPECT_NE(s.find("83 02 DF 01"), std::string::npos) << s;
    EXPECT_EQ(swOf(run(cmd({0, 0xA4, 8, 4}, {0x2F, 0x00}))), 0x6A82);
}

TEST_F(Card, PwddRecordCarriesTheRetryCounterLast) {
    selectPwdd();
    const Bytes r = run({0, 0xB2, 1, 4, 0});
    EXPECT_EQ(Bytes(r.begin(), r.end() - 2),
              (Bytes{0xA0, 0x07, 0x83, 0x01, 0x83, 0x90, 0x02, 3, 3}));
    EXPECT_EQ(swOf(run({0, 0xB2, 3, 4, 0})), 0x6A83);
}

TEST_F(Card, WrongPinCountsDownBlocksAndPukUnblocks) {
    selectPwdd();
    EXPECT_EQ(swOf(run({0, 0x20, 0, 0x83})), 0x63C3);
    EXPECT_EQ(swOf(run(cmd({0, 0x20, 0, 0x83}, ascii("000000")))), 0x63C2);
    EXPECT_EQ(swOf(run(cmd({0, 0x20, 0, 0x83}, ascii("000000")))), 0x63C1);
    EXPECT_EQ(swOf(run(cmd({0, 0x20, 0, 0x83}, ascii("000000")))), 0x63C0);
    EXPECT_EQ(swOf(run(cmd({0, 0x20, 0, 0x83}, ascii("123456")))), 0x6983);
    EXPECT_EQ(swOf(run(cmd({0, 0x2C, 0, 0x83}, ascii("12345678654321")))), 0x9000);
    EXPECT_EQ(swOf(run(cmd({0, 0x20, 0, 0x83}, ascii("654321")))), 0x9000);
    EXPECT_EQ(swOf(run({0, 0x20, 0, 0x83})), 0x9000) << "verified status";
    card_->powerOff();
    EXPECT_EQ(swOf(run({0, 0x20, 0, 0x83})), 0x63C3) << "reset forgets the security status";
}

TEST_F(Card, ChangeNeedsTheOldPin) {
    EXPECT_EQ(swOf(run(cmd({0, 0x24, 0, 0x83}, ascii("111111222222")))), 0x63C2);
    EXPECT_EQ(swOf(run(cmd({0, 0x24, 0, 0x83}, ascii("123456222222")))), 0x9000);
    EXPECT_EQ(swOf(run(cmd({0, 0x20, 0, 0x83}, ascii("222222")))), 0x9000);
    EXPECT_EQ(swOf(run(cmd({0, 0x24, 0, 0x83}, ascii("22222212")))), 0x6A80) << "new PIN too short";
}

TEST_F(SealedCard, NullPinInitialisationOnce) {
    EXPECT_EQ(swOf(run({0, 0x20, 0, 0x83})), 0x6985);
    EXPECT_EQ(swOf(run(cmd({0, 0x20, 0, 0x83}, ascii("123456")))), 0x6985);
    Bytes init(6, 0);
    const Bytes pin = ascii("135790");
    init.insert(init.end(), pin.begin(), pin.end());
    EXPECT_EQ(swOf(run(cmd({0, 0x24, 0, 0x83}, init))), 0x9000);
    EXPECT_EQ(swOf(run(cmd({0, 0x20, 0, 0x83}, ascii("135790")))), 0x9000);
    EXPECT_NE(swOf(run(cmd({0, 0x24, 0, 0x83}, init))), 0x9000);
    EXPECT_EQ(swOf(run({0, 0x20, 0, 0x81})), 0x6985) << "other PINs stay sealed";
}

TEST_F(Card, SignViaDecipherVerifiesWithTheAuthCertificate) {
    // DigestInfo for SHA-256 of "abc", PKCS#1 type 1 padded to 256 bytes, indicator byte first.
    const unsigned char prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_Digest("abc", 3, digest, &dlen, EVP_sha256(), nullptr);
    Bytes info(prefix, prefix + sizeof prefix);
    info.insert(info.end(), digest, digest + 32);
    Bytes block = {0x00, 0x01};
    block.insert(block.end(), 256 - 3 - info.size(), 0xFF);
    block.push_back(0x00);
    block.insert(block.end(), info.begin(), info.end());
    Bytes pso = {0x00, 0x2A, 0x80, 0x86, 0x00, 0x01, 0x01, 0x02};
    pso.insert(pso.end(), block.begin(), block.end());
    pso.push_back(0x01);
    pso.push_back(0x00);

    EXPECT_EQ(swOf(run(pso)), 0x6985) << "no key chosen";
    ASSERT_EQ(swOf(run(cmd({0, 0x22, 0x41, 0xB8}, {0x84, 0x01, 0x82}))), 0x9000);
    EXPECT_EQ(swOf(run(pso)), 0x6982) << "PIN 0x83 not verified";
    ASSERT_EQ(swOf(run(cmd({0, 0x20, 0, 0x81}, ascii("123456")))), 0x9000);
    EXPECT_EQ(swOf(run(pso)), 0x6982) << "PIN 0x81 does not unlock key 0x82";
    ASSERT_EQ(swOf(run(cmd({0, 0x20, 0, 0x83}, ascii("123456")))), 0x9000);
    const Bytes r = run(pso);
    ASSERT_EQ(swOf(r), 0x9000);
    ASSERT_EQ(r.size(), 258u);

    const Bytes der = keys_->certificateDer(0xC500);
    const unsigned char* p = der.data();
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
    ASSERT_NE(cert, nullptr);
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    ASSERT_EQ(EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, X509_get0_pubkey(cert)), 1);
    EXPECT_EQ(EVP_DigestVerify(md, r.data(), 256, reinterpret_cast<const unsigned char*>("abc"), 3),
              1);
    EVP_MD_CTX_free(md);
    X509_free(cert);
}

TEST_F(Card, CertificateFileIsOidPrefixed) {
    ASSERT_EQ(swOf(run(cmd({0, 0xA4, 8, 0x0C}, {0xDF, 0x01, 0xC5, 0x00}))), 0x9000);
    const Bytes r = run({0, 0xB0, 0, 0, 20});
    EXPECT_EQ(Bytes(r.begin(), r.begin() + 11),
              (Bytes{0x30, 0x82, r[2], r[3], 0x06, 0x03, 0x55, 0x04, 0x24, 0x30, 0x82}));
}

TEST(CardSecrets, PinCommandsAreFlaggedForTheTrace) {
    EXPECT_TRUE(TcosCard::carriesSecret({0, 0x20, 0, 0x83, 6, '1', '2', '3', '4', '5', '6'}));
    EXPECT_TRUE(TcosCard::carriesSecret({0, 0x2C, 0, 0x83, 1, '1'}));
    EXPECT_FALSE(TcosCard::carriesSecret({0, 0x20, 0, 0x83}));
    EXPECT_FALSE(TcosCard::carriesSecret({0, 0xB0, 0, 0, 0}));
}
