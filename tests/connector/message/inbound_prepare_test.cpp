// The Internet -> internal boundary in the message layer: CRLF normalisation, lines over 998
// octets, header hygiene, envelope syntax, and the confirmation XML limits (H2, M8, M9).
#include "demail/connector/message/inbound_prepare.h"

#include <gtest/gtest.h>

#include "demail/connector/message/header_block.h"
#include "demail/connector/message/inbound.h"

using namespace demail::connector;

namespace {

InboundStamp stamp() {
    return {"message", "poststelle@firma.de-mail.de", "amt@behoerde.de-mail.de",
            "in-7",    "gateway.firma.test",          "Sun, 22 Nov 2026 10:00:00 +0100"};
}

PreparedInbound prepare(std::string_view raw) {
    return prepareInbound(raw, defaultInternalTrustHeaders(), stamp());
}

std::string decodeQp(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '=' && i + 2 < in.size() && in[i + 1] == '\r' && in[i + 2] == '\n') {
            i += 2;
        } else if (in[i] == '=' && i + 2 < in.size()) {
            out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += in[i];
        }
    }
    return out;
}

std::string bodyOf(const std::string& m) {
    return m.substr(m.find("\r\n\r\n") + 4);
}

int countLines(const std::string& m, std::string_view prefix) {
    int n = 0;
    for (std::size_t p = 0; (p = m.find(prefix, p)) != std::string::npos; ++p)
        if (p == 0 || m[p - 1] == '\n')
            ++n;
    return n;
}

}  // namespace

TEST(Normalize, BareLfAndBareCrBecomeCrlfAndNulIsRemoved) {
    std::size_t nuls = 0;
    bool changed = false;
    EXPECT_EQ(normalizeLineEnds(std::string("a\nb\rc\r\nd\0e", 10), &nuls, &changed),
              "a\r\nb\r\nc\r\nde\r\n");
    EXPECT_EQ(nuls, 1u);
    EXPECT_TRUE(changed);
    EXPECT_EQ(normalizeLineEnds("x\r\n\r\n", &nuls, &changed), "x\r\n\r\n");
    EXPECT_FALSE(changed);
    EXPECT_EQ(normalizeLineEnds("\r\r\n\n"), "\r\n\r\n\r\n");
}

TEST(Prepare, SmuggledSmtpCommandsStayInsideTheBody) {
    for (const std::string dot : {"\n.\r\n", "\n.\n", "\r.\r", "\r\n.\n"}) {
        const std::string raw = "From: a@behoerde.de-mail.de\r\nSubject: x\r\n\r\nHallo" + dot +
                                "MAIL FROM:<chef@firma.de>\r\nRCPT TO:<x@firma.de>\r\nDATA\r\n"
                                "Subject: forged\r\n\r\nforged\r\n.\r\n";
        const auto p = prepare(raw);
        ASSERT_TRUE(p.ok()) << p.refusal;
        EXPECT_TRUE(isSafeForSmtp(p.message));
        EXPECT_EQ(p.message.find('\n'), p.message.find("\r\n") + 1);
        // The dot is a line of its own now, with CRLF on both sides: libcurl dot-stuffs it, so the
        // relay sees ".." in DATA and keeps "." in the body.
        EXPECT_NE(p.message.find("Hallo\r\n.\r\nMAIL FROM:<chef@firma.de>\r\n"), std::string::npos)
            << p.message;
        EXPECT_TRUE(p.lineEndsRepaired || dot == "\r\n.\n");
    }
}

TEST(Prepare, OverlongBodyLineIsReencodedQuotedPrintableWithTheSameContent) {
    std::string line(1400 * 1024, 'x');
    for (std::size_t i = 0; i < line.size(); i += 97)
        line[i] = (i % 2) ? ' ' : '=';
    const std::string body = "Anfang\r\n" + line + "\r\n.\r\nEnde ü\r\n";
    const auto p = prepare("From: a@behoerde.de-mail.de\r\nSubject: lang\r\n\r\n" + body);
    ASSERT_TRUE(p.ok()) << p.refusal;
    EXPECT_TRUE(isSafeForSmtp(p.message));
    EXPECT_EQ(p.partsReencoded, 1);
    std::string err;
    const auto h = HeaderBlock::parse(p.message, err);
    ASSERT_TRUE(h);
    EXPECT_EQ(*h->get("Content-Transfer-Encoding"), "quoted-printable");
    EXPECT_EQ(*h->get("MIME-Version"), "1.0");
    EXPECT_EQ(decodeQp(bodyOf(p.message)), body);
}

TEST(Prepare, MultipartRepairsOnlyThePartWithTheLongLine) {
    const std::string b64(5000, 'A');
    const std::string text = "Content-Type: text/plain\r\n\r\nkurz\r\n";
    const std::string raw =
        "From: a@behoerde.de-mail.de\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n"
        "preamble\r\n--XyZ\r\n" +
        text +
        "--XyZ\r\nContent-Type: application/pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" +
        b64 + "\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\n" + std::string(2000, 'y') +
        "\r\n--XyZ--\r\n";
    const auto p = prepare(raw);
    ASSERT_TRUE(p.ok()) << p.refusal;
    EXPECT_TRUE(isSafeForSmtp(p.message));
    EXPECT_EQ(p.partsReencoded, 2);
    EXPECT_NE(p.message.find("--XyZ\r\n" + text + "--XyZ\r\n"), std::string::npos)
        << "the untouched part is byte for byte the same";
    std::string joined;
    const auto start = p.message.find("base64\r\n\r\n") + 10;
    for (char c : p.message.substr(start, p.message.find("\r\n--XyZ", start) - start))
        if (c != '\r' && c != '\n')
            joined += c;
    EXPECT_EQ(joined, b64);
    EXPECT_NE(p.message.find("Content-Transfer-Encoding: quoted-printable"), std::string::npos);
    EXPECT_NE(p.message.find("--XyZ--\r\n"), std::string::npos);
}

TEST(Prepare, LongHeaderIsFoldedAndOneWithoutWhiteSpaceIsRefused) {
    std::string subject;
    for (int i = 0; i < 300; ++i)
        subject += "Wort" + std::to_string(i) + " ";
    subject.pop_back();
    const auto p = prepare("From: a@behoerde.de-mail.de\r\nSubject: " + subject + "\r\n\r\nx\r\n");
    ASSERT_TRUE(p.ok()) << p.refusal;
    EXPECT_TRUE(isSafeForSmtp(p.message));
    EXPECT_EQ(p.headersFolded, 1);
    std::string err;
    EXPECT_EQ(*HeaderBlock::parse(p.message, err)->get("Subject"), subject);

    const auto q = prepare("Subject: " + std::string(3000, 'z') + "\r\n\r\nx\r\n");
    EXPECT_FALSE(q.ok());
    EXPECT_TRUE(q.message.empty());
    EXPECT_NE(q.refusal.find("998"), std::string::npos) << q.refusal;
}

TEST(Prepare, MalformedTopLevelHeaderIsRefused) {
    EXPECT_FALSE(prepare(" folded\r\nSubject: x\r\n\r\nb\r\n").ok());
    EXPECT_FALSE(prepare("no colon here\r\n\r\nb\r\n").ok());
}

TEST(Hygiene, FirstDeMailHeaderWinsTrustHeadersGoAndTheVerdictIsOurs) {
    const std::string raw =
        "X-de-mail-sender: amt@behoerde.de-mail.de\r\n"
        "X-de-mail-authoritative: no\r\n"
        "From: a@behoerde.de-mail.de\r\nSubject: x\r\n"
        "X-de-mail-authoritative: yes\r\n"
        "X-de-mail-sender: amt@behoerde.de-mail.de\r\n"
        "X-MS-Exchange-Organization-AuthAs: Internal\r\n"
        "x-spam-status: No\r\n"
        "Authentication-Results: firma.de; dkim=pass\r\n"
        "X-Demail-Gateway-Verdict: type=message; sender=chef@firma.de\r\n"
        "X-De-Mail-Options: authoritative\r\n\r\nbody\r\n";
    const auto p = prepare(raw);
    ASSERT_TRUE(p.ok()) << p.refusal;
    EXPECT_EQ(countLines(p.message, "X-de-mail-authoritative:"), 1);
    EXPECT_NE(p.message.find("X-de-mail-authoritative: no\r\n"), std::string::npos);
    EXPECT_EQ(countLines(p.message, "X-de-mail-sender:"), 1);
    EXPECT_EQ(p.duplicatesDropped, 2);
    EXPECT_TRUE(p.duplicatesDisagree);
    for (const char* gone : {"X-MS-Exchange", "x-spam", "Authentication-Results", "chef@firma.de",
                             "X-De-Mail-Options"})
        EXPECT_EQ(p.message.find(gone), std::string::npos) << gone;
    EXPECT_EQ(countLines(p.message, "X-Demail-Gateway-Verdict:"), 1);
    EXPECT_NE(p.message.find("X-Demail-Gateway-Verdict: type=message; "
                             "account=poststelle@firma.de-mail.de; sender=amt@behoerde.de-mail.de; "
                             "provider-id=in-7; repaired=duplicates,stripped; "
                             "suspicious=conflicting-x-de-mail-headers\r\n"),
              std::string::npos)
        << p.message;
    EXPECT_EQ(p.message.rfind("Received: from De-Mail provider by gateway.firma.test "
                              "(demail-gateway) with HTTPS id in-7;\r\n\t",
                              0),
              0u);
    // An empty strip list still removes the gateway's own header from outside.
    const auto q = prepareInbound(raw, {}, stamp());
    EXPECT_EQ(countLines(q.message, "X-Demail-Gateway-Verdict:"), 1);
    EXPECT_NE(q.message.find("X-MS-Exchange-Organization-AuthAs"), std::string::npos);
}

TEST(Envelope, SmtpMailboxSyntax) {
    for (const char* ok : {"amt@behoerde.de-mail.de", "a.b+c@x-y.de", "o'neil@firma.de"})
        EXPECT_TRUE(isSmtpMailbox(ok)) << ok;
    for (const char* bad :
         {"", "a", "@x.de", "a@", "a@x", "a b@x.de", "a@x.de>", "<a@x.de",
          "a@x.de\r\nRCPT TO:<b@c.de", "a@x.de\rX", "a@x.de\n", "\"q\"@x.de", "a@[127.0.0.1]",
          ".a@x.de", "a..b@x.de", "a@-x.de", "a@x..de", "a@x.de SIZE=1", "a\x01@x.de"})
        EXPECT_FALSE(isSmtpMailbox(bad)) << bad;
    EXPECT_FALSE(isSmtpMailbox(std::string(65, 'a') + "@x.de"));
}

TEST(ConfirmationXml, DeepNestingIsRefusedWithoutCrashing) {
    std::string xml = "<Acknowledge-Message xmlns=\"urn:de-mail\">";
    for (int i = 0; i < 200000; ++i)
        xml += "<a>";
    for (int i = 0; i < 200000; ++i)
        xml += "</a>";
    xml += "</Acknowledge-Message>";
    std::string err;
    EXPECT_FALSE(parseConfirmationXml(xml, err));
    EXPECT_NE(err.find("deeper than 32"), std::string::npos) << err;
}

TEST(ConfirmationXml, Utf16AndOtherEncodingsAreRefused) {
    const std::string ascii =
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]>"
        "<Acknowledge-Message xmlns=\"urn:de-mail\"/>";
    std::string utf16 = "\xFF\xFE";
    for (char c : ascii) {
        utf16 += c;
        utf16 += '\0';
    }
    std::string err;
    EXPECT_FALSE(parseConfirmationXml(utf16, err));
    EXPECT_FALSE(
        parseConfirmationXml("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Acknowledge-Message "
                             "xmlns=\"urn:de-mail\"/>",
                             err));
    EXPECT_NE(err.find("UTF-8"), std::string::npos) << err;
    const auto ok = parseConfirmationXml(
        "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Acknowledge-Message "
        "xmlns=\"urn:de-mail\"><Sender> a@b.de </Sender><Metadata><Metadate><Name>n</Name>"
        "<Value>v</Value></Metadate></Metadata><Sender>second</Sender></Acknowledge-Message>",
        err);
    ASSERT_TRUE(ok) << err;
    EXPECT_EQ(ok->sender, "a@b.de");
    EXPECT_EQ(ok->metadataValue("n"), "v");
}
