#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <sstream>

#include "demail/gateway/health.h"
#include "demail/gateway/metrics.h"
#include "demail/gateway/systemd_notify.h"

using namespace demail::gateway;

namespace {

struct Reply {
    int status;
    std::string body;
};

Reply get(unsigned port, const std::string& path) {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    std::stringstream body;
    body << in.rdbuf();
    return {static_cast<int>(response.getStatus()), body.str()};
}

bool has(const std::string& text, const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
}

}  // namespace

TEST(Metrics, PrometheusTextHasHelpTypeAndLabelledSeries) {
    Metrics m;
    m.counter("demail_messages_accepted_total", "Messages answered 250").add(3);
    m.counter("demail_errors_total", "Errors by kind", "kind", "provider_retryable").add();
    m.counter("demail_errors_total", "Errors by kind", "kind", "card").add(2);
    m.gauge("demail_queue_depth", "Messages waiting").set(7);
    const std::string text = m.prometheusText();
    EXPECT_NE(text.find("# HELP demail_messages_accepted_total Messages answered 250\n"),
              std::string::npos);
    EXPECT_NE(text.find("# TYPE demail_messages_accepted_total counter\n"), std::string::npos);
    EXPECT_NE(text.find("demail_messages_accepted_total 3\n"), std::string::npos);
    EXPECT_NE(text.find("demail_errors_total{kind=\"card\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("demail_errors_total{kind=\"provider_retryable\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("# TYPE demail_queue_depth gauge\ndemail_queue_depth 7\n"),
              std::string::npos);
    EXPECT_EQ(&m.counter("demail_errors_total", "", "kind", "card"),
              &m.counter("demail_errors_total", "", "kind", "card"));
}

TEST(HealthState, ReadyOnlyWhenEveryComponentIs) {
    HealthState h;
    EXPECT_FALSE(h.ready()) << "nothing reported yet";
    h.set("card", true, "logged in");
    h.set("provider", false, "connection refused");
    EXPECT_FALSE(h.ready());
    EXPECT_EQ(h.notReadySummary(), "provider: connection refused");
    h.set("provider", true, "reached 2 s ago");
    EXPECT_TRUE(h.ready());
}

TEST(HealthMetrics, MirrorComponentsAndTheCardCondition) {
    HealthState h;
    const auto now = std::chrono::system_clock::now();
    h.set("card", true, "logged in");
    h.set("provider", false, "connection refused");
    auto text = healthMetricsText(h, now);
    EXPECT_TRUE(has(text, "# TYPE demail_component_ready gauge")) << text;
    EXPECT_TRUE(has(text, "demail_component_ready{component=\"card\"} 1")) << text;
    EXPECT_TRUE(has(text, "demail_component_ready{component=\"provider\"} 0")) << text;
    EXPECT_TRUE(has(text, "demail_ready 0")) << text;
    EXPECT_TRUE(has(text, "demail_card_absent 0")) << text;
    EXPECT_TRUE(has(text, "demail_card_pin_rejected 0")) << text;
    EXPECT_EQ(text.find("demail_certificate_expiry_seconds"), std::string::npos)
        << "no certificate known yet: no series rather than a misleading 0";
    EXPECT_EQ(text.find("demail_inbound_"), std::string::npos);

    h.set("card", false, "no card in reader X: sending is paused", kConditionAbsent);
    // The dispatcher repeats "paused" without a condition: the card is still absent.
    h.set("card", false, "sending is paused");
    text = healthMetricsText(h, now);
    EXPECT_TRUE(has(text, "demail_card_absent 1")) << text;
    EXPECT_TRUE(has(text, "demail_component_ready{component=\"card\"} 0")) << text;
    EXPECT_EQ(h.components().at("card").condition, "absent");

    h.set("card", false, "the card rejected the PIN, 2 tries left", kConditionPinRejected);
    text = healthMetricsText(h, now);
    EXPECT_TRUE(has(text, "demail_card_absent 0")) << text;
    EXPECT_TRUE(has(text, "demail_card_pin_rejected 1")) << text;

    h.set("card", true, "logged in");
    EXPECT_EQ(h.components().at("card").condition, "") << "a ready report clears the condition";
    h.set("card", false, "the card stopped answering");
    EXPECT_EQ(h.components().at("card").condition, "") << "nothing to keep after a ready report";
    text = healthMetricsText(h, now);
    EXPECT_TRUE(has(text, "demail_card_pin_rejected 0")) << text;
    EXPECT_TRUE(has(text, "demail_card_absent 0")) << text;
}

TEST(HealthMetrics, CertificateExpiryCountsDownAndInboundBacklogIsShown) {
    HealthState h;
    const auto now = std::chrono::system_clock::now();
    h.setCertificateNotAfter(now + std::chrono::hours(24) * 20);
    EXPECT_TRUE(has(healthMetricsText(h, now), "demail_certificate_expiry_seconds 1728000"));
    EXPECT_TRUE(has(healthMetricsText(h, now + std::chrono::hours(24) * 21),
                    "demail_certificate_expiry_seconds -86400"))
        << "expired: negative";
    h.setInbound(2, 1);
    const auto text = healthMetricsText(h, now);
    EXPECT_TRUE(has(text, "demail_inbound_deferred 2")) << text;
    EXPECT_TRUE(has(text, "demail_inbound_quarantined 1")) << text;
}

TEST(HealthServer, ServesTheFourEndpointsOverHttp) {
    HealthState h;
    Metrics m;
    m.counter("demail_messages_accepted_total", "Messages answered 250").add(5);
    h.set("card", false, "PIN rejected, 2 tries left");
    h.set("spool", true, "writable");
    HealthServer server(HostPort{"127.0.0.1", 0}, h, m);
    ASSERT_NE(server.port(), 0u);

    EXPECT_EQ(get(server.port(), "/healthz").status, 200);
    auto ready = get(server.port(), "/readyz");
    EXPECT_EQ(ready.status, 503);
    EXPECT_NE(ready.body.find("card: PIN rejected, 2 tries left"), std::string::npos);
    h.set("card", true, "logged in");
    EXPECT_EQ(get(server.port(), "/readyz").status, 200);

    auto metrics = get(server.port(), "/metrics");
    EXPECT_NE(metrics.body.find("demail_messages_accepted_total 5"), std::string::npos);
    EXPECT_TRUE(has(metrics.body, "demail_component_ready{component=\"card\"} 1")) << metrics.body;
    EXPECT_TRUE(has(metrics.body, "demail_ready 1")) << metrics.body;

    auto status = get(server.port(), "/status");
    ASSERT_EQ(status.status, 200);
    Poco::JSON::Parser parser;
    auto root = parser.parse(status.body).extract<Poco::JSON::Object::Ptr>();
    EXPECT_TRUE(root->getValue<bool>("ready"));
    EXPECT_EQ(root->getObject("components")->getObject("card")->getValue<std::string>("reason"),
              "logged in");
    EXPECT_EQ(root->getObject("metrics")->getValue<double>("demail_messages_accepted_total"), 5);

    EXPECT_EQ(get(server.port(), "/nothing").status, 404);
}

TEST(SystemdNotify, SendsReadyAndStatusToNotifySocket) {
    char dir[] = "/tmp/demail-notify-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string path = std::string(dir) + "/notify";
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    setenv("NOTIFY_SOCKET", path.c_str(), 1);

    systemd::ready("accepting mail\non 127.0.0.1:2525");
    char buf[512] = {};
    const auto n = recv(fd, buf, sizeof buf - 1, 0);
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path.c_str());
    rmdir(dir);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)),
              "READY=1\nSTATUS=accepting mail on 127.0.0.1:2525");
}

TEST(HealthAccounts, APausedAccountShowsInStatusAndMetricsButKeepsTheGatewayReady) {
    HealthState h;
    Metrics m;
    h.set("card", true, "logged in");
    h.setAccounts({"poststelle@firma.de-mail.de", "Zweite@firma.de-mail.de"});
    h.setAccountSending("zweite@firma.de-mail.de", "provider answered 403 account_blocked");
    h.setAccountListing("poststelle@firma.de-mail.de", "");
    EXPECT_TRUE(h.ready()) << "an account's pause must not make the gateway unready";

    const auto text = healthMetricsText(h, std::chrono::system_clock::now());
    EXPECT_TRUE(has(text, "demail_account_paused{account=\"zweite@firma.de-mail.de\"} 1")) << text;
    EXPECT_TRUE(has(text, "demail_account_paused{account=\"poststelle@firma.de-mail.de\"} 0"));
    EXPECT_TRUE(has(text, "demail_account_listing_failed{account=\"zweite@firma.de-mail.de\"} 0"));

    Poco::JSON::Parser parser;
    auto root = parser.parse(statusJson(h, m)).extract<Poco::JSON::Object::Ptr>();
    auto accounts = root->getObject("accounts");
    ASSERT_TRUE(accounts);
    auto two = accounts->getObject("zweite@firma.de-mail.de");
    ASSERT_TRUE(two);
    EXPECT_EQ(two->getValue<std::string>("state"), "paused");
    EXPECT_EQ(two->getValue<std::string>("sendingReason"), "provider answered 403 account_blocked");
    EXPECT_EQ(two->getValue<std::string>("receiving"), "ok");
    EXPECT_EQ(accounts->getObject("poststelle@firma.de-mail.de")->getValue<std::string>("state"),
              "ok");

    // A refused inbox listing is shown as such; a resumed account is ok again.
    h.setAccountListing("poststelle@firma.de-mail.de", "provider answered 403 not_authorised");
    h.setAccountSending("zweite@firma.de-mail.de", "");
    root = parser.parse(statusJson(h, m)).extract<Poco::JSON::Object::Ptr>();
    accounts = root->getObject("accounts");
    EXPECT_EQ(accounts->getObject("poststelle@firma.de-mail.de")->getValue<std::string>("state"),
              "listing_failed");
    EXPECT_EQ(accounts->getObject("zweite@firma.de-mail.de")->getValue<std::string>("state"), "ok");
    // An account no longer listed goes, unless its mail is still held.
    h.setAccountSending("alt@firma.de-mail.de", "not bound");
    h.setAccounts({"poststelle@firma.de-mail.de"});
    const auto left = h.accounts();
    EXPECT_EQ(left.count("zweite@firma.de-mail.de"), 0u);
    EXPECT_EQ(left.count("alt@firma.de-mail.de"), 1u);
}

TEST(HealthAccounts, LabelValuesAreEscaped) {
    HealthState h;
    h.setAccountSending("a\"b\\c@x.de-mail.de", "blocked");
    const auto text = healthMetricsText(h, std::chrono::system_clock::now());
    EXPECT_TRUE(has(text, "demail_account_paused{account=\"a\\\"b\\\\c@x.de-mail.de\"} 1")) << text;
}
