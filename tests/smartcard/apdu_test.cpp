#include <gtest/gtest.h>

#include "demail/smartcard/apdu.h"
#include "demail/smartcard/card_profile.h"

using namespace demail::smartcard;

TEST(Apdu, EncodesShortAndExtendedForms) {
    EXPECT_EQ(toHex(CommandApdu{0, 0x20, 0, 0x83, {}, std::nullopt}.encode()), "00 20 00 83");
    EXPECT_EQ(toHex(CommandApdu{0, 0xB0, 0, 0, {}, 256}.encode()), "00 B0 00 00 00");
    EXPECT_EQ(toHex(CommandApdu{0, 0xA4, 8, 0x0C, {0xDF, 0x01}, std::nullopt}.encode()),
              "00 A4 08 0C 02 DF 01");
    CommandApdu pso{0, 0x2A, 0x80, 0x86, Bytes(257, 0xAA), 256};
    const Bytes e = pso.encode();
    ASSERT_EQ(e.size(), 4u + 3 + 257 + 2);
    EXPECT_EQ(toHex(Bytes(e.begin(), e.begin() + 7)), "00 2A 80 86 00 01 01");
    EXPECT_EQ(toHex(Bytes(e.end() - 2, e.end())), "01 00");
}

TEST(Apdu, ParsesResponses) {
    auto r = ResponseApdu::parse({0x5A, 0x01, 0x63, 0xC2});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->sw, 0x63C2);
    EXPECT_EQ(r->data, (Bytes{0x5A, 0x01}));
    EXPECT_FALSE(ResponseApdu::parse({0x90}));
}

TEST(StatusWords, OneTableMapsToKindsAndMessages) {
    auto wrong = errorFor(0x63C1, "verifying the PIN");
    EXPECT_EQ(wrong.kind, CardErrorKind::WrongPin);
    EXPECT_EQ(wrong.triesLeft, 1);
    EXPECT_EQ(wrong.message, "verifying the PIN: wrong PIN, 1 try left");
    EXPECT_EQ(errorFor(0x6983, "x").kind, CardErrorKind::PinBlocked);
    EXPECT_EQ(errorFor(0x6985, "x").kind, CardErrorKind::PinNotInitialised);
    EXPECT_EQ(errorFor(0x6982, "x").kind, CardErrorKind::NotAllowed);
    EXPECT_EQ(errorFor(0x6A82, "x").kind, CardErrorKind::NotFound);
    auto unknown = errorFor(0x6FAA, "reading");
    EXPECT_EQ(unknown.kind, CardErrorKind::Protocol);
    EXPECT_NE(unknown.message.find("6FAA"), std::string::npos);
}

TEST(Tlv, ParsesNestedAndLongForms) {
    auto t = parseTlvs({0xA0, 0x07, 0x83, 0x01, 0x83, 0x90, 0x02, 0x03, 0x02});
    ASSERT_TRUE(t);
    ASSERT_EQ(t->size(), 1u);
    auto inner = parseTlvs((*t)[0].value);
    ASSERT_TRUE(inner);
    EXPECT_EQ(findTag(*inner, 0x90)->value, (Bytes{0x03, 0x02}));
    Bytes longForm = {0x30, 0x82, 0x01, 0x00};
    longForm.insert(longForm.end(), 256, 0x11);
    auto l = parseTlvs(longForm);
    ASSERT_TRUE(l);
    EXPECT_EQ((*l)[0].value.size(), 256u);
    EXPECT_FALSE(parseTlvs({0x5A, 0x05, 0x01}));        // length beyond the data
    EXPECT_FALSE(parseTlvs({0x5A, 0x83, 0, 0, 0, 1}));  // unsupported length form
}

TEST(Profiles, AtrSelectsTheNetKeyProfileAndUnknownIsRefused) {
    const Bytes atr = {0x3B, 0xBF, 0x96, 0x00, 0x81, 0x31, 0xFE, 0x5D, 0x00, 0x64, 0x04, 0x11,
                       0x03, 0x01, 0x31, 0xC0, 0x73, 0xF7, 0x01, 0xD0, 0x00, 0x90, 0x00, 0x7D};
    const CardProfile* p = profileForAtr(atr);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->authPinRef, 0x83);
    EXPECT_EQ(p->certificate(0xC500)->keyRef, 0x82);
    // The TCOS 3 Signature Card V2.0 (ECC) that OpenSC does not support either.
    EXPECT_EQ(profileForAtr({0x3b, 0x9f, 0x96, 0x81, 0x31, 0xfe, 0x9d, 0x00, 0x64, 0x05, 0xa0, 0x03,
                             0x04, 0x31, 0xc0, 0x73, 0xf7, 0x01, 0xd0, 0x00, 0x90, 0x00, 0x28}),
              nullptr);
}
