// DeMailRouter and the sent journal: confirmations and Meldungen about our own submissions go
// back to their sender with the sender's own private-id restored and linked to the original;
// what is not about a message the account sent is never routed through the journal.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "demail/connector/message/header_block.h"
#include "demail/gateway/demail_router.h"

using namespace demail;
using namespace demail::gateway;

namespace {

const std::filesystem::path kGolden = DEMAIL_ROUTER_GOLDEN_DIR;
const std::string kQueueId = "Q20261122A1B2C3DEFGHIJ";  // 22 characters: a valid queue id

std::string golden(const std::string& name) {
    std::ifstream in(kGolden / name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    // The golden files use a 15-character queue id; ours must be a valid one.
    for (std::size_t at; (at = s.find("Q20261122A1B2C3")) != std::string::npos &&
                         s.compare(at, kQueueId.size(), kQueueId) != 0;)
        s.replace(at, 15, kQueueId);
    return s;
}

class Router : public ::testing::Test {
  protected:
    Router()
        : journal(dir()),
          router(
              journal, [this] { return accounts; }, "postmaster@firma.de",
              InboundHygiene{{}, "gw.firma.de"}) {
        accounts.entries = {{"poststelle@firma.de", "poststelle@firma.de-mail.de"},
                            {"@firma.de", "poststelle@firma.de-mail.de"}};
        SentRecord r;
        r.sender = "sachbearbeiter@firma.de";
        r.account = "poststelle@firma.de-mail.de";
        r.privateId = "AZ-2026/4711";
        r.messageId = "<az4711@fv.firma.de>";
        r.recipients = {"nobody@behoerde.de-mail.de", "amt@behoerde.de-mail.de"};
        r.providerIds = {"<dm-1@mentana.de-mail.de>"};
        journal.record(kQueueId, r);
    }
    static std::string dir() {
        const auto d = ::testing::TempDir() + "/router-journal-" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::filesystem::remove_all(d);
        return d;
    }
    static std::string header(const std::string& message, const char* name) {
        std::string err;
        const auto h = connector::HeaderBlock::parse(message, err);
        const std::string* v = h ? h->get(name) : nullptr;
        return v ? *v : "(none)";
    }
    connector::AccountMap accounts;
    SentJournal journal;
    DeMailRouter router;
};

}  // namespace

TEST_F(Router, AConfirmationGoesBackWithTheSendersOwnPrivateIdAndLinkedToTheOriginal) {
    // base64 XML in a nested multipart, private-id "<queue id>.AZ-2026/4711" in the header.
    const auto r = router.route({"in-1", "poststelle@firma.de-mail.de"},
                                golden("dispatch-confirmation-base64-nested.eml"));
    ASSERT_TRUE(r.park.empty()) << r.park;
    EXPECT_EQ(r.recipients, std::vector<std::string>{"sachbearbeiter@firma.de"});
    EXPECT_EQ(r.queueId, kQueueId);
    EXPECT_EQ(header(r.message, "X-de-mail-private-id"), "AZ-2026/4711");
    EXPECT_EQ(header(r.message, "In-Reply-To"), "<az4711@fv.firma.de>");
    EXPECT_EQ(header(r.message, "References"), "<az4711@fv.firma.de> <dm-1@mentana.de-mail.de>");
    EXPECT_EQ(header(r.message, "X-Demail-Gateway-Queue-Id"), kQueueId);
}

TEST_F(Router, TheRestOfAPrivateIdIsNeverTrusted) {
    // The provider copies whatever it got; a value after the queue id that differs from our
    // record does not reach the sender: the record's value does.
    std::string m = golden("dispatch-confirmation-base64-nested.eml");
    m.replace(m.find(kQueueId + ".AZ-2026/4711"), kQueueId.size() + 13, kQueueId + ".forged");
    const auto r = router.route({"in-2", "poststelle@firma.de-mail.de"}, m);
    EXPECT_EQ(r.recipients, std::vector<std::string>{"sachbearbeiter@firma.de"});
    EXPECT_EQ(header(r.message, "X-de-mail-private-id"), "AZ-2026/4711");
}

TEST_F(Router, ACopyAboutAMessageAnotherAccountSentIsNotRoutedThroughTheJournal) {
    // Review row 16: a correspondent puts our (visible) queue id into its own private-id; the
    // Eingangsbestätigung copy we receive names the correspondent as the original sender.
    std::string m = golden("receipt-confirmation-qp.eml");
    const std::string ours = "poststelle@firma.de-mai=\r\nl.de</Value><OriginalHeader>";
    ASSERT_NE(m.find(ours), std::string::npos);
    m.replace(m.find(ours), ours.size(), "fremd@andere.de-mail.de</Value><OriginalHeader>");
    const auto r = router.route({"in-3", "poststelle@firma.de-mail.de"}, m);
    EXPECT_EQ(r.recipients, std::vector<std::string>{"poststelle@firma.de"})
        << "the account's inbox, not the sender of our message";
    EXPECT_TRUE(r.queueId.empty());
    EXPECT_EQ(header(r.message, "X-Demail-Gateway-Queue-Id"), "(none)");
    // The same confirmation about our own message is routed (QP-decoded XML, id only there).
    const auto ok = router.route({"in-4", "poststelle@firma.de-mail.de"},
                                 golden("receipt-confirmation-qp.eml"));
    EXPECT_EQ(ok.recipients, std::vector<std::string>{"sachbearbeiter@firma.de"});
    // A confirmation that names no original sender (no metadata; its own X-de-mail-sender is
    // the provider's system sender) is not trusted either.
    std::string anon = golden("dispatch-confirmation.eml");
    const auto from = anon.find("      <Metadate><Name>From</Name>");
    ASSERT_NE(from, std::string::npos);
    anon.erase(from, anon.find('\n', from) + 1 - from);
    const auto none = router.route({"in-5", "poststelle@firma.de-mail.de"}, anon);
    EXPECT_EQ(none.recipients, std::vector<std::string>{"poststelle@firma.de"});
    const auto named =
        router.route({"in-5b", "poststelle@firma.de-mail.de"}, golden("dispatch-confirmation.eml"));
    EXPECT_EQ(named.recipients, std::vector<std::string>{"sachbearbeiter@firma.de"});
}

TEST_F(Router, AMeldungReachesTheOriginalSenderAsAReport) {
    std::string m = golden("notification-unknown-recipient.eml");
    m.replace(m.find("X-de-mail-private-id: " + kQueueId),
              std::string("X-de-mail-private-id: ").size() + kQueueId.size(),
              "X-de-mail-private-id: " + kQueueId + ".AZ-2026/4711");
    const auto r = router.route({"in-6", "poststelle@firma.de-mail.de"}, m);
    ASSERT_TRUE(r.park.empty()) << r.park;
    EXPECT_EQ(r.recipients, std::vector<std::string>{"sachbearbeiter@firma.de"});
    EXPECT_EQ(r.mailFrom, "") << "a report comes from <>";
    EXPECT_NE(r.message.find("Content-Type: multipart/report; report-type=delivery-status"),
              std::string::npos);
    EXPECT_NE(r.message.find("Final-Recipient: rfc822; nobody@behoerde.de-mail.de\r\n"
                             "Action: failed\r\nStatus: 5.1.1\r\n"),
              std::string::npos)
        << r.message;
    EXPECT_EQ(r.message.find("Final-Recipient: rfc822; amt@behoerde.de-mail.de"), std::string::npos)
        << "only the recipient the Meldung names";
    EXPECT_NE(r.message.find("Content-Type: message/rfc822"), std::string::npos);
    EXPECT_NE(r.message.find("X-de-mail-notification-type: unknown-recipient"), std::string::npos)
        << "the Meldung is attached";
    EXPECT_EQ(header(r.message, "X-de-mail-private-id"), "AZ-2026/4711");
    EXPECT_EQ(header(r.message, "In-Reply-To"), "<az4711@fv.firma.de>");
    EXPECT_TRUE(connector::isSafeForSmtp(r.message));
    // The same Meldung arriving at another account is not about a message that account sent.
    accounts.entries.push_back({"chef@firma.de", "chef@firma.de-mail.de"});
    const auto other = router.route({"in-7", "chef@firma.de-mail.de"}, m);
    EXPECT_EQ(other.recipients, std::vector<std::string>{"chef@firma.de"});
    EXPECT_EQ(other.message.find("multipart/report"), std::string::npos);
}

// Redundancy (docs/operations.md "Redundancy"): a confirmation fetched by a gateway that
// did not send the message (no sent/ record here) goes to the sender sealed in the private-id by
// the peer that sent it, when both hold the same private_id_key_file.
class PeerRouter : public Router {
  protected:
    PeerRouter() {
        std::string error;
        auto s = connector::PrivateIdSeal::fromHex(std::string(64, 'a'), error);
        seal = std::make_shared<const connector::PrivateIdSeal>(*s);
        router.privateIdSeal = seal;
    }
    // The golden confirmation as a peer's submission `queueId` by `sender` would bring it back.
    std::string fromPeer(const std::string& queueId, const std::string& sealed) {
        std::string m = golden("dispatch-confirmation-base64-nested.eml");
        const std::string ours = kQueueId + ".AZ-2026/4711";
        m.replace(m.find(ours), ours.size(), queueId + "-" + sealed + ".AZ-2026/4711");
        return m;
    }
    const std::string kPeerQueue = "Q20261122ZZZZZZZZZZZZZZ";
    std::shared_ptr<const connector::PrivateIdSeal> seal;
};

TEST_F(PeerRouter, AConfirmationOfAMessageAPeerSentGoesToTheSealedSender) {
    const auto r = router.route({"in-p1", "poststelle@firma.de-mail.de"},
                                fromPeer(kPeerQueue, seal->seal(kPeerQueue, "referent@firma.de")));
    ASSERT_TRUE(r.park.empty()) << r.park;
    EXPECT_EQ(r.recipients, std::vector<std::string>{"referent@firma.de"});
    EXPECT_EQ(r.queueId, kPeerQueue);
    EXPECT_EQ(header(r.message, "X-Demail-Gateway-Queue-Id"), kPeerQueue);
    EXPECT_EQ(header(r.message, "X-de-mail-private-id"), "AZ-2026/4711")
        << "the sender's own value, without our queue id and seal";
    EXPECT_EQ(header(r.message, "In-Reply-To"), "(none)") << "the peer alone knows the Message-ID";
}

TEST_F(PeerRouter, ASealThatDoesNotOpenOrASenderNotOfThisAccountGoesToTheInbox) {
    // Sealed for another queue id (copied from another message): does not open for this one.
    auto r = router.route({"in-p2", "poststelle@firma.de-mail.de"},
                          fromPeer(kPeerQueue, seal->seal(kQueueId, "referent@firma.de")));
    EXPECT_EQ(r.recipients, std::vector<std::string>{"poststelle@firma.de"});
    EXPECT_TRUE(r.queueId.empty());
    // Another key (a stranger's seal): the same.
    std::string error;
    const auto other = connector::PrivateIdSeal::fromHex(std::string(64, 'b'), error);
    r = router.route({"in-p3", "poststelle@firma.de-mail.de"},
                     fromPeer(kPeerQueue, other->seal(kPeerQueue, "referent@firma.de")));
    EXPECT_EQ(r.recipients, std::vector<std::string>{"poststelle@firma.de"});
    // A sender the accounts file does not map to this account (any more).
    r = router.route({"in-p4", "poststelle@firma.de-mail.de"},
                     fromPeer(kPeerQueue, seal->seal(kPeerQueue, "fremd@andere.de")));
    EXPECT_EQ(r.recipients, std::vector<std::string>{"poststelle@firma.de"});
    // Without a key of our own nothing is routed by a seal.
    router.privateIdSeal.reset();
    r = router.route({"in-p5", "poststelle@firma.de-mail.de"},
                     fromPeer(kPeerQueue, seal->seal(kPeerQueue, "referent@firma.de")));
    EXPECT_EQ(r.recipients, std::vector<std::string>{"poststelle@firma.de"});
}

TEST_F(PeerRouter, TheLocalRecordStillWinsForOurOwnMessages) {
    const auto r = router.route({"in-p6", "poststelle@firma.de-mail.de"},
                                fromPeer(kQueueId, seal->seal(kQueueId, "referent@firma.de")));
    EXPECT_EQ(r.recipients, std::vector<std::string>{"sachbearbeiter@firma.de"})
        << "our sent/ record names the sender";
    EXPECT_EQ(header(r.message, "In-Reply-To"), "<az4711@fv.firma.de>");
}
