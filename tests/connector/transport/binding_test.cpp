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
    const auto& accounts = r.value().accounts;
    ASSERT_EQ(accounts.size(), 2u);
    EXPECT_EQ(accounts[0].domain, "firma.de-mail.de");
    EXPECT_EQ(accounts[0].authLevel, "high");
    EXPECT_TRUE(accounts[0].retrieveConfirmationAllowed);
    EXPECT_EQ(accounts[1].authLevel, "normal");
    EXPECT_TRUE(accounts[1].blocked);
    EXPECT_TRUE(r.value().domains.empty());  // no "domains": none from the provider
}

// "domains": the De-Mail domains the provider delivers to, also outside de-mail.de (TR ACM_FU
// §2.1.2: own DMDA domains, Sammeldomänen); lower-cased, each once; anything that is not a plain
// domain name of two or more labels makes the reply malformed (it would widen what counts as
// De-Mail).
TEST(JsonBinding, AccountListingDomains) {
    auto r = api::parseAccounts(
        R"({"accounts":[],"domains":["De-Mail.de","sammel.example","de-mail.de","b.de-mail.de"]})");
    ASSERT_TRUE(r.ok()) << r.error().reason;
    EXPECT_EQ(r.value().domains,
              (std::vector<std::string>{"de-mail.de", "sammel.example", "b.de-mail.de"}));
    for (const char* bad : {"de", "*.example", "a@b.de", ".de-mail.de", "de-mail.de.", "a..de",
                            "a b.de", "a.de\r\nX", ""}) {
        const std::string body = std::string(R"({"accounts":[],"domains":[")") + bad + R"("]})";
        auto b = api::parseAccounts(body);
        ASSERT_FALSE(b.ok()) << body;
        EXPECT_EQ(b.error().code, "malformed_reply") << body;
    }
    EXPECT_FALSE(api::parseAccounts(R"({"accounts":[],"domains":"de-mail.de"})").ok());
}

// GET /v1/addresses/{address}: 200 with the directory entry; 404 address_unknown / address_closed
// is "no such De-Mail address"; a 404 without those codes (or 405, 501) is a provider that does
// not offer the look-up, never "does not exist"; 5xx stays retryable.
TEST(JsonBinding, AddressLookup) {
    auto known = api::parseAddress(
        200,
        R"({"address":"Amt@Behoerde.de-mail.de","exists":true,"authLevel":"high","accessOpening":true})",
        "amt@behoerde.de-mail.de");
    ASSERT_TRUE(known.ok()) << known.error().reason;
    EXPECT_TRUE(known.value().exists);
    EXPECT_EQ(known.value().authLevel, "high");
    EXPECT_TRUE(known.value().accessOpening);

    auto unknown = api::parseAddress(
        404, R"({"error":{"code":"address_unknown","message":"no such address"}})", "x@y.de");
    ASSERT_TRUE(unknown.ok());
    EXPECT_FALSE(unknown.value().exists);
    EXPECT_EQ(unknown.value().reason, "unknown");
    auto closed = api::parseAddress(404, R"({"error":{"code":"address_closed"}})", "x@y.de");
    ASSERT_TRUE(closed.ok());
    EXPECT_FALSE(closed.value().exists);
    EXPECT_EQ(closed.value().reason, "closed");

    for (int status : {404, 405, 501}) {
        auto none = api::parseAddress(status, R"({"error":{"code":"not_found"}})", "x@y.de");
        ASSERT_FALSE(none.ok()) << status;
        EXPECT_EQ(none.error().code, "lookup_not_offered");
        EXPECT_EQ(none.error().kind, ErrorKind::Permanent);
    }
    auto busy = api::parseAddress(503, "", "x@y.de");
    ASSERT_FALSE(busy.ok());
    EXPECT_EQ(busy.error().kind, ErrorKind::Retryable);
    auto denied = api::parseAddress(403, R"({"error":{"code":"certificate_unknown"}})", "x@y.de");
    ASSERT_FALSE(denied.ok());
    EXPECT_EQ(denied.error().kind, ErrorKind::OperatorAction);

    // An answer about another address, or without "exists", is malformed, never a yes.
    for (const char* body : {R"({"address":"other@y.de","exists":true})", R"({"address":"x@y.de"})",
                             R"({"address":"x@y.de","exists":"yes"})",
                             R"({"address":"x@y.de","exists":true,"authLevel":"hoch"})", "{"}) {
        auto m = api::parseAddress(200, body, "x@y.de");
        ASSERT_FALSE(m.ok()) << body;
        EXPECT_EQ(m.error().code, "malformed_reply") << body;
    }
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
