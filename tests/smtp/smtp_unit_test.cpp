#include <gtest/gtest.h>

#include "demail/gateway/intake.h"
#include "demail/smtp/auth.h"
#include "demail/smtp/command.h"
#include "demail/smtp/reply.h"

using namespace demail::smtp;

TEST(Command, VerbIsCaseInsensitive) {
    auto c = parseCommand("mail FROM:<a@b.de>");
    EXPECT_EQ(c.verb, "MAIL");
    EXPECT_EQ(c.argument, "FROM:<a@b.de>");
    EXPECT_EQ(parseCommand("QUIT").argument, "");
}

TEST(Command, PathsAndParameters) {
    std::string err;
    auto p = parsePath("FROM:<Sender@Firma.DE> SIZE=100 BODY=8BITMIME RET=HDRS", "FROM:", err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->address, "Sender@firma.de");
    EXPECT_EQ(p->params.at("SIZE"), "100");
    EXPECT_EQ(p->params.at("RET"), "HDRS");
    auto nullPath = parsePath("FROM:<>", "FROM:", err);
    ASSERT_TRUE(nullPath);
    EXPECT_TRUE(nullPath->address.empty());
    auto r = parsePath("to:<b@x.de-mail.de> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40x", "TO:", err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(*decodeXtext(r->params.at("ORCPT")), "rfc822;b@x");
}

TEST(Command, OpenRelayTricksAreRefused) {
    std::string err;
    for (const char* arg :
         {"TO:<@evil.com:user@victim.com>", "TO:<user%victim.com@firma.de>",
          "TO:<victim.com!user@firma.de>", "TO:<\"user@victim.com\"@firma.de>",
          "TO:<user@[192.0.2.1]>", "TO:<user@firma.de@evil.com>", "TO: <user@firma.de>",
          "TO:user@firma.de", "TO:<user>", "TO:<a@b.de> X=1 X=2"}) {
        EXPECT_FALSE(parsePath(arg, "TO:", err)) << arg;
    }
}

TEST(Reply, OneTableWithEnhancedCodes) {
    EXPECT_EQ(formatReply(Reply::RelayDenied), "554 5.7.1 Relay access denied\r\n");
    EXPECT_EQ(formatReply(Reply::NoSpace),
              "452 4.3.1 Insufficient system storage, try again later\r\n");
    EXPECT_EQ(formatReply(Reply::StartData), "354 End data with <CR><LF>.<CR><LF>\r\n");
    EXPECT_EQ(formatReply(Reply::RecipientRefused, "a\r\nb"), "550 5.7.1 a  b\r\n");
}

TEST(Auth, Pbkdf2HashesVerifyAndAreSalted) {
    const std::string h1 = hashPassword("geheim", 1000), h2 = hashPassword("geheim", 1000);
    EXPECT_NE(h1, h2);
    EXPECT_EQ(h1.rfind("$pbkdf2-sha256$1000$", 0), 0u);
    EXPECT_TRUE(verifyPassword(h1, "geheim"));
    EXPECT_FALSE(verifyPassword(h1, "Geheim"));
    EXPECT_FALSE(verifyPassword("$md5$x$y$z", "geheim"));
}

TEST(Auth, ThrottleSlowsThenBlocks) {
    AuthThrottle t;
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(t.begin("192.0.2.7"), AuthThrottle::Verdict::Allow);
        t.end("192.0.2.7", "u" + std::to_string(i), false);
    }
    for (int i = 3; i < 10; ++i) {
        EXPECT_EQ(t.begin("192.0.2.7"), AuthThrottle::Verdict::Slow);
        t.end("192.0.2.7", "u" + std::to_string(i), false);
    }
    EXPECT_EQ(t.begin("192.0.2.7"), AuthThrottle::Verdict::Block);
    EXPECT_EQ(t.begin("192.0.2.8"), AuthThrottle::Verdict::Allow);
}

TEST(Auth, ThrottleCountsAttemptsInFlight) {
    // 50 parallel sessions from one address: only 10 may even try before the first fails.
    AuthThrottle t;
    int allowed = 0;
    for (int i = 0; i < 50; ++i)
        if (t.begin("192.0.2.9") != AuthThrottle::Verdict::Block)
            ++allowed;
    EXPECT_EQ(allowed, 10);
}

TEST(Auth, ThrottleSuccessResetsNothing) {
    // One good credential does not buy fresh guesses against other users.
    AuthThrottle t;
    for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 2; ++i) {
            ASSERT_NE(t.begin("192.0.2.10"), AuthThrottle::Verdict::Block) << round;
            t.end("192.0.2.10", "victim", false);
        }
        if (t.begin("192.0.2.10") == AuthThrottle::Verdict::Block)
            return;  // blocked after 10 failures, as it must be
        t.end("192.0.2.10", "attacker", true);
    }
    FAIL() << "10 failures interleaved with successes were never blocked";
}

TEST(Auth, ThrottlePerUserAcrossAddresses) {
    AuthThrottle t;
    for (int i = 0; i < 30; ++i) {
        const std::string ip = "198.51.100." + std::to_string(i);
        ASSERT_NE(t.begin(ip), AuthThrottle::Verdict::Block);
        t.end(ip, "chef", false);
    }
    EXPECT_EQ(t.checkUser("chef"), AuthThrottle::Verdict::Block);
    EXPECT_EQ(t.checkUser("other"), AuthThrottle::Verdict::Allow);
}

TEST(Intake, CidrMatching) {
    using demail::gateway::addressInCidr;
    EXPECT_TRUE(addressInCidr("10.1.2.3", "10.0.0.0/8"));
    EXPECT_FALSE(addressInCidr("11.1.2.3", "10.0.0.0/8"));
    EXPECT_TRUE(addressInCidr("127.0.0.1", "127.0.0.1/32"));
    EXPECT_FALSE(addressInCidr("127.0.0.2", "127.0.0.1/32"));
    EXPECT_TRUE(addressInCidr("192.168.1.130", "192.168.1.128/25"));
    EXPECT_TRUE(addressInCidr("2001:db8::5", "2001:db8::/32"));
    EXPECT_FALSE(addressInCidr("127.0.0.1", "2001:db8::/32"));
}
