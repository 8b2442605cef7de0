// The sending authority on its own: the policy file's rules, the options a message may ask for,
// what the provider says of the account, the daily limits and their survival across a restart.
// The same behaviour through the real SMTP intake and provider:
// tests/gateway/e2e/sending_policy.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "demail/gateway/intake.h"
#include "demail/gateway/sending_authority.h"
#include "demail/smtp/reply.h"

namespace fs = std::filesystem;
using demail::gateway::AccountSnapshot;
using demail::gateway::DailyCounter;
using demail::gateway::SendingAuthority;
using demail::gateway::SendingPolicy;
using demail::smtp::Reply;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/demail-sending-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

std::string write(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
    return p.string();
}

AccountSnapshot twoAccounts() {
    AccountSnapshot a;
    a.map.entries = {{"@firma.de", "poststelle@firma.de-mail.de"},
                     {"bescheide@firma.de", "bescheide@firma.de-mail.de"},
                     {"rechnung@firma.de", "rechnung@firma.de-mail.de"}};
    a.deMailDomains = {"de-mail.de"};
    a.providerListed = true;
    a.listed = {{"poststelle@firma.de-mail.de", "firma.de-mail.de", "high", false, false},
                {"bescheide@firma.de-mail.de", "firma.de-mail.de", "high", true, false},
                {"rechnung@firma.de-mail.de", "firma.de-mail.de", "normal", false, false}};
    a.map.ownAccounts = {"poststelle@firma.de-mail.de", "bescheide@firma.de-mail.de",
                         "rechnung@firma.de-mail.de"};
    return a;
}

demail::smtp::Envelope envelope(const std::string& sender, const std::string& ip,
                                const std::string& user = {}) {
    demail::smtp::Envelope e;
    e.sender = sender;
    e.recipients = {{"buerger@example.de-mail.de", "", ""}};
    e.session = {ip, "relay.firma.de", user, ""};
    return e;
}

std::string headers(const std::string& options) {
    return "From: <x@firma.de>\r\nTo: <buerger@example.de-mail.de>\r\nSubject: Bescheid\r\n" +
           (options.empty() ? "" : "X-De-Mail-Options: " + options + "\r\n") + "\r\n";
}

std::string replyOf(const demail::smtp::Decision& d) {
    return demail::smtp::formatReply(d.reply, d.detail);
}

const char* kPolicy =
    "# the worked example of docs/configuration.md\n"
    "allow sender=bescheide@firma.de via=10.1.2.0/24 account=bescheide@firma.de-mail.de "
    "options=all daily=500\n"
    "allow sender=@fachverfahren.firma.de via=10.1.2.3/32\n"
    "allow sender=* via=user:fachamt options=standard,authoritative\n"
    "allow sender=@firma.de via=10.0.0.0/16 daily=2\n"
    "limit account=poststelle@firma.de-mail.de daily=3\n";

}  // namespace

TEST(SendingPolicy, ReadsTheWorkedExample) {
    TempDir t;
    SendingPolicy p;
    ASSERT_EQ(demail::gateway::loadSendingPolicy(write(t.path / "p", kPolicy), p), "");
    ASSERT_EQ(p.rules.size(), 4u);
    EXPECT_TRUE(p.rules[0].options.authoritative);
    EXPECT_TRUE(p.rules[0].options.retrieveConfirmation);
    EXPECT_EQ(p.rules[0].daily, 500u);
    EXPECT_TRUE(p.rules[1].options.personal);  // default: standard
    EXPECT_FALSE(p.rules[1].options.authoritative);
    EXPECT_EQ(p.accountLimit("Poststelle@firma.de-mail.de"), 3u);
    // First match wins: bescheide@ from its network matches line 1, elsewhere line 4.
    EXPECT_EQ(p.match("bescheide@firma.de", "bescheide@firma.de-mail.de", "10.1.2.9", "")->line, 2);
    EXPECT_EQ(p.match("bescheide@firma.de", "bescheide@firma.de-mail.de", "10.0.5.5", "")->line, 5);
    EXPECT_EQ(p.match("a@firma.de", "poststelle@firma.de-mail.de", "10.1.2.3", ""), nullptr);
    EXPECT_EQ(p.match("a@firma.de", "poststelle@firma.de-mail.de", "192.0.2.1", "fachamt")->line,
              4);
}

TEST(SendingPolicy, RefusesABadLineNamingIt) {
    TempDir t;
    SendingPolicy p;
    for (const auto& [text, part] : std::vector<std::pair<std::string, std::string>>{
             {"allow via=10.0.0.0/8\n", "line 1: 'allow' needs sender="},
             {"allow sender=@x.de options=everything\n", "unknown option 'everything'"},
             {"\nallow sender=@x.de via=10.0.0.300/8\n", "line 2: via= takes networks"},
             {"deny sender=*\n", "expected 'allow ...'"},
             {"limit account=a@b.de-mail.de\n", "'limit' needs account= and daily="},
             {"allow sender=@x.de daily=many\n", "daily= takes a number"}}) {
        const auto e = demail::gateway::loadSendingPolicy(write(t.path / "p", text), p);
        EXPECT_NE(e.find(part), std::string::npos) << e;
    }
}

TEST(SendingAuthority, TheBuiltInPolicyGrantsOnlyTheStandardOptions) {
    TempDir t;
    SendingAuthority a(SendingPolicy::builtIn(), {}, (t.path / "counts").string());
    ASSERT_EQ(a.open(), "");
    a.setAccounts(twoAccounts());
    const auto e = envelope("bescheide@firma.de", "127.0.0.1");
    EXPECT_TRUE(a.checkSender(e.session, e.sender).accepted);
    DailyCounter::Ticket ticket;
    EXPECT_TRUE(
        a.checkMessage(e, headers("persoenlich, versandbestaetigung"), "Q1", ticket).accepted);
    a.abandoned(ticket);
    const auto d = a.checkMessage(e, headers("absenderbestaetigt"), "Q2", ticket);
    EXPECT_EQ(replyOf(d).substr(0, 9), "550 5.7.1");
    EXPECT_NE(d.detail.find("Absenderbestätigt (authoritative)"), std::string::npos) << d.detail;
    // A subject tag asks as well as the header does.
    const auto tag = a.checkMessage(
        e, "From: <x@firma.de>\r\nSubject: [abholbestaetigung] Bescheid\r\n\r\n", "Q3", ticket);
    EXPECT_NE(tag.detail.find("Abholbestätigung"), std::string::npos) << tag.detail;
}

TEST(SendingAuthority, ARelayHostSendsOnlyItsOwnSenders) {
    TempDir t;
    SendingPolicy p;
    ASSERT_EQ(demail::gateway::loadSendingPolicy(write(t.path / "p", kPolicy), p), "");
    SendingAuthority a(p, {}, (t.path / "counts").string());
    ASSERT_EQ(a.open(), "");
    auto accounts = twoAccounts();
    accounts.map.entries.push_back({"@fachverfahren.firma.de", "bescheide@firma.de-mail.de"});
    a.setAccounts(accounts);
    const demail::smtp::SessionInfo relay{"10.1.2.3", "fv", "", ""};
    EXPECT_TRUE(a.checkSender(relay, "akte@fachverfahren.firma.de").accepted);
    const auto other = a.checkSender(relay, "chef@firma.de");
    EXPECT_EQ(replyOf(other).substr(0, 9), "553 5.7.1");
    EXPECT_NE(other.detail.find("from 10.1.2.3"), std::string::npos) << other.detail;
}

TEST(SendingAuthority, OptionsBeyondTheAccountsLevelAreRefusedAtData) {
    TempDir t;
    SendingPolicy p;
    ASSERT_EQ(
        demail::gateway::loadSendingPolicy(write(t.path / "p", "allow sender=* options=all\n"), p),
        "");
    SendingAuthority a(p, {}, (t.path / "counts").string());
    ASSERT_EQ(a.open(), "");
    a.setAccounts(twoAccounts());
    DailyCounter::Ticket ticket;
    // rechnung@ is at level normal: no Persönlich.
    auto d = a.checkMessage(envelope("rechnung@firma.de", "127.0.0.1"), headers("personal"), "Q",
                            ticket);
    EXPECT_NE(d.detail.find("level 'normal'"), std::string::npos) << d.detail;
    // poststelle@ has no Abholbestätigung permission; bescheide@ has.
    d = a.checkMessage(envelope("x@firma.de", "127.0.0.1"), headers("abholbestaetigung"), "Q",
                       ticket);
    EXPECT_NE(d.detail.find("Abholbestätigung"), std::string::npos) << d.detail;
    EXPECT_TRUE(a.checkMessage(envelope("bescheide@firma.de", "127.0.0.1"),
                               headers("abholbestaetigung"), "Q", ticket)
                    .accepted);
    a.abandoned(ticket);
    // Until the provider listed the accounts these options cannot be checked: 4xx.
    auto unknown = twoAccounts();
    unknown.providerListed = false;
    unknown.listed.clear();
    a.setAccounts(unknown);
    d = a.checkMessage(envelope("bescheide@firma.de", "127.0.0.1"), headers("personal"), "Q",
                       ticket);
    EXPECT_EQ(replyOf(d).substr(0, 9), "451 4.7.0");
    // Nor can an unmapped sender be refused for good.
    d = a.checkSender({"127.0.0.1", "x", "", ""}, "poststelle@firma.de-mail.de.example");
    EXPECT_EQ(replyOf(d).substr(0, 9), "451 4.7.0");
}

TEST(SendingAuthority, AnOwnAccountSendsAsItselfWithAnEmptyAccountsFile) {
    TempDir t;
    SendingAuthority a(SendingPolicy::builtIn(), {}, (t.path / "counts").string());
    ASSERT_EQ(a.open(), "");
    AccountSnapshot s = twoAccounts();
    s.map.entries.clear();
    a.setAccounts(s);
    EXPECT_TRUE(a.checkSender({"127.0.0.1", "x", "", ""}, "Poststelle@firma.de-mail.de").accepted);
    EXPECT_EQ(a.checkSender({"127.0.0.1", "x", "", ""}, "someone@firma.de").reply,
              Reply::SenderRefused);
}

TEST(SendingAuthority, DailyLimitsHoldAcrossARestart) {
    TempDir t;
    SendingPolicy p;
    ASSERT_EQ(demail::gateway::loadSendingPolicy(write(t.path / "p", kPolicy), p), "");
    const auto counts = (t.path / "counts").string();
    const auto e = envelope("a@firma.de", "10.0.0.7");
    {
        SendingAuthority a(p, {}, counts);
        ASSERT_EQ(a.open(), "");
        a.setAccounts(twoAccounts());
        for (int i = 0; i < 2; ++i) {
            DailyCounter::Ticket ticket;
            ASSERT_TRUE(a.checkMessage(e, headers(""), "Q", ticket).accepted);
            a.committed(ticket);
        }
        // A message refused or dropped after its ticket was taken does not count.
        DailyCounter::Ticket dropped;
        const auto full = a.checkMessage(e, headers(""), "Q", dropped);
        EXPECT_EQ(replyOf(full).substr(0, 9), "550 5.7.1");
        EXPECT_NE(full.detail.find("2 De-Mails a day"), std::string::npos) << full.detail;
    }
    SendingAuthority again(p, {}, counts);
    ASSERT_EQ(again.open(), "");
    again.setAccounts(twoAccounts());
    EXPECT_EQ(replyOf(again.checkSender(e.session, e.sender)).substr(0, 9), "550 5.7.1");
    // Another sender of the same account: the account's limit of 3 leaves one.
    const auto b = envelope("b@firma.de", "10.0.0.8");
    DailyCounter::Ticket ticket;
    ASSERT_TRUE(again.checkMessage(b, headers(""), "Q", ticket).accepted);
    again.committed(ticket);
    const auto account = again.checkSender(b.session, b.sender);
    EXPECT_EQ(replyOf(account).substr(0, 9), "451 4.7.1") << replyOf(account);
}

TEST(SendingAuthority, AnAccountAtLevelNormalGetsTheProvidersHundred) {
    TempDir t;
    SendingAuthority a(SendingPolicy::builtIn(), {}, (t.path / "counts").string());
    ASSERT_EQ(a.open(), "");
    a.setAccounts(twoAccounts());
    const auto e = envelope("rechnung@firma.de", "127.0.0.1");
    for (std::uint64_t i = 0; i < demail::gateway::kNormalLevelDailyLimit; ++i) {
        DailyCounter::Ticket ticket;
        ASSERT_TRUE(a.checkMessage(e, headers(""), "Q", ticket).accepted) << i;
        a.committed(ticket);
    }
    EXPECT_EQ(a.checkSender(e.session, e.sender).reply, Reply::LimitReached);
}

// [smtp] when_paused at MAIL FROM: refuse answers 451 4.3.2 naming why (the client goes to a
// peer); queue (the default) and a gateway that can send accept; a sender the authority refuses
// keeps its own answer (a peer would refuse it as well). Through the real daemon and SMTP
// session: tests/gateway/e2e/when_paused.sh.
TEST(IntakePolicy, WhenPausedRefuseAnswers451AtMailFromWhileTheGatewayCannotSend) {
    TempDir t;
    SendingAuthority a(SendingPolicy::builtIn(), {}, (t.path / "counts").string());
    ASSERT_EQ(a.open(), "");
    a.setAccounts(twoAccounts());
    demail::gateway::IntakePolicy policy({"127.0.0.0/8"}, a, {"de-mail.de"});
    std::string why = "card absent";
    int asked = 0;
    policy.setCannotSend([&] {
        ++asked;
        return why;
    });
    const demail::smtp::SessionInfo s{"127.0.0.1", "mta", "", ""};

    // Default (queue): accepted and never asked.
    EXPECT_TRUE(policy.checkSender(s, "bescheide@firma.de").accepted);
    EXPECT_EQ(asked, 0);

    policy.setRefuseWhenPaused(true);
    const auto refused = policy.checkSender(s, "bescheide@firma.de");
    EXPECT_FALSE(refused.accepted);
    EXPECT_EQ(replyOf(refused),
              "451 4.3.2 this gateway cannot send De-Mail now (card absent); try another "
              "gateway\r\n");

    // A sender refused by the authority keeps its 553: no peer would take it either.
    EXPECT_EQ(replyOf(policy.checkSender(s, "fremd@example.org")).substr(0, 9), "553 5.7.1");

    why.clear();  // the card is back
    EXPECT_TRUE(policy.checkSender(s, "bescheide@firma.de").accepted);

    why = "provider unreachable";
    policy.setRefuseWhenPaused(false);  // SIGHUP back to queue
    EXPECT_TRUE(policy.checkSender(s, "bescheide@firma.de").accepted);
}
