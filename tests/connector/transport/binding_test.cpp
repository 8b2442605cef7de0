// Unit tests: HTTP error mapping to the taxonomy, JSON binding, URL and profile table.
#include <gtest/gtest.h>

#include "demail/connector/transport/json_api_binding.h"
#include "demail/connector/transport/provider_binding.h"
#include "demail/connector/transport/provider_endpoint.h"
#include "demail/connector/transport/tls_profile.h"

using namespace demail::connector;

TEST(ErrorMapping, ServerErrorsAndRateLimitAreRetryable) {
    for (int status : {500, 502, 503, 504, 429, 408}) {
        auto e = api::mapHttpError(status, "");
        EXPECT_EQ(e.kind, ErrorKind::Retryable) << status;
        EXPECT_EQ(e.code, "http_" + std::to_string(status));
        EXPECT_EQ(e.httpStatus, status);
    }
}

TEST(ErrorMapping, ValidationErrorsArePermanentWithReason) {
    auto e = api::mapHttpError(
        422, R"({"error":{"code":"recipient_not_demail","message":"recipient a@b.de is not"}})");
    EXPECT_EQ(e.kind, ErrorKind::Permanent);
    EXPECT_EQ(e.code, "recipient_not_demail");
    EXPECT_NE(e.reason.find("recipient a@b.de"), std::string::npos);
    EXPECT_EQ(api::mapHttpError(413, "").kind, ErrorKind::Permanent);
    EXPECT_EQ(api::mapHttpError(409, "").kind, ErrorKind::Permanent);
    EXPECT_EQ(api::mapHttpError(404, "not json").kind, ErrorKind::Permanent);
}

TEST(ErrorMapping, BlockedAccountOrCertificateNeedsOperator) {
    auto e = api::mapHttpError(403, R"({"error":{"code":"account_blocked","message":"x"}})");
    EXPECT_EQ(e.kind, ErrorKind::OperatorAction);
    EXPECT_EQ(e.code, "account_blocked");
    // The account's trouble, not the card's (ACM_FU §3.6): the gateway pauses that account only.
    EXPECT_TRUE(e.accountLevel);
    EXPECT_TRUE(api::mapHttpError(403, R"({"error":{"code":"not_authorised"}})").accountLevel);
    const auto cert = api::mapHttpError(401, R"({"error":{"code":"certificate_unknown"}})");
    EXPECT_EQ(cert.kind, ErrorKind::OperatorAction);
    EXPECT_FALSE(cert.accountLevel);  // our certificate: every account, the card's matter
    EXPECT_FALSE(api::mapHttpError(403, "").accountLevel);
    EXPECT_FALSE(api::mapHttpError(422, R"({"error":{"code":"option_not_allowed"}})").accountLevel);
    // An operator code wins even with another status.
    EXPECT_EQ(api::mapHttpError(400, R"({"error":{"code":"token_blocked"}})").kind,
              ErrorKind::OperatorAction);
}

TEST(ErrorMapping, TransportFailures) {
    EXPECT_EQ(transportFailure("connect_refused", "x").kind, ErrorKind::Retryable);
    EXPECT_EQ(transportFailure("timeout", "x").kind, ErrorKind::Retryable);
    EXPECT_EQ(transportFailure("connection_reset", "x").kind, ErrorKind::Retryable);
    EXPECT_EQ(transportFailure("tls_server_certificate", "x").kind, ErrorKind::OperatorAction);
    EXPECT_EQ(transportFailure("tls_profile_violation", "x").kind, ErrorKind::OperatorAction);
}

TEST(JsonBinding, Accounts) {
    auto r = api::parseAccounts(
        R"({"accounts":[{"address":"poststelle@firma.de-mail.de","authLevel":"high",)"
        R"("retrieveConfirmation":true},{"address":"x@b.de-mail.de","blocked":true}]})");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r.value().size(), 2u);
    EXPECT_EQ(r.value()[0].domain, "firma.de-mail.de");
    EXPECT_EQ(r.value()[0].authLevel, "high");
    EXPECT_TRUE(r.value()[0].retrieveConfirmationAllowed);
    EXPECT_EQ(r.value()[1].authLevel, "normal");
    EXPECT_TRUE(r.value()[1].blocked);
}

TEST(JsonBinding, MalformedRepliesAreRetryable) {
    for (const char* body : {"", "{", "[]", R"({"accounts":{}})", R"({"accounts":[{"x":1}]})",
                             R"({"accounts": [{"addr)"}) {
        auto r = api::parseAccounts(body);
        ASSERT_FALSE(r.ok()) << body;
        EXPECT_EQ(r.error().kind, ErrorKind::Retryable);
        EXPECT_EQ(r.error().code, "malformed_reply");
    }
}

TEST(JsonBinding, SubmitReceiptAndInbox) {
    auto s = api::parseSubmitReceipt(
        201, R"({"id":"<a@x>","messageIds":["<a@x>","<b@x>"],"duplicate":false})");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s.value().messageIds.size(), 2u);
    EXPECT_FALSE(s.value().duplicate);
    auto d = api::parseSubmitReceipt(200, R"({"messageIds":["<a@x>"],"duplicate":true})");
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(d.value().duplicate);
    EXPECT_FALSE(api::parseSubmitReceipt(201, R"({"messageIds":[]})").ok());

    auto in = api::parseInbox(
        R"({"messages":[{"id":"in-1","account":"a@b.de-mail.de","messageType":"normal","size":12}]})");
    ASSERT_TRUE(in.ok());
    ASSERT_EQ(in.value().size(), 1u);
    EXPECT_EQ(in.value()[0].id, "in-1");
    EXPECT_EQ(in.value()[0].size, 12u);
    // An id that would escape the URL path is refused.
    EXPECT_FALSE(api::parseInbox(R"({"messages":[{"id":"../x"}]})").ok());
}

TEST(JsonBinding, ControlCharactersInAccountOrAddressAreRefused) {
    // JSON escapes can carry CR/LF into what becomes RCPT TO (H2): a clear retryable error.
    for (const char* body :
         {R"({"messages":[{"id":"in-1","account":"a@firma.de-mail.de\r\nRCPT TO:<x@y.de>"}]})",
          R"({"messages":[{"id":"in-1","account":"a@firma.de-mail.de\u0000"}]})",
          R"({"messages":[{"id":"in-1","account":"a@firma.de-mail.de> SIZE=1"}]})",
          R"({"messages":[{"id":"in\n1","account":"a@firma.de-mail.de"}]})"}) {
        const auto r = api::parseInbox(body);
        ASSERT_FALSE(r.ok()) << body;
        EXPECT_EQ(r.error().kind, ErrorKind::Retryable);
        EXPECT_EQ(r.error().code, "malformed_reply");
    }
    EXPECT_FALSE(api::parseAccounts(R"({"accounts":[{"address":"a@b.de\r\nX"}]})").ok());
    EXPECT_TRUE(
        api::parseInbox(R"({"messages":[{"id":"in-1","account":"a@firma.de-mail.de"}]})").ok());
}

TEST(JsonBinding, OptionsJsonRoundTrip) {
    SubmitOptions o;
    o.personal = true;
    o.retrieveConfirmation = true;
    std::string j = api::submitOptionsJson(o);
    EXPECT_NE(j.find("\"personal\":true"), std::string::npos);
    EXPECT_NE(j.find("\"retrieveConfirmation\":true"), std::string::npos);
    EXPECT_NE(j.find("\"dispatchConfirmation\":false"), std::string::npos);
}

TEST(Endpoint, UrlParsing) {
    auto u = parseHttpsUrl("https://gw.example.de:8443/api/");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "gw.example.de");
    EXPECT_EQ(u->port, 8443);
    EXPECT_EQ(u->basePath, "/api");
    EXPECT_EQ(parseHttpsUrl("https://h")->port, 443);
    EXPECT_FALSE(parseHttpsUrl("http://h"));
    EXPECT_FALSE(parseHttpsUrl("https://h:99999"));
    EXPECT_FALSE(parseHttpsUrl("https://user@h"));
}

TEST(Endpoint, ProfilesAndCompletion) {
    ASSERT_TRUE(findProviderProfile("mentana"));
    ASSERT_TRUE(findProviderProfile("telekom"));
    EXPECT_TRUE(findProviderProfile("telekom")->serviceDiscontinued);
    ASSERT_TRUE(findProviderProfile("t-systems"));
    EXPECT_FALSE(findProviderProfile("gmx"));
    ProviderEndpoint e{"nope", "https://h", "/etc/hostname", "", {}};
    EXPECT_NE(completeEndpoint(e)->find("provider.profile"), std::string::npos);
    ProviderEndpoint m{"mentana", "", "/etc/hostname", "", {}};
    EXPECT_NE(completeEndpoint(m)->find("provider.url"), std::string::npos);
    ProviderEndpoint ok{"mentana", "https://gw.example.de", "/etc/hostname", "", {}};
    EXPECT_FALSE(completeEndpoint(ok));
    EXPECT_EQ(effectiveServerName(ok), "gw.example.de");
}

TEST(TlsProfile, NegotiatedCheck) {
    HandshakeInfo good;
    good.completed = true;
    good.protocol = "TLSv1.2";
    good.cipher = "ECDHE-RSA-AES256-SHA384";
    good.group = "P-521";
    EXPECT_FALSE(checkNegotiated(good));
    auto v13 = good;
    v13.protocol = "TLSv1.3";
    EXPECT_EQ(*checkNegotiated(v13), "server negotiated TLSv1.3, profile requires TLSv1.2");
    auto p256 = good;
    p256.group = "P-256";
    EXPECT_NE(checkNegotiated(p256)->find("group P-256"), std::string::npos);
    auto resumed = good;
    resumed.resumed = true;
    resumed.group.clear();
    EXPECT_FALSE(checkNegotiated(resumed));
    auto gcm = good;
    gcm.cipher = "ECDHE-RSA-AES128-GCM-SHA256";
    EXPECT_TRUE(checkNegotiated(gcm));
}

TEST(JsonBinding, SentItemsLookUp) {
    auto found = api::parseLookup(
        R"({"submissions":[{"id":"<dm-1@p>","privateId":"q-7","messageIds":["<dm-1@p>","<dm-2@p>"]}]})",
        "q-7");
    ASSERT_TRUE(found.ok()) << found.error().reason;
    ASSERT_TRUE(found.value());
    EXPECT_EQ(found.value()->messageIds.size(), 2u);
    EXPECT_TRUE(found.value()->duplicate);
    auto none = api::parseLookup(R"({"submissions":[]})", "q-7");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none.value());
    // Another private-id, no list, or garbage are malformed replies, never "not sent".
    for (const char* body : {R"({"submissions":[{"privateId":"q-8","messageIds":["<a@b>"]}]})",
                             R"({"messages":[]})", "<html>", R"({"submissions":[{}]})"}) {
        auto r = api::parseLookup(body, "q-7");
        ASSERT_FALSE(r.ok()) << body;
        EXPECT_EQ(r.error().code, "malformed_reply");
    }
}

TEST(BindingRegistry, ProfilesNameABindingAndATlsPolicy) {
    for (const char* name : {"mentana", "telekom", "t-systems", "custom"}) {
        ProviderEndpoint e;
        e.profile = name;
        EXPECT_EQ(bindingFor(e).name, "demail-json-v1") << name;
        EXPECT_EQ(bindingFor(e).resolution, OutcomeResolution::IdempotencyKey) << name;
        ASSERT_TRUE(findTlsPolicy(findProviderProfile(name)->tlsPolicy)) << name;
    }
    ProviderEndpoint lookup;
    lookup.profile = "custom-lookup";
    EXPECT_EQ(bindingFor(lookup).name, "demail-json-v1-lookup");
    EXPECT_EQ(bindingFor(lookup).resolution, OutcomeResolution::LookupByPrivateId);
    ProviderEndpoint unknown;
    unknown.profile = "acme";
    try {
        bindingFor(unknown);
        FAIL() << "unknown profile accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("unknown profile 'acme' (mentana, telekom"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_EQ(bsiTlsPolicy().cipher, "ECDHE-RSA-AES256-SHA384");
    EXPECT_EQ(bsiTlsPolicy().group, "P-521");
}

TEST(BindingRegistry, ProxyNeedsAPortAndAPasswordFileForAUser) {
    ProviderEndpoint e{
        "mentana", "https://gw.example.de", "/etc/hostname", "", {"proxy.lan", 0, "", ""}};
    EXPECT_NE(completeEndpoint(e).value_or("").find("provider.proxy"), std::string::npos);
    e.proxy.port = 3128;
    EXPECT_FALSE(completeEndpoint(e));
    e.proxy.user = "gw";
    EXPECT_NE(completeEndpoint(e).value_or("").find("proxy_password_file"), std::string::npos);
}
