// The De-Mail message layer: header grammar, options, recipients, sender mapping, stripping,
// classification of every message and notification type, the confirmation XML, correlation.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "demail/connector/message/demail_headers.h"
#include "demail/connector/message/header_block.h"
#include "demail/connector/message/inbound.h"
#include "demail/connector/message/outbound.h"
#include "demail/connector/message/private_id_seal.h"

using namespace demail::connector;
namespace fs = std::filesystem;

namespace {

std::string readFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

const fs::path kDir = DEMAIL_MESSAGE_TEST_DIR;

OutboundContext context() {
    OutboundContext c;
    c.queueId = "Q20261122A1B2C3";
    c.envelopeSender = "sachbearbeiter@firma.de";
    c.envelopeRecipients = {"poststelle@behoerde.de-mail.de", "amt@stadt.de-mail.de",
                            "geheim@behoerde.de-mail.de"};
    c.deMailDomains = {"de-mail.de"};
    c.accounts.entries = {{"poststelle@firma.de", "poststelle@firma.de-mail.de"},
                          {"@firma.de", "poststelle@firma.de-mail.de"},
                          {"chef@firma.de", "chef@firma.de-mail.de"}};
    return c;
}

const std::string kInternalMessage =
    "From: Max Muster <sachbearbeiter@firma.de>\r\n"
    "To: Behoerde <poststelle@behoerde.de-mail.de>, \"Stadt, Amt\" <amt@stadt.de-mail.de>\r\n"
    "Subject: [persoenlich] [versandbestaetigung] Antrag auf Baugenehmigung\r\n"
    "X-De-Mail-Options: receipt-confirmation, abholbestaetigung\r\n"
    "X-de-mail-auth-level: high\r\n"
    "X-DE-MAIL-MESSAGE-TYPE: normal\r\n"
    "X-de-mail-sender: forged@other.de-mail.de\r\n"
    "Reply-To: private@gmail.com\r\n"
    "Bcc: geheim@behoerde.de-mail.de\r\n"
    "\r\n"
    "Sehr geehrte Damen und Herren,\r\n";

}  // namespace

TEST(HeaderBlock, UnfoldsAndTheFirstOccurrenceWinsCaseInsensitively) {
    std::string err;
    auto h = HeaderBlock::parse(
        "Subject: a\r\n b\r\n\tc\r\nx-DE-mail-Private: yes\r\n"
        "X-de-mail-private: no\r\n\r\nbody",
        err);
    ASSERT_TRUE(h) << err;
    EXPECT_EQ(*h->get("subject"), "a b c");
    EXPECT_EQ(*h->get("X-de-mail-private"), "yes");
    EXPECT_EQ(h->count("x-de-mail-private"), 2u);
    EXPECT_EQ(h->bodyOffset(), std::string("Subject: a\r\n b\r\n\tc\r\nx-DE-mail-Private: yes\r\n"
                                           "X-de-mail-private: no\r\n\r\n")
                                   .size());
}

TEST(HeaderBlock, RefusesMalformedAndOversizedSections) {
    std::string err;
    EXPECT_FALSE(HeaderBlock::parse(" folded first\r\n\r\n", err));
    EXPECT_FALSE(HeaderBlock::parse("no colon here\r\n\r\n", err));
    HeaderLimits small;
    small.maxLineBytes = 10;
    EXPECT_FALSE(HeaderBlock::parse("Subject: 12345678901\r\n\r\n", err, small));
    EXPECT_NE(err.find("longer than 10"), std::string::npos);
}

TEST(DeMailHeaders, YesNoIsCaseSensitiveAndAbsentMeansNo) {
    const std::string yes = "yes", no = "no", bad = "Yes";
    EXPECT_EQ(parseYesNo(&yes), true);
    EXPECT_EQ(parseYesNo(&no), false);
    EXPECT_EQ(parseYesNo(nullptr), false);
    EXPECT_FALSE(parseYesNo(&bad).has_value());
}

TEST(DeMailHeaders, ChosenRecipientGrammar) {
    std::string err;
    auto r = parseChosenRecipient(
        " to = A <a@x.de-mail.de>, \"B, b\" <b@y.de-mail.de> ; "
        "cc=c@z.de-mail.de;bcc=d@w.de-mail.de",
        err);
    ASSERT_TRUE(r) << err;
    EXPECT_EQ(r->to, (std::vector<std::string>{"a@x.de-mail.de", "b@y.de-mail.de"}));
    EXPECT_EQ(r->cc, (std::vector<std::string>{"c@z.de-mail.de"}));
    EXPECT_EQ(r->bcc, (std::vector<std::string>{"d@w.de-mail.de"}));
    EXPECT_FALSE(parseChosenRecipient("to=a@x.de-mail.de; to=b@x.de-mail.de", err));
    EXPECT_NE(err.find("twice"), std::string::npos);
    EXPECT_FALSE(parseChosenRecipient("from=a@x.de-mail.de", err));
    EXPECT_FALSE(parseChosenRecipient("to=<broken", err));
    EXPECT_EQ(formatChosenRecipient(*r),
              "to=a@x.de-mail.de, b@y.de-mail.de; cc=c@z.de-mail.de; bcc=d@w.de-mail.de");
}

TEST(DeMailHeaders, AddressesAndDomains) {
    EXPECT_TRUE(isValidDeMailAddress("poststelle@standort_a.institution.de-mail.de"));
    EXPECT_FALSE(isValidDeMailAddress(std::string(65, 'a') + "@x.de-mail.de"));
    EXPECT_FALSE(isValidDeMailAddress("a@b@c.de-mail.de"));
    EXPECT_FALSE(isValidDeMailAddress("a b@c.de-mail.de"));
    EXPECT_TRUE(inDomains("x@firma.de-mail.de", {"de-mail.de"}));
    EXPECT_TRUE(inDomains("x@FIRMA.de-mail.de", {"firma.de-mail.de"}));
    EXPECT_FALSE(inDomains("x@evilde-mail.de", {"de-mail.de"}));
    EXPECT_FALSE(inDomains("x@gmail.com", {"de-mail.de"}));
}

TEST(Outbound, SenderIsMappedExactBeforeDomain) {
    const auto c = context();
    EXPECT_EQ(*c.accounts.accountFor("chef@firma.de"), "chef@firma.de-mail.de");
    EXPECT_EQ(*c.accounts.accountFor("Someone@FIRMA.de"), "poststelle@firma.de-mail.de");
    EXPECT_FALSE(c.accounts.accountFor("x@other.de"));
    EXPECT_EQ(*c.accounts.inboxFor("poststelle@firma.de-mail.de"), "poststelle@firma.de");
}

TEST(Outbound, PreparesTheMessageTheTrWay) {
    const auto p = prepareOutbound(kInternalMessage, context());
    ASSERT_TRUE(p.ok()) << p.reason;
    EXPECT_EQ(p.account, "poststelle@firma.de-mail.de");
    EXPECT_TRUE(p.options.personal);
    EXPECT_TRUE(p.options.dispatchConfirmation);
    EXPECT_TRUE(p.options.receiptConfirmation);
    EXPECT_TRUE(p.options.retrieveConfirmation);
    EXPECT_FALSE(p.options.authoritative);
    std::string err;
    auto h = HeaderBlock::parse(p.headers, err);
    ASSERT_TRUE(h) << err;
    EXPECT_EQ(*h->get("Subject"), "Antrag auf Baugenehmigung");
    EXPECT_EQ(*h->get("From"), "Max Muster <poststelle@firma.de-mail.de>");
    EXPECT_EQ(*h->get("X-de-mail-sender"), "poststelle@firma.de-mail.de");
    EXPECT_EQ(*h->get("X-de-mail-private-id"), "Q20261122A1B2C3");
    EXPECT_EQ(*h->get("X-de-mail-private"), "yes");
    EXPECT_EQ(*h->get("X-de-mail-authoritative"), "no");
    EXPECT_EQ(*h->get("X-de-mail-chosen-recipient"),
              "to=poststelle@behoerde.de-mail.de, amt@stadt.de-mail.de; "
              "bcc=geheim@behoerde.de-mail.de");
    EXPECT_EQ(h->get("X-de-mail-auth-level"), nullptr) << "provider headers are stripped";
    EXPECT_EQ(h->count("X-de-mail-message-type"), 0u);
    EXPECT_EQ(h->count("X-de-mail-sender"), 1u) << "the forged sender is gone";
    EXPECT_EQ(h->get("X-De-Mail-Options"), nullptr);
    EXPECT_EQ(h->get("Bcc"), nullptr);
    EXPECT_EQ(h->get("Reply-To"), nullptr) << "a Reply-To outside De-Mail is removed";
    EXPECT_EQ(std::string(kInternalMessage.substr(p.bodyOffset)),
              "Sehr geehrte Damen und Herren,\r\n");
}

TEST(Outbound, DisplayNamesCannotImpersonate) {
    const auto fromOf = [](const std::string& from) {
        std::string m = kInternalMessage;
        m.replace(m.find("Max Muster <sachbearbeiter@firma.de>"),
                  std::string("Max Muster <sachbearbeiter@firma.de>").size(), from);
        const auto p = prepareOutbound(m, context());
        std::string err;
        auto h = HeaderBlock::parse(p.headers, err);
        return h ? *h->get("From") : err;
    };
    EXPECT_EQ(fromOf("finanzamt@berlin.de-mail.de <sachbearbeiter@firma.de>"),
              "poststelle@firma.de-mail.de");
    EXPECT_EQ(fromOf("\"Finanzamt <amt@berlin.de-mail.de>\" <sachbearbeiter@firma.de>"),
              "poststelle@firma.de-mail.de");
    EXPECT_EQ(fromOf("\"Muster, Max\" <sachbearbeiter@firma.de>"),
              "\"Muster, Max\" <poststelle@firma.de-mail.de>");
    EXPECT_EQ(fromOf("Amt (Berlin) <sachbearbeiter@firma.de>"),
              "\"Amt (Berlin)\" <poststelle@firma.de-mail.de>");
    EXPECT_EQ(fromOf("=?utf-8?q?M=C3=BCller?= <sachbearbeiter@firma.de>"),
              "=?utf-8?q?M=C3=BCller?= <poststelle@firma.de-mail.de>");
}

TEST(Outbound, LongHeadersAreFoldedBelow998Characters) {
    // 60 recipients make an X-de-mail-chosen-recipient of about 2,000 characters.
    auto c = context();
    c.envelopeRecipients.clear();
    std::string to = "To: ";
    for (int i = 0; i < 60; ++i) {
        const std::string a = "empfaenger" + std::to_string(i) + "@behoerde.de-mail.de";
        c.envelopeRecipients.push_back(a);
        to += (i ? ", " : "") + a;
    }
    std::string m = kInternalMessage;
    m.replace(m.find("To: "), m.find("\r\n", m.find("To: ")) - m.find("To: "), to);
    const auto p = prepareOutbound(m, c);
    ASSERT_TRUE(p.ok()) << p.reason;
    for (std::size_t at = 0, next; (next = p.headers.find("\r\n", at)) != std::string::npos;
         at = next + 2)
        EXPECT_LE(next - at, 998u) << p.headers.substr(at, 60);
    std::string err;
    auto h = HeaderBlock::parse(p.headers, err);
    ASSERT_TRUE(h) << err;
    EXPECT_NE(h->get("X-de-mail-chosen-recipient")->find("empfaenger59@behoerde.de-mail.de"),
              std::string::npos);
    EXPECT_GT(h->get("X-de-mail-chosen-recipient")->size(), 998u) << "unfolded it is one value";

    std::string unfoldable = kInternalMessage;
    unfoldable.insert(unfoldable.find("Subject: ") + 9, std::string(1200, 'x'));
    const auto refused = prepareOutbound(unfoldable, context());
    EXPECT_EQ(refused.refusal, RefusalKind::MalformedMessage);
    EXPECT_NE(refused.reason.find("998"), std::string::npos);
}

TEST(Outbound, RefusesWhatIsNotDeMail) {
    auto c = context();
    c.envelopeRecipients.push_back("someone@gmail.com");
    auto p = prepareOutbound(kInternalMessage, c);
    EXPECT_EQ(p.refusal, RefusalKind::RecipientNotDeMail);
    EXPECT_EQ(p.offending, "someone@gmail.com");

    c = context();
    c.envelopeSender = "intruder@elsewhere.de";
    EXPECT_EQ(checkEnvelope(c).refusal, RefusalKind::SenderNotMapped);

    c = context();
    c.queueId = std::string(1025, 'Q');
    EXPECT_EQ(prepareOutbound(kInternalMessage, c).refusal, RefusalKind::PrivateIdTooLong);

    const std::string unknownOption = "From: a@firma.de\r\nX-De-Mail-Options: express\r\n\r\n";
    p = prepareOutbound(unknownOption, context());
    EXPECT_EQ(p.refusal, RefusalKind::OptionUnknown);
    EXPECT_EQ(p.offending, "express");
}

TEST(Outbound, ForeignSubjectTagsStay) {
    const std::string m =
        "From: a@firma.de\r\nTo: poststelle@behoerde.de-mail.de\r\n"
        "Subject: [EXTERN] [persoenlich] Frage\r\n\r\n";
    auto c = context();
    c.envelopeRecipients = {"poststelle@behoerde.de-mail.de"};
    const auto p = prepareOutbound(m, c);
    ASSERT_TRUE(p.ok());
    EXPECT_FALSE(p.options.personal);
    EXPECT_NE(p.headers.find("Subject: [EXTERN] [persoenlich] Frage\r\n"), std::string::npos);
}

TEST(Outbound, TheSendersOwnPrivateIdIsKeptAfterTheQueueId) {
    // No private-id of its own: the queue id alone, as before.
    auto p = prepareOutbound(kInternalMessage, context());
    ASSERT_TRUE(p.ok()) << p.reason;
    EXPECT_EQ(p.privateId, "Q20261122A1B2C3");
    EXPECT_EQ(p.senderPrivateId, "");
    // A file number of a case-management system: sent as "<queue id>.<value>", kept for the
    // confirmations, and the Message-ID noted for linking them.
    const std::string withId =
        "From: sachbearbeiter@firma.de\r\n"
        "To: poststelle@behoerde.de-mail.de\r\n"
        "Subject: Antrag\r\n"
        "Message-ID:  <az4711@fachverfahren.firma.de>\r\n"
        "x-de-mail-private-id:  AZ-2026/4711 \r\n"
        "X-de-mail-private-id: second-ignored\r\n\r\nbody";
    p = prepareOutbound(withId, context());
    ASSERT_TRUE(p.ok()) << p.reason;
    EXPECT_EQ(p.senderPrivateId, "AZ-2026/4711");
    EXPECT_EQ(p.privateId, "Q20261122A1B2C3.AZ-2026/4711");
    EXPECT_EQ(p.messageId, "<az4711@fachverfahren.firma.de>");
    std::string err;
    auto h = HeaderBlock::parse(p.headers, err);
    ASSERT_TRUE(h) << err;
    EXPECT_EQ(h->count("X-de-mail-private-id"), 1u);
    EXPECT_EQ(*h->get("X-de-mail-private-id"), "Q20261122A1B2C3.AZ-2026/4711");
    EXPECT_EQ(queueIdOfPrivateId(*h->get("X-de-mail-private-id")), "Q20261122A1B2C3");
    EXPECT_EQ(queueIdOfPrivateId("Q20261122A1B2C3"), "Q20261122A1B2C3");

    // The whole value must fit the TR's 1024 characters: queue id (15 here) + '.' + 1008 fits,
    // one more is refused (at the end of DATA, through the same function).
    const auto withValue = [](const std::string& v) {
        return "From: sachbearbeiter@firma.de\r\nTo: poststelle@behoerde.de-mail.de\r\n"
               "Subject: x\r\nX-de-mail-private-id: " +
               v + "\r\n\r\nbody";
    };
    std::string fits;
    while (fits.size() < 1008)
        fits +=
            "AZ 4711 ";  // white space to fold at: the 998-character line limit is not the point
    fits.resize(1008);
    fits.back() = 'Z';  // trailing white space would be trimmed
    p = prepareOutbound(withValue(fits), context());
    ASSERT_TRUE(p.ok()) << p.reason;
    EXPECT_EQ(p.privateId.size(), 1024u);
    p = prepareOutbound(withValue(fits + "X"), context());
    EXPECT_EQ(p.refusal, RefusalKind::PrivateIdTooLong);
    EXPECT_NE(p.reason.find("longer than 1008 characters"), std::string::npos) << p.reason;
    p = prepareOutbound(withValue("AZ\x01"
                                  "4711"),
                        context());
    EXPECT_EQ(p.refusal, RefusalKind::MalformedMessage);
    p = prepareOutbound(withValue("AZ-2026/\r\n\t4711"), context());  // folded: kept unfolded
    ASSERT_TRUE(p.ok()) << p.reason;
    EXPECT_EQ(p.senderPrivateId, "AZ-2026/ 4711");
}

TEST(Inbound, ClassifiesEveryMessageType) {
    const std::pair<const char*, InboundKind> cases[] = {
        {"normal", InboundKind::Normal},
        {"confirmation of dispatch", InboundKind::DispatchConfirmation},
        {"confirmation of receipt", InboundKind::ReceiptConfirmation},
        {"confirmation of retrieve", InboundKind::RetrieveConfirmation},
        {"malware-acknowledge", InboundKind::MalwareAcknowledge},
        {"malware-notification", InboundKind::MalwareNotification},
        {"notification", InboundKind::Notification},
        {"identification", InboundKind::Identification},
        {"something new", InboundKind::Unknown},
    };
    for (const auto& [type, kind] : cases) {
        const auto c = classifyInbound(std::string("X-de-mail-message-type: ") + type + "\r\n\r\n");
        EXPECT_EQ(c.kind, kind) << type;
    }
}

TEST(Inbound, NotificationTypesAndUnknownMeansOther) {
    for (const char* t : {"unknown-recipient", "closed-account", "invalid-format", "other"}) {
        const auto c = classifyInbound(std::string("X-de-mail-message-type: notification\r\n"
                                                   "X-de-mail-notification-type: ") +
                                       t + "\r\n\r\n");
        EXPECT_EQ(c.notificationType, t);
    }
    EXPECT_EQ(classifyInbound("X-de-mail-message-type: notification\r\n\r\n").notificationType,
              "other");
}

TEST(Golden, EveryFileIsClassifiedParsedAndCorrelated) {
    struct Case {
        const char* file;
        InboundKind kind;
        const char* root;
    };
    const Case cases[] = {
        {"dispatch-confirmation.eml", InboundKind::DispatchConfirmation, "Acknowledge-Message"},
        {"receipt-confirmation.eml", InboundKind::ReceiptConfirmation, "Acknowledge-Message"},
        {"retrieve-confirmation-xml-only-id.eml", InboundKind::RetrieveConfirmation,
         "Acknowledge-Message"},
        {"notification-unknown-recipient.eml", InboundKind::Notification, "Notification-Message"},
    };
    for (const auto& tc : cases) {
        const std::string m = readFile(kDir / "golden" / tc.file);
        ASSERT_FALSE(m.empty()) << tc.file;
        const auto c = classifyInbound(m);
        EXPECT_EQ(c.kind, tc.kind) << tc.file;
        std::string err;
        const auto xml = confirmationXmlOf(m, err);
        ASSERT_TRUE(xml) << tc.file << ": " << err;
        EXPECT_EQ(xml->rootElement, tc.root);
        EXPECT_EQ(xml->subject, "Antrag auf Baugenehmigung");
        const auto job = correlate(c, xml);
        ASSERT_TRUE(job) << tc.file;
        EXPECT_EQ(*job, "Q20261122A1B2C3") << tc.file;
    }
    std::string retrieveError;
    const auto retrieve = confirmationXmlOf(
        readFile(kDir / "golden" / "retrieve-confirmation-xml-only-id.eml"), retrieveError);
    EXPECT_EQ(retrieve->deliveryTime, "2026-11-22T11:59:58+01:00");
    const auto normal = classifyInbound(readFile(kDir / "golden" / "normal-message.eml"));
    EXPECT_EQ(normal.kind, InboundKind::Normal) << "the first X-de-mail-message-type wins";
    EXPECT_FALSE(correlate(normal, std::nullopt));
}

TEST(Golden, EncodedAndNestedXmlPartsAreDecoded) {
    // base64 inside multipart/related inside multipart/mixed, after a multipart/alternative.
    std::string err;
    const std::string b64 = readFile(kDir / "golden" / "dispatch-confirmation-base64-nested.eml");
    const auto c = classifyInbound(b64);
    EXPECT_EQ(c.kind, InboundKind::DispatchConfirmation);
    auto xml = confirmationXmlOf(b64, err);
    ASSERT_TRUE(xml) << err;
    EXPECT_EQ(xml->rootElement, "Acknowledge-Message");
    EXPECT_EQ(xml->subject, "Antrag auf Baugenehmigung");
    EXPECT_EQ(xml->metadataValue("X-de-mail-sender"), "poststelle@firma.de-mail.de");
    EXPECT_EQ(xml->metadataValue("X-de-mail-private-id"), "Q20261122A1B2C3.AZ-2026/4711");
    EXPECT_NE(xml->text.find("Versandbestätigung für"), std::string::npos) << xml->text;
    EXPECT_EQ(correlate(c, xml), "Q20261122A1B2C3.AZ-2026/4711");

    // quoted-printable with soft line breaks inside values, =3D and UTF-8 octets; the private-id
    // only in the XML.
    const std::string qp = readFile(kDir / "golden" / "receipt-confirmation-qp.eml");
    const auto cq = classifyInbound(qp);
    EXPECT_EQ(cq.privateId, "");
    xml = confirmationXmlOf(qp, err);
    ASSERT_TRUE(xml) << err;
    EXPECT_EQ(xml->sender, "Eingangsbestaetigung@mentana.de-mail.de");
    EXPECT_EQ(xml->metadataValue("X-de-mail-message-id"), "4714.1795348609@mentana.de-mail.de");
    EXPECT_NE(xml->text.find("Eingangsbestätigung für"), std::string::npos) << xml->text;
    EXPECT_EQ(xml->hash, "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0");
    EXPECT_EQ(correlate(cq, xml), "Q20261122A1B2C3.AZ-2026/4711");

    // Nesting is bounded: 9 levels of multipart around the XML are not searched.
    std::string deep =
        "Content-Type: application/xml\r\n\r\n<Notification-Message "
        "xmlns=\"urn:de-mail\"><Subject>s</Subject></Notification-Message>\r\n";
    for (int i = 0; i < 9; ++i)
        deep = "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" +
               std::to_string(i) + "\r\n" + deep + "--b" + std::to_string(i) + "--\r\n";
    EXPECT_FALSE(confirmationXmlOf(deep, err));
    EXPECT_NE(err.find("nested deeper"), std::string::npos) << err;
}

TEST(Corpus, HostileInputsGiveCleanErrorsAndNoCrash) {
    int files = 0;
    for (const auto& e : fs::directory_iterator(kDir / "corpus")) {
        if (e.path().extension() != ".eml")
            continue;
        ++files;
        const std::string m = readFile(e.path());
        std::string err;
        auto h = HeaderBlock::parse(m, err);
        const auto c = classifyInbound(m);
        EXPECT_LE(c.privateId.size(), 1024u) << e.path();
        auto xml = confirmationXmlOf(m, err);
        if (xml) {
            EXPECT_EQ(xml->sender.find("lol"), std::string::npos) << "entities never expand";
            EXPECT_EQ(xml->sender.find("root:"), std::string::npos) << "no external entities";
        }
        const auto p = prepareOutbound(m, context());
        if (e.path().filename() == "megabyte-header-line.eml" ||
            e.path().filename() == "unterminated-folding.eml") {
            EXPECT_EQ(p.refusal, RefusalKind::MalformedMessage) << e.path();
        }
        std::string cerr;
        (void)parseChosenRecipient(m, cerr);
        (void)parseAddressList(m);
    }
    EXPECT_GE(files, 10);
}

// Redundancy: the internal sender sealed into the private-id for a peer gateway
// (private_id_seal.h, docs/demail-message.md "Private-id and correlation").
TEST(PrivateIdSeal, OpensOnlyWithTheKeyAndTheQueueIdItWasSealedFor) {
    std::string error;
    const auto seal = PrivateIdSeal::fromHex(
        "  00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n", error);
    ASSERT_TRUE(seal) << error;
    const std::string tag = seal->seal("Q20261122A1B2C3", "sachbearbeiter@firma.de");
    EXPECT_EQ(tag.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), std::string::npos)
        << "base32 only: no '.', '-' or anything a provider might not copy: " << tag;
    EXPECT_EQ(tag.find("sachbearbeiter"), std::string::npos);
    EXPECT_EQ(seal->seal("Q20261122A1B2C3", "sachbearbeiter@firma.de"), tag)
        << "deterministic: every attempt of a message sends the same bytes";
    EXPECT_NE(seal->seal("Q20261122A1B2C4", "sachbearbeiter@firma.de"), tag);
    EXPECT_EQ(seal->open("Q20261122A1B2C3", tag), "sachbearbeiter@firma.de");
    EXPECT_FALSE(seal->open("Q20261122A1B2C4", tag)) << "bound to its queue id";
    std::string flipped = tag;
    flipped[20] = flipped[20] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(seal->open("Q20261122A1B2C3", flipped));
    EXPECT_FALSE(seal->open("Q20261122A1B2C3", "AAAA"));
    EXPECT_FALSE(seal->open("Q20261122A1B2C3", "not-base32"));
    const auto other = PrivateIdSeal::fromHex(std::string(64, '7'), error);
    ASSERT_TRUE(other);
    EXPECT_FALSE(other->open("Q20261122A1B2C3", tag)) << "another organisation's key";
    // The fingerprint gateways log to compare keys: equal for the same key, not the key itself.
    EXPECT_EQ(seal->fingerprint().size(), 16u);
    EXPECT_EQ(seal->fingerprint(), PrivateIdSeal::fromHex("00112233445566778899aabbccddeeff00112233"
                                                          "445566778899aabbccddeeff",
                                                          error)
                                       ->fingerprint());
    EXPECT_NE(seal->fingerprint(), other->fingerprint());
    EXPECT_EQ(std::string("00112233445566778899aabbccddeeff").find(seal->fingerprint()),
              std::string::npos);
    for (const char* bad :
         {"", "00112233", "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}) {
        EXPECT_FALSE(PrivateIdSeal::fromHex(bad, error)) << bad;
        EXPECT_NE(error.find("64 hex digits"), std::string::npos);
    }
}

TEST(PrivateIdSeal, ThePrivateIdCarriesTheSealBetweenQueueIdAndTheSendersValue) {
    std::string error;
    const auto seal = PrivateIdSeal::fromHex(std::string(64, 'c'), error);
    ASSERT_TRUE(seal);
    auto ctx = context();
    ctx.privateIdSeal = &*seal;
    const std::string withId =
        "From: sachbearbeiter@firma.de\r\nTo: poststelle@behoerde.de-mail.de\r\n"
        "Subject: Antrag\r\nX-de-mail-private-id: AZ-2026/4711\r\n\r\nbody";
    const auto p = prepareOutbound(withId, ctx);
    ASSERT_TRUE(p.ok()) << p.reason;
    const std::string tag = seal->seal("Q20261122A1B2C3", "sachbearbeiter@firma.de");
    EXPECT_EQ(p.privateId, "Q20261122A1B2C3-" + tag + ".AZ-2026/4711");
    EXPECT_EQ(p.senderPrivateId, "AZ-2026/4711");
    EXPECT_EQ(queueIdOfPrivateId(p.privateId), "Q20261122A1B2C3");
    EXPECT_EQ(sealOfPrivateId(p.privateId), tag);
    EXPECT_EQ(senderValueOfPrivateId(p.privateId), "AZ-2026/4711");
    // A '-' in the sender's own value is not a seal.
    EXPECT_EQ(sealOfPrivateId("Q20261122A1B2C3.AZ-2026"), "");
    EXPECT_EQ(queueIdOfPrivateId("Q20261122A1B2C3.AZ-2026"), "Q20261122A1B2C3");
    // The room left for the sender's value shrinks by the seal, and the refusal says so.
    const std::size_t room = 1024 - 15 - 1 - tag.size() - 1;
    const auto withValue = [](std::size_t n) {
        std::string v;
        while (v.size() < n)
            v += "AZ 4711 ";  // white space to fold at
        v.resize(n);
        v.back() = 'Z';
        return "From: sachbearbeiter@firma.de\r\nTo: poststelle@behoerde.de-mail.de\r\n"
               "Subject: x\r\nX-de-mail-private-id: " +
               v + "\r\n\r\nbody";
    };
    const auto fits = prepareOutbound(withValue(room), ctx);
    ASSERT_TRUE(fits.ok()) << fits.reason;
    EXPECT_EQ(fits.privateId.size(), 1024u);
    const auto refused = prepareOutbound(withValue(room + 1), ctx);
    EXPECT_EQ(refused.refusal, RefusalKind::PrivateIdTooLong);
    EXPECT_NE(refused.reason.find("longer than " + std::to_string(room) + " characters"),
              std::string::npos)
        << refused.reason;
}
