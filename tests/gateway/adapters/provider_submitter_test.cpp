// ProviderSubmitter with a recording transport: what it hands to the provider, and that only the
// header section is held in memory while the body is streamed.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "demail/gateway/provider_submitter.h"

using namespace demail;
using namespace demail::gateway;

namespace {

class RecordingTransport : public connector::ProviderTransport {
  public:
    connector::Result<connector::Done> open() override { return connector::Done{}; }
    connector::Result<connector::AccountListing> listAccounts() override {
        return connector::AccountListing{};
    }
    connector::Result<connector::AddressInfo> lookupAddress(const std::string&) override {
        return connector::AddressInfo{};
    }
    connector::Result<connector::SubmitReceipt> submit(const connector::Submission& s) override {
        ++calls;
        inMemory = s.rfc5322;
        sent = s.rfc5322;
        if (s.bodyStream) {
            std::string rest(s.bodyLength, '\0');
            s.bodyStream->read(rest.data(), static_cast<std::streamsize>(rest.size()));
            rest.resize(static_cast<std::size_t>(s.bodyStream->gcount()));
            sent += rest;
        }
        if (submitError)
            return *submitError;
        if (conflict)
            return connector::TransportError{
                connector::ErrorKind::Permanent, "idempotency_conflict",
                "Idempotency-Key reused for a different submission", 409};
        return connector::SubmitReceipt{{"id-1"}, false};
    }
    connector::OutcomeResolution outcomeResolution() const override { return resolution; }
    connector::Result<std::optional<connector::SubmitReceipt>> findSubmission(
        const std::string& account, const std::string& privateId) override {
        lookups.push_back(account + " " + privateId);
        if (lookupError)
            return *lookupError;
        return found;
    }
    connector::Result<std::vector<connector::InboundRef>> listInbound(const std::string&) override {
        return std::vector<connector::InboundRef>{};
    }
    connector::Result<std::string> fetch(const std::string&) override { return std::string(); }
    connector::Result<connector::Done> acknowledge(const std::string&) override {
        return connector::Done{};
    }
    int calls = 0;
    bool conflict = false;
    connector::OutcomeResolution resolution = connector::OutcomeResolution::IdempotencyKey;
    std::optional<connector::SubmitReceipt> found;
    std::optional<connector::TransportError> lookupError;
    std::optional<connector::TransportError> submitError;
    std::vector<std::string> lookups;
    std::string inMemory, sent;
};

class ProviderSubmission : public ::testing::Test {
  protected:
    ProviderSubmission() : journal(dir()), submitter(transport, journal, "provider.test") {
        connector::AccountMap accounts;
        accounts.entries.push_back({"sachbearbeiter@firma.de", "poststelle@firma.de-mail.de"});
        submitter.update({{"de-mail.de"}, accounts});
    }
    static std::string dir() {
        return ::testing::TempDir() + "/submitter-journal-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }
    SubmitOutcome submit(const std::string& message,
                         const std::string& queueId = "20261123T120000-abcdef") {
        Envelope env;
        env.queueId = queueId;
        env.sender = "sachbearbeiter@firma.de";
        env.recipients = {{"amt@behoerde.de-mail.de", "", ""}};
        env.size = message.size();
        std::istringstream body(message);
        return submitter.submit(env, body);
    }
    RecordingTransport transport;
    SentJournal journal;
    ProviderSubmitter submitter;
};

const std::string kHeaders =
    "From: poststelle@firma.de-mail.de\r\nTo: amt@behoerde.de-mail.de\r\n"
    "X-de-mail-sender: forged@firma.de-mail.de\r\nSubject: Antrag\r\n\r\n";

}  // namespace

TEST_F(ProviderSubmission, BodyIsStreamedWholeAndOnlyTheHeadersAreHeld) {
    std::string body;
    while (body.size() < 4u * 1024u * 1024u)
        body += "X-de-mail-sender: in the body this is text, not a header\r\n";
    const auto out = submit(kHeaders + body);
    ASSERT_EQ(out.kind, SubmitOutcome::Kind::Accepted) << out.detail;
    EXPECT_LT(transport.inMemory.size(), 4096u);
    ASSERT_GE(transport.sent.size(), body.size());
    EXPECT_EQ(transport.sent.substr(transport.sent.size() - body.size()), body);
    const std::string head = transport.sent.substr(0, transport.sent.find("\r\n\r\n"));
    EXPECT_EQ(head.find("forged@"), std::string::npos) << "forged provider header not stripped";
    EXPECT_NE(head.find("X-de-mail-private-id: 20261123T120000-abcdef"), std::string::npos);
}

TEST_F(ProviderSubmission, MessageWithoutBodyIsSentWhole) {
    const auto out = submit("From: poststelle@firma.de-mail.de\r\nTo: amt@behoerde.de-mail.de\r\n");
    ASSERT_EQ(out.kind, SubmitOutcome::Kind::Accepted) << out.detail;
    EXPECT_NE(transport.sent.find("To: amt@behoerde.de-mail.de"), std::string::npos);
}

TEST_F(ProviderSubmission, OversizedHeaderSectionIsRefusedNotCut) {
    std::string headers = "From: poststelle@firma.de-mail.de\r\nTo: amt@behoerde.de-mail.de\r\n";
    while (headers.size() <= (1u << 20))
        headers += "X-Filler: " + std::string(900, 'f') + "\r\n";
    // Past the limit a forged provider header would escape the check if the section were cut.
    const auto out = submit(headers + "X-de-mail-sender: forged@firma.de-mail.de\r\n\r\nbody\r\n");
    EXPECT_EQ(out.kind, SubmitOutcome::Kind::Permanent);
    EXPECT_EQ(out.status, "5.6.0");
    EXPECT_EQ(transport.calls, 0);
}

TEST_F(ProviderSubmission, AConflictUnderOurOwnKeyIsAnEarlierAttemptNotABounce) {
    // Only an earlier attempt of this message can hold its queue id at the provider: the message
    // went out, so it must not come back to its sender as a bounce (issue 17).
    transport.conflict = true;
    const auto out = submit(kHeaders + "body\r\n");
    EXPECT_EQ(out.kind, SubmitOutcome::Kind::Accepted) << out.detail;
    EXPECT_NE(out.detail.find("already at the provider"), std::string::npos) << out.detail;
}

TEST_F(ProviderSubmission, AnIdempotentBindingIsNeverAskedForALookUp) {
    EXPECT_EQ(submit(kHeaders + "body\r\n").kind, SubmitOutcome::Kind::Accepted);
    EXPECT_TRUE(transport.lookups.empty());
    EXPECT_EQ(transport.calls, 1);
}

TEST_F(ProviderSubmission, ALookUpBindingIsAskedByQueueIdBeforeEverySubmission) {
    transport.resolution = connector::OutcomeResolution::LookupByPrivateId;
    // Not found: submitted.
    auto out = submit(kHeaders + "body\r\n");
    EXPECT_EQ(out.kind, SubmitOutcome::Kind::Accepted) << out.detail;
    ASSERT_EQ(transport.lookups.size(), 1u);
    EXPECT_EQ(transport.lookups[0], "poststelle@firma.de-mail.de 20261123T120000-abcdef");
    EXPECT_EQ(transport.calls, 1);
    // Found: accepted without sending it again.
    transport.found = connector::SubmitReceipt{{"<dm-1@provider>"}, true};
    out = submit(kHeaders + "body\r\n");
    EXPECT_EQ(out.kind, SubmitOutcome::Kind::Accepted) << out.detail;
    EXPECT_NE(out.detail.find("not sent again"), std::string::npos) << out.detail;
    EXPECT_EQ(transport.calls, 1);
}

TEST_F(ProviderSubmission, WithoutALookUpAnswerNothingIsSent) {
    transport.resolution = connector::OutcomeResolution::LookupByPrivateId;
    transport.lookupError =
        connector::TransportError{connector::ErrorKind::Retryable, "timeout", "timeout", 0};
    auto out = submit(kHeaders + "body\r\n");
    EXPECT_EQ(out.kind, SubmitOutcome::Kind::Retryable) << out.detail;
    EXPECT_EQ(transport.calls, 0);
    // A provider without the look-up (404) is a configuration problem: pause, never bounce.
    transport.lookupError = connector::TransportError{connector::ErrorKind::Permanent, "not_found",
                                                      "provider answered 404 not_found", 404};
    out = submit(kHeaders + "body\r\n");
    EXPECT_EQ(out.kind, SubmitOutcome::Kind::OperatorAction) << out.detail;
    EXPECT_NE(out.detail.find("look-up failed"), std::string::npos) << out.detail;
    EXPECT_EQ(transport.calls, 0);
}

TEST_F(ProviderSubmission, BlockedAccountPausesThatAccountOnlyAndCostsOneProbePerInterval) {
    AccountPauses pauses(std::chrono::hours(1));
    submitter.accountPauses = &pauses;
    transport.submitError = connector::TransportError{
        connector::ErrorKind::OperatorAction, "account_blocked",
        "provider answered 403 account_blocked: account is blocked", 403, true};
    auto out = submit(kHeaders + "body\r\n");
    EXPECT_EQ(out.kind, SubmitOutcome::Kind::AccountPaused) << out.detail;
    EXPECT_EQ(out.account, "poststelle@firma.de-mail.de");
    EXPECT_TRUE(pauses.paused("poststelle@firma.de-mail.de"));
    EXPECT_EQ(transport.calls, 1);
    // Paused: the next message of the account is held without a request, same reason.
    const auto again = submit(kHeaders + "body\r\n");
    EXPECT_EQ(again.kind, SubmitOutcome::Kind::AccountPaused);
    EXPECT_EQ(again.detail, out.detail);
    EXPECT_EQ(transport.calls, 1);
    // Resumed (the listing shows it unblocked): it is sent, and an acceptance clears the pause.
    transport.submitError.reset();
    pauses.resume("poststelle@firma.de-mail.de", "test");
    EXPECT_EQ(submit(kHeaders + "body\r\n").kind, SubmitOutcome::Kind::Accepted);
    EXPECT_EQ(transport.calls, 2);
}

TEST_F(ProviderSubmission, RefusedCertificateStillPausesEverything) {
    AccountPauses pauses(std::chrono::hours(1));
    submitter.accountPauses = &pauses;
    transport.submitError =
        connector::TransportError{connector::ErrorKind::OperatorAction, "certificate_revoked",
                                  "provider answered 403 certificate_revoked", 403, false};
    const auto out = submit(kHeaders + "body\r\n");
    EXPECT_EQ(out.kind, SubmitOutcome::Kind::OperatorAction) << out.detail;
    EXPECT_TRUE(out.providerRefused);  // an HTTP answer: no use logging in to the card again
    EXPECT_TRUE(pauses.all().empty());
}

TEST_F(ProviderSubmission, TheSentRecordKeepsWhatTheSendersApplicationKnowsItBy) {
    // The gateway's own record (sent/<id>): sender, account, the sender's own private-id (sent as
    // "<queue id>.<value>"), its Message-ID, the recipients and the provider's message ids.
    const std::string id = "4KX2M9QZ7R1B3C5D6E8F0G";
    transport.resolution = connector::OutcomeResolution::LookupByPrivateId;
    const auto out = submit(
        "From: sachbearbeiter@firma.de\r\nTo: amt@behoerde.de-mail.de\r\n"
        "Message-ID: <az4711@fv.firma.de>\r\n"
        "X-de-mail-private-id: AZ-2026/4711\r\nSubject: Antrag\r\n\r\nbody\r\n",
        id);
    ASSERT_EQ(out.kind, SubmitOutcome::Kind::Accepted) << out.detail;
    EXPECT_NE(transport.sent.find("X-de-mail-private-id: " + id + ".AZ-2026/4711\r\n"),
              std::string::npos);
    ASSERT_EQ(transport.lookups.size(), 1u);
    EXPECT_EQ(transport.lookups[0], "poststelle@firma.de-mail.de " + id + ".AZ-2026/4711")
        << "the look-up asks for what was sent";
    const auto r = journal.lookup(id);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->sender, "sachbearbeiter@firma.de");
    EXPECT_EQ(r->account, "poststelle@firma.de-mail.de");
    EXPECT_EQ(r->privateId, "AZ-2026/4711");
    EXPECT_EQ(r->messageId, "<az4711@fv.firma.de>");
    EXPECT_EQ(r->recipients, std::vector<std::string>{"amt@behoerde.de-mail.de"});
    EXPECT_EQ(r->providerIds, std::vector<std::string>{"id-1"});
}

TEST(SentRecord, RoundTripsEscapedValuesAndReadsTheOldFormat) {
    SentRecord r;
    r.sender = "a@firma.de";
    r.account = "poststelle@firma.de-mail.de";
    r.privateId = "AZ 100% =\n\rneu";
    r.providerIds = {"<x@p>", "<y@p>"};
    const std::string text = encodeSentRecord(r);
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5) << text;
    const auto back = decodeSentRecord(text);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->privateId, r.privateId);
    EXPECT_EQ(back->providerIds, r.providerIds);
    const auto old = decodeSentRecord("sachbearbeiter@firma.de\n");  // before issue 21
    ASSERT_TRUE(old);
    EXPECT_EQ(old->sender, "sachbearbeiter@firma.de");
    EXPECT_TRUE(old->account.empty());
    EXPECT_FALSE(decodeSentRecord(""));
    // The receipt ids are appended without a flush: a crash may cut the last line short.
    const auto torn = decodeSentRecord("a@firma.de\nprovider-id=<x@p>\nprovider-id=<y@");
    ASSERT_TRUE(torn);
    EXPECT_EQ(torn->providerIds, std::vector<std::string>{"<x@p>"});
}
