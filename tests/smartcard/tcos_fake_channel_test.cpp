// TcosCard against a scripted channel: exactly which APDUs go out, and how answers are read.
#include <gtest/gtest.h>

#include <deque>

#include "demail/smartcard/card_profile.h"
#include "demail/smartcard/tcos.h"

using namespace demail::smartcard;

namespace {

class ScriptedChannel : public CardChannel {
  public:
    Result<ResponseApdu> transmit(const CommandApdu& c) override {
        sent.push_back(toHex(c.encode()));
        if (answers.empty())
            return cardError(CardErrorKind::CardRemoved, "no answer scripted");
        auto raw = answers.front();
        answers.pop_front();
        return *ResponseApdu::parse(raw);
    }
    std::deque<Bytes> answers;
    std::vector<std::string> sent;
};

const CardProfile& netkey() {
    return knownProfiles().front();
}

Bytes ok(Bytes data = {}) {
    data.push_back(0x90);
    data.push_back(0x00);
    return data;
}

}  // namespace

TEST(TcosFake, CertificateWithOidPrefixIsCutOut) {
    ScriptedChannel ch;
    // File: 30 82 00 0D | 06 03 55 04 24 | 30 82 00 04 DE AD BE EF
    ch.answers = {ok(),
                  {0x30, 0x82, 0x00, 0x0D, 0x06, 0x03, 0x55, 0x04, 0x24, 0x30, 0x82, 0x00, 0x04,
                   0xDE, 0xAD, 0xBE, 0xEF, 0x62, 0x82}};
    TcosCard card(ch, netkey());
    auto cert = card.readCertificate(0xC500);
    ASSERT_TRUE(cert.ok()) << cert.error().message;
    EXPECT_EQ(toHex(cert.value()), "30 82 00 04 DE AD BE EF");
    EXPECT_EQ(ch.sent[0], "00 A4 08 0C 04 DF 01 C5 00");
    EXPECT_EQ(ch.sent[1], "00 B0 00 00 00");
}

TEST(TcosFake, PlainDerCertificateAcrossSeveralReads) {
    ScriptedChannel ch;
    Bytes file = {0x30, 0x82, 0x01, 0x2C};  // 300 bytes of content + 4
    file.insert(file.end(), 300, 0x42);
    ch.answers = {ok(), ok(Bytes(file.begin(), file.begin() + 256)), [&] {
                      Bytes b(file.begin() + 256, file.end());
                      b.push_back(0x62);
                      b.push_back(0x82);
                      return b;
                  }()};
    TcosCard card(ch, netkey());
    auto cert = card.readCertificate(0xC000);
    ASSERT_TRUE(cert.ok()) << cert.error().message;
    EXPECT_EQ(cert.value(), file);
    EXPECT_EQ(ch.sent[2], "00 B0 01 00 00");
}

TEST(TcosFake, PinStatusReadsThePwddRecordAndAnEmptyVerify) {
    ScriptedChannel ch;
    ch.answers = {ok(), ok({0xA0, 0x07, 0x83, 0x01, 0x83, 0x90, 0x02, 0x03, 0x02}), {0x63, 0xC2}};
    TcosCard card(ch, netkey());
    auto st = card.pinStatus(0x83);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st.value().state, PinState::Ready);
    EXPECT_EQ(st.value().triesLeft, 2);
    EXPECT_EQ(st.value().maxTries, 3);
    EXPECT_EQ(ch.sent[0], "00 A4 08 0C 04 DF 01 50 49");
    EXPECT_EQ(ch.sent[2], "00 20 00 83") << "the status query sends no PIN";
}

TEST(TcosFake, InitialiseSendsSixZerosThenThePinOnlyWhenSealed) {
    ScriptedChannel ch;
    ch.answers = {ok(), {0x69, 0x85}, ok()};
    TcosCard card(ch, netkey());
    ASSERT_TRUE(card.initialise(0x83, Secret("123456")).ok());
    EXPECT_EQ(ch.sent[2], "00 24 00 83 0C 00 00 00 00 00 00 31 32 33 34 35 36");

    ScriptedChannel notSealed;
    notSealed.answers = {ok(), {0x63, 0xC3}};
    TcosCard card2(notSealed, netkey());
    auto r = card2.initialise(0x83, Secret("123456"));
    EXPECT_EQ(r.error().kind, CardErrorKind::NotAllowed);
    EXPECT_EQ(notSealed.sent.size(), 2u) << "no CHANGE REFERENCE DATA on a PIN that is set";
}

TEST(TcosFake, UnblockReportsWrongPukWithItsTries) {
    ScriptedChannel ch;
    ch.answers = {ok(), {0x63, 0xC9}};
    TcosCard card(ch, netkey());
    auto r = card.unblock(0x83, Secret("00000000"), Secret("123456"));
    EXPECT_EQ(r.error().kind, CardErrorKind::WrongPin);
    EXPECT_NE(r.error().message.find("wrong PUK, 9 PUK tries left"), std::string::npos);
    EXPECT_EQ(ch.sent[1].substr(0, 14), "00 2C 00 83 0E");
}

TEST(TcosFake, CardRemovedMidwayIsReportedWithTheOperation) {
    ScriptedChannel ch;  // no answers at all
    TcosCard card(ch, netkey());
    auto r = card.serial();
    EXPECT_EQ(r.error().kind, CardErrorKind::CardRemoved);
    EXPECT_NE(r.error().message.find("reading the serial number"), std::string::npos);
}

TEST(TcosFake, PinsOfImpossibleLengthAreRefusedBeforeAnythingIsSent) {
    ScriptedChannel ch;
    TcosCard card(ch, netkey());
    EXPECT_EQ(card.verify(0x83, Secret("12345")).error().kind, CardErrorKind::Protocol);
    EXPECT_EQ(card.verify(0x83, Secret("12345678901234567")).error().kind, CardErrorKind::Protocol);
    EXPECT_EQ(card.change(0x83, Secret("1234"), Secret("123456")).error().kind,
              CardErrorKind::Protocol);
    EXPECT_EQ(card.change(0x83, Secret("123456"), Secret("1234")).error().kind,
              CardErrorKind::Protocol);
    auto shortPuk = card.unblock(0x83, Secret("1234567"), Secret("123456"));
    EXPECT_EQ(shortPuk.error().kind, CardErrorKind::Protocol);
    EXPECT_NE(shortPuk.error().message.find("the PUK must have 8 to 16"), std::string::npos)
        << shortPuk.error().message;
    EXPECT_EQ(card.initialise(0x83, Secret("12345")).error().kind, CardErrorKind::Protocol);
    EXPECT_TRUE(ch.sent.empty()) << "nothing reaches the card";
}
