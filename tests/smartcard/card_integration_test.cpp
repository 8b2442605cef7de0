// The smartcard library against the real pcscd and the simulated TCOS card (tests/fixture).
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <fstream>
#include <future>
#include <thread>

#include "demail/smartcard/card_profile.h"
#include "demail/smartcard/pcsc.h"
#include "demail/smartcard/tcos.h"
#include "pcsc_fixture.h"

using namespace demail::smartcard;
using demail::test::PcscSimulator;

namespace {

struct Session {
    PcscContext context;
    std::unique_ptr<PcscCard> card;
    std::unique_ptr<TcosCard> tcos;
    explicit Session(const std::string& reader = "Virtual PCD 00 00") {
        auto found = context.findReader(reader, true);
        if (!found.ok())
            throw std::runtime_error(found.error().message);
        auto c = PcscCard::connect(context, found.value());
        if (!c.ok())
            throw std::runtime_error(c.error().message);
        card = std::move(c.value());
        const CardProfile* p = profileForAtr(card->atr());
        if (!p)
            throw std::runtime_error("unknown ATR " + toHex(card->atr()));
        tcos = std::make_unique<TcosCard>(*card, *p);
    }
};

std::string subjectOf(const Bytes& der) {
    const unsigned char* p = der.data();
    X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
    if (!x)
        return "";
    char buf[256];
    X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf);
    X509_free(x);
    return buf;
}

}  // namespace

TEST(SmartcardOnSimulator, IdentityCertificatesInBothFormsAndPinStatus) {
    PcscSimulator sim;
    {
        Session s;
        EXPECT_EQ(s.tcos->profile().name, "TeleSec TCOS 3 NetKey");
        auto serial = s.tcos->serial();
        ASSERT_TRUE(serial.ok()) << serial.error().message;
        EXPECT_EQ(serial.value(), "89490170000000012345");
        for (std::uint16_t fid : {0xC000, 0xC200, 0xC500}) {
            auto cert = s.tcos->readCertificate(fid);
            ASSERT_TRUE(cert.ok()) << cert.error().message;
            EXPECT_NE(subjectOf(cert.value()).find("CN=poststelle@firma.de-mail.de"),
                      std::string::npos);
        }
        auto pin = s.tcos->pinStatus(0x83);
        ASSERT_TRUE(pin.ok()) << pin.error().message;
        EXPECT_EQ(pin.value().state, PinState::Ready);
        EXPECT_EQ(pin.value().triesLeft, 3);
        auto puk = s.tcos->pinStatus(0x01);
        ASSERT_TRUE(puk.ok());
        EXPECT_EQ(puk.value().triesLeft, 10);
    }
    sim.restartSim({"--cert-form", "der"});
    Session s;
    auto cert = s.tcos->readCertificate(0xC500);
    ASSERT_TRUE(cert.ok()) << cert.error().message;
    EXPECT_NE(subjectOf(cert.value()).find("poststelle@firma.de-mail.de"), std::string::npos)
        << "plain DER is read by our own code although Debian's OpenSC skips it";
}

TEST(SmartcardOnSimulator, WrongPinCostsExactlyOneTryAndUnblockRestores) {
    PcscSimulator sim;
    Session s;
    auto bad = s.tcos->verify(0x83, Secret("000000"));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().kind, CardErrorKind::WrongPin);
    EXPECT_EQ(bad.error().triesLeft, 2);
    EXPECT_EQ(s.tcos->pinStatus(0x83).value().triesLeft, 2);
    s.tcos->verify(0x83, Secret("000000"));
    auto last = s.tcos->verify(0x83, Secret("000000"));
    EXPECT_EQ(last.error().triesLeft, 0);
    EXPECT_EQ(s.tcos->pinStatus(0x83).value().state, PinState::Blocked);
    EXPECT_EQ(s.tcos->verify(0x83, Secret("123456")).error().kind, CardErrorKind::PinBlocked);
    auto wrongPuk = s.tcos->unblock(0x83, Secret("87654321"), Secret("654321"));
    EXPECT_EQ(wrongPuk.error().kind, CardErrorKind::WrongPin);
    EXPECT_EQ(s.tcos->pinStatus(0x01).value().triesLeft, 9);
    ASSERT_TRUE(s.tcos->unblock(0x83, Secret("12345678"), Secret("654321")).ok());
    EXPECT_TRUE(s.tcos->verify(0x83, Secret("654321")).ok());
    EXPECT_EQ(s.tcos->pinStatus(0x83).value().state, PinState::Verified);
    ASSERT_TRUE(s.tcos->change(0x83, Secret("654321"), Secret("11223344")).ok());
    EXPECT_EQ(s.tcos->change(0x83, Secret("654321"), Secret("99887766")).error().kind,
              CardErrorKind::WrongPin);
}

TEST(SmartcardOnSimulator, SealedCardIsInitialisedOnce) {
    PcscSimulator sim({"--sealed"});
    Session s;
    EXPECT_EQ(s.tcos->pinStatus(0x83).value().state, PinState::Sealed);
    EXPECT_EQ(s.tcos->verify(0x83, Secret("123456")).error().kind,
              CardErrorKind::PinNotInitialised);
    EXPECT_EQ(s.tcos->initialise(0x83, Secret("12345")).error().kind, CardErrorKind::Protocol)
        << "too short";
    ASSERT_TRUE(s.tcos->initialise(0x83, Secret("246810")).ok());
    EXPECT_EQ(s.tcos->pinStatus(0x83).value().state, PinState::Verified);
    auto again = s.tcos->initialise(0x83, Secret("135791"));
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().kind, CardErrorKind::NotAllowed);
}

TEST(SmartcardOnSimulator, OneContextSurvivesPcscdRestartAndCardRemoval) {
    PcscSimulator sim;
    PcscContext context;
    CardMonitor monitor(context, "Virtual PCD 00 00");
    auto st = monitor.current();
    EXPECT_EQ(st.presence, CardPresence::Present);

    sim.pullCard();
    st = monitor.waitForChange(st, std::chrono::seconds(10));
    EXPECT_EQ(st.presence, CardPresence::Absent);
    sim.insertCard();
    st = monitor.waitForChange(st, std::chrono::seconds(10));
    EXPECT_EQ(st.presence, CardPresence::Present);

    sim.stopPcscd();
    st = monitor.waitForChange(st, std::chrono::seconds(10));
    EXPECT_NE(st.presence, CardPresence::Present);
    sim.startPcscd();
    st = monitor.waitForChange(st, std::chrono::seconds(15));
    EXPECT_EQ(st.presence, CardPresence::Present);

    auto reader = context.findReader("Virtual PCD", true);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    auto card = PcscCard::connect(context, reader.value());
    ASSERT_TRUE(card.ok()) << card.error().message;
    TcosCard tcos(*card.value(), *profileForAtr(card.value()->atr()));
    EXPECT_TRUE(tcos.serial().ok()) << "the same PcscContext works after pcscd came back";
}

TEST(SmartcardOnSimulator, CardPulledMidOperationGivesAClearError) {
    PcscSimulator sim({"--remove-after", "3"});
    Session s;
    auto r = s.tcos->readCertificate(0xC500);  // select + several reads: the card leaves
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().kind == CardErrorKind::CardRemoved ||
                r.error().kind == CardErrorKind::NoCard)
        << r.error().message;
}

// L5: a card (or reader) that answers 6Cxx ("wrong Le, repeat with Le=xx") to a PIN command must
// not get the PIN a second time: with a wrong PIN that would cost two tries.
TEST(SmartcardOnSimulator, APinCommandIsNeverRepeatedOnWrongLe) {
    PcscSimulator sim({"--wrong-le-on-pin"});
    Session s;
    auto r = s.tcos->verify(0x83, Secret("000000"));
    EXPECT_FALSE(r.ok());
    std::ifstream log(sim.dir() + "/apdu.log");
    int verifies = 0;
    for (std::string line; std::getline(log, line);)
        verifies += line.rfind("> 00 20 00 83 [", 0) == 0;
    EXPECT_EQ(verifies, 1);
}

TEST(SmartcardOnSimulator, MonitorWaitEndsOnCancel) {
    PcscSimulator sim;
    PcscContext context;
    CardMonitor monitor(context, "Virtual PCD");
    const auto known = monitor.current();
    ASSERT_EQ(known.presence, CardPresence::Present);
    EXPECT_FALSE(known.cancelled);

    // Nothing changes on the card: only cancel() can end this wait before ctest's timeout.
    auto waiting = std::async(
        std::launch::async, [&] { return monitor.waitForChange(known, std::chrono::minutes(30)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let it block in pcscd
    monitor.cancel();
    const auto ended = waiting.get();
    EXPECT_TRUE(ended.cancelled);
    EXPECT_EQ(ended.presence, CardPresence::Present);

    monitor.cancel();  // a cancel before the wait is not lost
    EXPECT_TRUE(monitor.waitForChange(known, std::chrono::minutes(30)).cancelled);
    // ...and is consumed: the next wait sees the real change.
    sim.pullCard();
    const auto pulled = monitor.waitForChange(known, std::chrono::seconds(20));
    EXPECT_FALSE(pulled.cancelled);
    EXPECT_EQ(pulled.presence, CardPresence::Absent);
}
