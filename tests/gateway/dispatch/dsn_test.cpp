#include "demail/gateway/dsn.h"

#include <gtest/gtest.h>

#include <sstream>

using namespace demail::gateway;
using namespace std::chrono_literals;

namespace {

const auto kArrival =
    std::chrono::system_clock::from_time_t(1'795'348'609);  // 22 Nov 2026 11:56:49
const auto kNow = kArrival + 24h;

const std::string kOriginal =
    "From: a@firma.de\r\nTo: b@behoerde.de-mail.de\r\nSubject: Antrag\r\n\r\nBody line\r\n";

DsnReport failedReport() {
    DsnReport r;
    r.reportingHost = "gw.firma.de";
    r.queueId = "Q123";
    r.envelopeSender = "a@firma.de";
    r.arrival = kArrival;
    r.recipients.push_back({"b@behoerde.de-mail.de", "rfc822;b@behoerde.de-mail.de",
                            DsnAction::Failed, "5.1.1", "recipient unknown at provider",
                            "api.provider.example"});
    return r;
}

std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
        ++n;
    return n;
}

}  // namespace

TEST(Dsn, FailureIsAThreePartReportWithTheWholeOriginal) {
    std::istringstream original(kOriginal);
    const auto dsn = buildDsn(failedReport(), original, kOriginal.size(), kNow);
    ASSERT_TRUE(dsn);
    EXPECT_EQ(dsn->envelopeTo, "a@firma.de");
    const auto& d = dsn->data;
    EXPECT_NE(d.find("Subject: Undelivered Mail Returned to Sender\r\n"), std::string::npos);
    EXPECT_NE(d.find("From: Mail Delivery System <MAILER-DAEMON@gw.firma.de>\r\n"),
              std::string::npos);
    EXPECT_NE(d.find("Auto-Submitted: auto-replied\r\n"), std::string::npos);
    EXPECT_NE(d.find("report-type=delivery-status"), std::string::npos);
    EXPECT_NE(d.find("Reporting-MTA: dns; gw.firma.de\r\n"), std::string::npos);
    EXPECT_NE(d.find("Arrival-Date: Sun, 22 Nov 2026 11:56:49 +0000\r\n"), std::string::npos);
    EXPECT_NE(d.find("Final-Recipient: rfc822; b@behoerde.de-mail.de\r\n"), std::string::npos);
    EXPECT_NE(d.find("Original-Recipient: rfc822;b@behoerde.de-mail.de\r\n"), std::string::npos);
    EXPECT_NE(d.find("Action: failed\r\nStatus: 5.1.1\r\n"), std::string::npos);
    EXPECT_NE(d.find("Content-Type: message/rfc822\r\n"), std::string::npos);
    EXPECT_NE(d.find("Body line\r\n"), std::string::npos);
    // Opening boundary of three parts plus the closing one, and in the header.
    const std::string boundary = "Q123." + std::to_string(1'795'348'609 + 86400) + "/gw.firma.de";
    EXPECT_EQ(count(d, "--" + boundary + "\r\n"), 3u);
    EXPECT_EQ(count(d, "--" + boundary + "--\r\n"), 1u);
    EXPECT_EQ(d.find("\n\n"), std::string::npos) << "every line ends in CRLF";
}

TEST(Dsn, NullSenderGetsNoBounce) {
    auto r = failedReport();
    r.envelopeSender.clear();
    std::istringstream original(kOriginal);
    EXPECT_FALSE(buildDsn(r, original, kOriginal.size(), kNow));
}

TEST(Dsn, RetHdrsAndLargeOriginalsReturnHeadersOnly) {
    for (bool large : {false, true}) {
        auto r = failedReport();
        if (!large)
            r.ret = DsnReturn::Headers;
        std::istringstream original(kOriginal);
        const auto dsn =
            buildDsn(r, original, large ? kDsnFullReturnLimit + 1 : kOriginal.size(), kNow);
        ASSERT_TRUE(dsn);
        EXPECT_NE(dsn->data.find("Content-Type: text/rfc822-headers\r\n"), std::string::npos);
        EXPECT_NE(dsn->data.find("Subject: Antrag\r\n"), std::string::npos);
        EXPECT_EQ(dsn->data.find("Body line"), std::string::npos);
        EXPECT_EQ(dsn->data.find("only its headers are returned") != std::string::npos, large);
    }
}

TEST(Dsn, DelayWarningSaysWarningOnlyAndUntilWhen) {
    auto r = failedReport();
    r.recipients[0].action = DsnAction::Delayed;
    r.recipients[0].status = "4.4.1";
    r.willRetryUntil = kArrival + 24h;
    std::istringstream original(kOriginal);
    const auto dsn = buildDsn(r, original, kOriginal.size(), kArrival + 4h);
    ASSERT_TRUE(dsn);
    EXPECT_NE(dsn->data.find("Subject: Delayed Mail (still being retried)\r\n"), std::string::npos);
    EXPECT_NE(dsn->data.find("THIS IS A WARNING ONLY"), std::string::npos);
    EXPECT_NE(dsn->data.find("Action: delayed\r\n"), std::string::npos);
    EXPECT_NE(dsn->data.find("Will-Retry-Until: Mon, 23 Nov 2026 11:56:49 +0000\r\n"),
              std::string::npos);
    EXPECT_NE(dsn->data.find("text/rfc822-headers"), std::string::npos);
}

TEST(Dsn, EnvelopeValuesCannotInjectHeaders) {
    auto r = failedReport();
    r.envid = "abc\r\nBcc: victim@example.org";
    r.recipients[0].diagnostic = "bad\r\nX-Evil: 1";
    std::istringstream original(kOriginal);
    const auto dsn = buildDsn(r, original, kOriginal.size(), kNow);
    ASSERT_TRUE(dsn);
    EXPECT_EQ(dsn->data.find("\r\nBcc:"), std::string::npos);
    EXPECT_EQ(dsn->data.find("\r\nX-Evil:"), std::string::npos);
}

TEST(Dsn, LfOnlyOriginalIsNormalisedToCrlf) {
    const std::string lf = "Subject: x\n\nline\n";
    std::istringstream original(lf);
    const auto dsn = buildDsn(failedReport(), original, lf.size(), kNow);
    ASSERT_TRUE(dsn);
    EXPECT_NE(dsn->data.find("Subject: x\r\n\r\nline\r\n"), std::string::npos);
    EXPECT_EQ(dsn->data.find("\n\n"), std::string::npos);
}

TEST(Dsn, NotifyParameter) {
    EXPECT_TRUE(notifyWants("", DsnAction::Failed));
    EXPECT_TRUE(notifyWants("", DsnAction::Delayed));
    EXPECT_FALSE(notifyWants("", DsnAction::Delivered));
    EXPECT_FALSE(notifyWants("NEVER", DsnAction::Failed));
    EXPECT_TRUE(notifyWants("success,failure", DsnAction::Delivered));
    EXPECT_FALSE(notifyWants("SUCCESS,FAILURE", DsnAction::Delayed));
    EXPECT_TRUE(notifyWants("DELAY", DsnAction::Delayed));
}
