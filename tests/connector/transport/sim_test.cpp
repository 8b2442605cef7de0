// Integration: the HTTPS transport with PEM credentials against the real `demail-sim provider`
// (real Poco/OpenSSL on both ends, separate processes).
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <algorithm>

#include <chrono>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "demail/connector/transport/json_api_binding.h"
#include "demail/connector/transport/probe.h"
#include "sim_process.h"

using namespace demail::connector;
using demail::connector::testing::countOf;
using demail::connector::testing::jsonNumber;
using demail::connector::testing::SimProcess;

namespace {

constexpr const char* kSender = "poststelle@firma.de-mail.de";

std::string message(const std::string& from, const std::string& recipients,
                    const std::string& privateId = "pid-1", const std::string& body = "Hallo\r\n") {
    return "From: " + from + "\r\nX-de-mail-chosen-recipient: " + recipients +
           "\r\nSubject: Testnachricht\r\nX-de-mail-private-id: " + privateId + "\r\n\r\n" + body;
}

class TransportSim : public ::testing::Test {
  protected:
    void SetUp() override {
        sim = std::make_unique<SimProcess>();
        creds = std::make_unique<PemClientCredentials>(sim->clientCert(), sim->clientKey());
        transport = std::make_unique<JsonApiConnection>(sim->endpoint(), *creds, timeouts());
    }
    virtual TransportTimeouts timeouts() { return {}; }

    Submission submission(const std::string& key, const std::string& recipients,
                          SubmitOptions options = {}, const std::string& from = kSender) {
        return Submission{key, from, message(from, recipients), options};
    }

    std::unique_ptr<SimProcess> sim;
    std::unique_ptr<PemClientCredentials> creds;
    std::unique_ptr<JsonApiConnection> transport;
};

}  // namespace

TEST_F(TransportSim, ProbeReportsProfileAccountsAndDomains) {
    ProbeReport r = probe(sim->endpoint(), *creds);
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.protocol, "TLSv1.2");
    EXPECT_EQ(r.cipher, "ECDHE-RSA-AES256-SHA384");
    EXPECT_EQ(r.group, "P-521");
    EXPECT_EQ(r.accounts, 3);
    // The provider's "domains" (behoerde, example) and our accounts' (firma, standort-b.firma).
    EXPECT_EQ(r.domains, 4);
    EXPECT_NE(r.clientSubject.find("CN=demail-gateway-test"), std::string::npos);
}

TEST_F(TransportSim, HundredSubmissionsCostOneCardSignature) {
    for (int i = 0; i < 100; ++i) {
        auto r = transport->submit(
            submission("queue-" + std::to_string(i), "to=buerger@example.de-mail.de"));
        ASSERT_TRUE(r.ok()) << i << ": " << r.error().reason;
    }
    EXPECT_EQ(transport->counters().cardSignatures.load(), 1u);
    EXPECT_EQ(transport->counters().fullHandshakes.load(), 1u);
    // The server counts the CertificateVerify messages it received, independently.
    EXPECT_EQ(sim->stat("clientSignatures"), 1);
    EXPECT_EQ(jsonNumber(sim->control("GET", "/control/state"), "submissions"), 100);
}

TEST_F(TransportSim, ResumedSessionAfterReconnectDoesNotSign) {
    ASSERT_TRUE(transport->listAccounts().ok());
    ASSERT_EQ(transport->counters().cardSignatures.load(), 1u);
    for (int i = 0; i < 3; ++i) {
        transport->disconnect();
        auto r = transport->listAccounts();
        ASSERT_TRUE(r.ok()) << r.error().reason;
        EXPECT_TRUE(transport->lastHandshake().resumed);
    }
    EXPECT_EQ(transport->counters().cardSignatures.load(), 1u);
    EXPECT_EQ(transport->counters().fullHandshakes.load(), 1u);
    EXPECT_EQ(transport->counters().resumedHandshakes.load(), 3u);
    EXPECT_EQ(sim->stat("resumedHandshakes"), 3);
    EXPECT_EQ(sim->stat("clientSignatures"), 1);
}

// A provider that closes idle keep-alive connections (demail-sim provider --idle-timeout 1): the
// next request goes out on a new connection that resumes the TLS session, so the card is not
// asked again (issue 19: signatures per 1000 messages at steady state).
TEST(TransportSimIdle, ConnectionClosedByTheProviderIsResumedWithoutASignature) {
    SimProcess sim({"--idle-timeout", "1"});
    PemClientCredentials creds(sim.clientCert(), sim.clientKey());
    JsonApiConnection transport(sim.endpoint(), creds, {});
    ASSERT_TRUE(transport.listAccounts().ok());
    // Idle for longer than the provider allows until it has closed the connection (a new
    // handshake shows it); a generous bound, no timing is asserted.
    for (int i = 0; i < 20 && sim.stat("resumedHandshakes") < 1; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        auto r = transport.listAccounts();
        ASSERT_TRUE(r.ok()) << i << ": " << r.error().reason;
    }
    EXPECT_GE(sim.stat("resumedHandshakes"), 1);
    EXPECT_TRUE(transport.lastHandshake().resumed);
    EXPECT_EQ(sim.stat("clientSignatures"), 1);
    EXPECT_EQ(transport.counters().cardSignatures.load(), 1u);
}

TEST_F(TransportSim, ParallelConnectionsResumeOneSessionAndSignOnce) {
    ASSERT_TRUE(transport->listAccounts().ok());
    const auto session = transport->tlsSession();
    ASSERT_TRUE(session);
    // Three more connections, open at the same time as the first, built from its session.
    std::vector<std::unique_ptr<JsonApiConnection>> more;
    for (int i = 0; i < 3; ++i) {
        more.push_back(
            std::make_unique<JsonApiConnection>(sim->endpoint(), *creds, timeouts(), session));
        auto r = more.back()->submit(
            submission("parallel-" + std::to_string(i), "to=buerger@example.de-mail.de"));
        ASSERT_TRUE(r.ok()) << r.error().reason;
        EXPECT_TRUE(more.back()->lastHandshake().resumed);
        EXPECT_EQ(more.back()->counters().cardSignatures.load(), 0u);
    }
    ASSERT_TRUE(transport->listAccounts().ok());  // the first one is still open and usable
    EXPECT_EQ(sim->stat("clientSignatures"), 1);
    EXPECT_EQ(sim->stat("resumedHandshakes"), 3);
}

TEST_F(TransportSim, IdempotentResubmissionIsStoredOnce) {
    auto first = transport->submit(submission("q-1", "to=buerger@example.de-mail.de"));
    ASSERT_TRUE(first.ok()) << first.error().reason;
    EXPECT_FALSE(first.value().duplicate);
    transport->disconnect();  // a retry after a lost connection
    auto again = transport->submit(submission("q-1", "to=buerger@example.de-mail.de"));
    ASSERT_TRUE(again.ok()) << again.error().reason;
    EXPECT_TRUE(again.value().duplicate);
    EXPECT_EQ(again.value().messageIds, first.value().messageIds);
    std::string state = sim->control("GET", "/control/state");
    EXPECT_EQ(jsonNumber(state, "submissions"), 1);
    EXPECT_EQ(countOf(state, "\"account\":\"buerger@example.de-mail.de\""), 1);
    // The same key with another message is a conflict, not a silent replay.
    auto conflict = transport->submit(submission("q-1", "to=poststelle@behoerde.de-mail.de"));
    ASSERT_FALSE(conflict.ok());
    EXPECT_EQ(conflict.error().kind, ErrorKind::Permanent);
    EXPECT_EQ(conflict.error().code, "idempotency_conflict");
}

// The directory look-up and the domain listing through the real binding and TLS profile against
// the simulator: a mailbox there is known with its level, an address registered by the control
// API is known or closed, any other is unknown; a domain added to the provider is listed.
TEST_F(TransportSim, AddressLookupAndDomainListing) {
    auto own = transport->lookupAddress("poststelle@firma.de-mail.de");
    ASSERT_TRUE(own.ok()) << own.error().reason;
    EXPECT_TRUE(own.value().exists);
    EXPECT_EQ(own.value().authLevel, "high");

    auto unknown = transport->lookupAddress("niemand@example.de-mail.de");
    ASSERT_TRUE(unknown.ok()) << unknown.error().reason;
    EXPECT_FALSE(unknown.value().exists);
    EXPECT_EQ(unknown.value().reason, "unknown");

    sim->control("POST",
                 "/control/address?address=amt@stadt.sammel.example&state=known&authLevel=high&"
                 "accessOpening=true");
    auto known = transport->lookupAddress("Amt@Stadt.Sammel.Example");
    ASSERT_TRUE(known.ok()) << known.error().reason;
    EXPECT_TRUE(known.value().exists);
    EXPECT_TRUE(known.value().accessOpening);

    sim->control("POST", "/control/address?address=amt@stadt.sammel.example&state=closed");
    auto closed = transport->lookupAddress("amt@stadt.sammel.example");
    ASSERT_TRUE(closed.ok()) << closed.error().reason;
    EXPECT_FALSE(closed.value().exists);
    EXPECT_EQ(closed.value().reason, "closed");

    auto before = transport->listAccounts();
    ASSERT_TRUE(before.ok()) << before.error().reason;
    EXPECT_EQ(
        std::count(before.value().domains.begin(), before.value().domains.end(), "sammel.example"),
        0);
    sim->control("POST", "/control/domain?domain=sammel.example");
    auto after = transport->listAccounts();
    ASSERT_TRUE(after.ok()) << after.error().reason;
    EXPECT_EQ(
        std::count(after.value().domains.begin(), after.value().domains.end(), "sammel.example"),
        1);
}

TEST_F(TransportSim, SubmissionChecksArePermanentErrorsWithReason) {
    // Our account, but the message names another sender: the message's fault.
    auto notOwned = transport->submit(Submission{
        "k1", kSender, message("chef@fremd.de-mail.de", "to=buerger@example.de-mail.de"), {}});
    ASSERT_FALSE(notOwned.ok());
    EXPECT_EQ(notOwned.error().kind, ErrorKind::Permanent);
    EXPECT_EQ(notOwned.error().code, "sender_not_owned");
    // An account not bound to our certificate: that account's trouble, not this message's.
    auto notBound = transport->submit(
        submission("k1b", "to=buerger@example.de-mail.de", {}, "chef@fremd.de-mail.de"));
    ASSERT_FALSE(notBound.ok());
    EXPECT_EQ(notBound.error().kind, ErrorKind::OperatorAction);
    EXPECT_EQ(notBound.error().code, "not_authorised");
    EXPECT_TRUE(notBound.error().accountLevel);

    auto external = transport->submit(submission("k2", "to=someone@gmail.com"));
    ASSERT_FALSE(external.ok());
    EXPECT_EQ(external.error().code, "recipient_not_demail");
    EXPECT_NE(external.error().reason.find("someone@gmail.com"), std::string::npos);

    SubmitOptions personal;
    personal.personal = true;
    auto lowLevel = transport->submit(
        submission("k3", "to=buerger@example.de-mail.de", personal, "rechnung@firma.de-mail.de"));
    ASSERT_FALSE(lowLevel.ok());
    EXPECT_EQ(lowLevel.error().code, "option_not_allowed");

    Submission big = submission("k4", "to=buerger@example.de-mail.de");
    big.rfc5322 =
        message(kSender, "to=buerger@example.de-mail.de", "p",
                std::string(45u * 1024u * 1024u, 'x'));  // over the contract's 45 MiB gross
    auto tooLarge = transport->submit(big);
    ASSERT_FALSE(tooLarge.ok());
    EXPECT_EQ(tooLarge.error().kind, ErrorKind::Permanent);
    EXPECT_EQ(tooLarge.error().code, "too_large");
    EXPECT_EQ(jsonNumber(sim->control("GET", "/control/state"), "submissions"), 0);
}

TEST_F(TransportSim, StreamedBodyArrivesWholeAndAShortStreamFailsCleanly) {
    std::string body;
    for (int i = 0; body.size() < 3u * 1024u * 1024u; ++i)
        body += "Zeile " + std::to_string(i) + " des Anhangs\r\n";
    Submission s = submission("stream-1", "to=buerger@example.de-mail.de");
    s.rfc5322 = message(kSender, "to=buerger@example.de-mail.de", "stream-1", "");
    std::istringstream stream(body);
    s.bodyStream = &stream;
    s.bodyLength = body.size();
    auto r = transport->submit(s);
    ASSERT_TRUE(r.ok()) << r.error().reason;
    // The copy in the recipient's mailbox: the only stored message so far.
    const auto state = Poco::JSON::Parser()
                           .parse(sim->control("GET", "/control/state"))
                           .extract<Poco::JSON::Object::Ptr>();
    const auto messages = state->getArray("messages");
    ASSERT_EQ(messages->size(), 1u);
    const std::string id = messages->getObject(0)->getValue<std::string>("id");
    const std::string stored = sim->control("GET", "/control/message/" + id);
    ASSERT_GE(stored.size(), body.size());
    EXPECT_EQ(stored.substr(stored.size() - body.size()), body);

    // The stream ends early: the provider must not wait for the rest, nor store half a message.
    Submission shortOne = submission("stream-2", "to=buerger@example.de-mail.de");
    shortOne.rfc5322 = message(kSender, "to=buerger@example.de-mail.de", "stream-2", "");
    std::istringstream truncated(body.substr(0, 1000));
    shortOne.bodyStream = &truncated;
    shortOne.bodyLength = body.size();
    auto failed = transport->submit(shortOne);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().kind, ErrorKind::Retryable);
    EXPECT_EQ(failed.error().code, "short_body");
    EXPECT_EQ(jsonNumber(sim->control("GET", "/control/state"), "submissions"), 1);
    auto after = transport->submit(submission("stream-3", "to=buerger@example.de-mail.de"));
    EXPECT_TRUE(after.ok()) << after.error().reason;
    // The retry of the cut-short submission, whole this time, under the same key: a first
    // submission, not a conflict with the half the provider never fully received (issue 17).
    std::istringstream whole(body);
    shortOne.bodyStream = &whole;
    auto retried = transport->submit(shortOne);
    ASSERT_TRUE(retried.ok()) << retried.error().code << ": " << retried.error().reason;
    EXPECT_FALSE(retried.value().duplicate);
}

TEST_F(TransportSim, BccSplitAndConfirmationsCarryPrivateId) {
    SubmitOptions opts;
    opts.dispatchConfirmation = true;
    opts.receiptConfirmation = true;
    Submission s{"bcc-1", kSender,
                 message(kSender,
                         "to=buerger@example.de-mail.de; bcc=poststelle@behoerde.de-mail.de, "
                         "rechnung@firma.de-mail.de",
                         "private-42"),
                 opts};
    auto r = transport->submit(s);
    ASSERT_TRUE(r.ok()) << r.error().reason;
    EXPECT_EQ(r.value().messageIds.size(), 3u);  // to-copy + one per bcc recipient

    auto inbox = transport->listInbound(kSender);
    ASSERT_TRUE(inbox.ok()) << inbox.error().reason;
    int dispatch = 0, receipt = 0;
    for (const auto& ref : inbox.value()) {
        dispatch += ref.messageType == "confirmation of dispatch";
        receipt += ref.messageType == "confirmation of receipt";
        auto data = transport->fetch(ref.id);
        ASSERT_TRUE(data.ok()) << data.error().reason;
        EXPECT_NE(data.value().find("X-de-mail-private-id: private-42"), std::string::npos);
        EXPECT_NE(data.value().find("xmlns=\"urn:de-mail\""), std::string::npos);
    }
    EXPECT_EQ(dispatch, 1);
    EXPECT_EQ(receipt, 3);
    // The bcc copy only names its own bcc recipient.
    auto bccInbox = transport->listInbound("rechnung@firma.de-mail.de");
    ASSERT_TRUE(bccInbox.ok());
    ASSERT_EQ(bccInbox.value().size(), 1u);
    auto copy = transport->fetch(bccInbox.value()[0].id);
    ASSERT_TRUE(copy.ok());
    EXPECT_NE(copy.value().find("X-de-mail-chosen-recipient: bcc=rechnung@firma.de-mail.de\r\n"),
              std::string::npos);
    EXPECT_EQ(copy.value().find("poststelle@behoerde"), std::string::npos);
    EXPECT_NE(copy.value().find("X-de-mail-originator-provider: "), std::string::npos);
}

TEST_F(TransportSim, RetrieveConfirmationOnFirstFetchAtLevelHigh) {
    SubmitOptions opts;
    opts.personal = true;
    opts.retrieveConfirmation = true;
    auto r =
        transport->submit(submission("abh-1", "to=poststelle@standort-b.firma.de-mail.de", opts));
    ASSERT_TRUE(r.ok()) << r.error().reason;
    auto countRetrieve = [&] {
        auto inbox = transport->listInbound(kSender);
        EXPECT_TRUE(inbox.ok());
        int n = 0;
        for (const auto& ref : inbox.value())
            n += ref.messageType == "confirmation of retrieve";
        return n;
    };
    EXPECT_EQ(countRetrieve(), 0);
    auto in = transport->listInbound("poststelle@standort-b.firma.de-mail.de");
    ASSERT_TRUE(in.ok());
    ASSERT_EQ(in.value().size(), 1u);
    ASSERT_TRUE(transport->fetch(in.value()[0].id).ok());
    ASSERT_TRUE(transport->fetch(in.value()[0].id).ok());  // only the first retrieval confirms
    EXPECT_EQ(countRetrieve(), 1);
}

TEST_F(TransportSim, InboxIsAtLeastOnceUntilAcknowledged) {
    const std::string inbound =
        "From: buerger@example.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\n"
        "Subject: Antrag\r\nX-de-mail-message-type: normal\r\n\r\nText\r\n";
    int status = 0;
    std::string injected = sim->control(
        "POST", "/control/inject?account=poststelle@firma.de-mail.de", inbound, &status);
    ASSERT_EQ(status, 201) << injected;

    for (int round = 0; round < 2; ++round) {  // listed again while not acknowledged
        auto list = transport->listInbound(kSender);
        ASSERT_TRUE(list.ok()) << list.error().reason;
        ASSERT_EQ(list.value().size(), 1u);
        auto data = transport->fetch(list.value()[0].id);
        ASSERT_TRUE(data.ok());
        EXPECT_EQ(data.value(), inbound);
    }
    auto list = transport->listInbound(kSender);
    ASSERT_TRUE(transport->acknowledge(list.value()[0].id).ok());
    EXPECT_TRUE(transport->listInbound(kSender).value().empty());
    auto unknown = transport->acknowledge("in-999");
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().kind, ErrorKind::Permanent);
    // Another certificate's account is not readable.
    auto foreign = transport->listInbound("buerger@example.de-mail.de");
    ASSERT_FALSE(foreign.ok());
    EXPECT_EQ(foreign.error().kind, ErrorKind::OperatorAction);
    // An account not bound to our certificate concerns that account only.
    EXPECT_TRUE(foreign.error().accountLevel);
}

TEST_F(TransportSim, BlockedAccountNeedsOperatorAndRecovers) {
    int status = 0;
    sim->control("POST", "/control/block?account=poststelle@firma.de-mail.de&blocked=true", "",
                 &status);
    ASSERT_EQ(status, 200);
    auto blocked = transport->submit(submission("blk-1", "to=buerger@example.de-mail.de"));
    ASSERT_FALSE(blocked.ok());
    EXPECT_EQ(blocked.error().kind, ErrorKind::OperatorAction);
    EXPECT_EQ(blocked.error().code, "account_blocked");
    EXPECT_TRUE(blocked.error().accountLevel);  // pauses this account, not the card
    // ACM_FU §3.6: a blocked account still receives; its inbox is listed.
    auto inbox = transport->listInbound("poststelle@firma.de-mail.de");
    EXPECT_TRUE(inbox.ok()) << inbox.error().reason;
    sim->control("POST", "/control/block?account=poststelle@firma.de-mail.de&blocked=false");
    auto again = transport->submit(submission("blk-1", "to=buerger@example.de-mail.de"));
    ASSERT_TRUE(again.ok()) << again.error().reason;  // not remembered as a final answer
    EXPECT_FALSE(again.value().duplicate);
}

namespace {
class TransportFaults : public TransportSim {
  protected:
    TransportTimeouts timeouts() override {
        TransportTimeouts t;
        t.connect = Poco::Timespan(3, 0);
        t.io = Poco::Timespan(1, 0);
        return t;
    }
    // Applies a fault, checks the error kind and code, then checks recovery.
    void expectFault(const std::string& faultJson, ErrorKind kind,
                     std::initializer_list<const char*> codes, bool newConnection = false) {
        SCOPED_TRACE(faultJson);
        ASSERT_TRUE(transport->listAccounts().ok());
        sim->setFault(faultJson);
        if (newConnection)
            transport->disconnect();
        auto r = transport->listAccounts();
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind, kind) << r.error().code << ": " << r.error().reason;
        bool codeOk = false;
        for (const char* c : codes)
            codeOk = codeOk || r.error().code == c;
        EXPECT_TRUE(codeOk) << r.error().code << ": " << r.error().reason;
        sim->setFault(R"({"mode":"none"})");
        auto again = transport->listAccounts();
        EXPECT_TRUE(again.ok()) << again.error().reason;
    }
};
}  // namespace

TEST_F(TransportFaults, ServerErrorsAndRateLimitAreRetryable) {
    expectFault(R"({"mode":"http_status","status":503})", ErrorKind::Retryable, {"http_503"});
    expectFault(R"({"mode":"http_status","status":429})", ErrorKind::Retryable, {"http_429"});
    expectFault(R"({"mode":"http_status","status":500})", ErrorKind::Retryable, {"http_500"});
}

TEST_F(TransportFaults, MalformedReplyIsRetryable) {
    expectFault(R"({"mode":"malformed"})", ErrorKind::Retryable, {"malformed_reply"});
}

TEST_F(TransportFaults, BlockedAccountNeedsOperator) {
    expectFault(R"({"mode":"blocked_account"})", ErrorKind::OperatorAction, {"account_blocked"});
}

TEST_F(TransportFaults, ResetMidBodyIsRetryable) {
    expectFault(R"({"mode":"reset_mid_body"})", ErrorKind::Retryable,
                {"connection_reset", "truncated_reply", "tls_io"});
}

TEST_F(TransportFaults, StallHitsTheReadTimeout) {
    expectFault(R"({"mode":"stall","stallSeconds":5})", ErrorKind::Retryable, {"timeout"});
}

TEST_F(TransportFaults, RefusedConnectionIsRetryable) {
    expectFault(R"({"mode":"refuse"})", ErrorKind::Retryable, {"connect_refused"}, true);
}

TEST_F(TransportFaults, TlsAlertIsRetryable) {
    expectFault(R"({"mode":"tls_alert"})", ErrorKind::Retryable, {"tls_handshake"}, true);
}

TEST_F(TransportFaults, HandshakeStallHitsTheConnectTimeout) {
    expectFault(R"({"mode":"stall_handshake","stallSeconds":10})", ErrorKind::Retryable,
                {"timeout"}, true);
}
