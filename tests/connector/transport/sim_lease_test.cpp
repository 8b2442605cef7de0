// Integration: the inbox fetch lease (docs/provider-api.md "Inbox semantics") between two client
// certificates bound to the same account, through the real transport against `demail-sim
// provider`: what two gateways with their own cards see.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "demail/connector/transport/json_api_binding.h"
#include "sim_process.h"

using namespace demail::connector;
using demail::connector::testing::jsonNumber;
using demail::connector::testing::SimProcess;

namespace {

constexpr const char* kAccount = "poststelle@firma.de-mail.de";

// A second client certificate from the simulator's test CA, with the first one's subject: bound
// to the same accounts (the accounts file binds by subject too), a different fingerprint, so a
// different lease holder: a second gateway with a card of its own.
std::pair<std::string, std::string> secondClient(const SimProcess& sim) {
    const std::string ca = sim.env("CA");
    const std::string dir = ca.substr(0, ca.rfind('/'));
    const std::string cmd =
        "set -e; cd '" + dir +
        "'; subj=$(openssl x509 -in client.pem -noout -subject -nameopt compat | sed "
        "'s/^subject=//'); openssl req -newkey rsa:2048 -nodes -keyout client2.key -out "
        "client2.csr -subj \"$subj\" 2>/dev/null; printf 'extendedKeyUsage=clientAuth\\n' "
        ">client2.ext; openssl x509 -req -in client2.csr -CA ca.pem -CAkey ca.key -set_serial 77 "
        "-days 1 -extfile client2.ext -out client2.pem 2>/dev/null";
    if (std::system(cmd.c_str()) != 0)
        throw std::runtime_error("cannot make a second client certificate");
    return {dir + "/client2.pem", dir + "/client2.key"};
}

std::string inject(const SimProcess& sim, const std::string& subject) {
    int status = 0;
    const std::string body = sim.control(
        "POST", std::string("/control/inject?account=") + kAccount,
        "From: buerger@example.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: " +
            subject + "\r\nX-de-mail-message-type: normal\r\n\r\nText\r\n",
        &status);
    if (status != 201)
        throw std::runtime_error("inject: " + body);
    const auto at = body.find("\"id\":\"");
    return body.substr(at + 6, body.find('"', at + 6) - at - 6);
}

class Gateways {
  public:
    explicit Gateways(const SimProcess& sim)
        : credsA(sim.clientCert(), sim.clientKey()),
          second(secondClient(sim)),
          credsB(second.first, second.second),
          a(sim.endpoint(), credsA),
          b(sim.endpoint(), credsB) {}
    PemClientCredentials credsA;
    std::pair<std::string, std::string> second;
    PemClientCredentials credsB;
    JsonApiConnection a, b;
};

std::size_t listed(JsonApiConnection& c) {
    auto r = c.listInbound(kAccount);
    if (!r.ok())
        throw std::runtime_error(r.error().reason);
    return r.value().size();
}

}  // namespace

TEST(InboxLease, OnlyTheLeaseHolderSeesFetchesAndAcknowledgesAnItem) {
    SimProcess sim;
    Gateways g(sim);
    const std::string id = inject(sim, "Antrag");
    ASSERT_EQ(listed(g.a), 1u);
    ASSERT_EQ(listed(g.b), 1u) << "nobody holds it yet: both see it";

    auto first = g.a.fetch(id);
    ASSERT_TRUE(first.ok()) << first.error().reason;
    EXPECT_EQ(listed(g.a), 1u) << "the holder still sees its own item";
    EXPECT_EQ(listed(g.b), 0u) << "leased to A: not listed to B";

    auto refused = g.b.fetch(id);
    ASSERT_FALSE(refused.ok());
    EXPECT_TRUE(refused.error().heldElsewhere);
    EXPECT_EQ(refused.error().code, "leased");
    EXPECT_EQ(refused.error().httpStatus, 409);
    EXPECT_EQ(refused.error().kind, ErrorKind::Retryable) << "free again when the lease ends";
    EXPECT_NE(refused.error().reason.find("leased to CN=demail-gateway-test"), std::string::npos)
        << refused.error().reason;
    EXPECT_NE(refused.error().reason.find(" until 20"), std::string::npos)
        << refused.error().reason;

    auto ackB = g.b.acknowledge(id);
    ASSERT_FALSE(ackB.ok()) << "only the holder acknowledges";
    EXPECT_TRUE(ackB.error().heldElsewhere);

    ASSERT_TRUE(g.a.fetch(id).ok()) << "the holder renews by fetching again";
    ASSERT_TRUE(g.a.acknowledge(id).ok());
    EXPECT_EQ(listed(g.a), 0u);
    EXPECT_EQ(listed(g.b), 0u);

    auto gone = g.b.fetch(id);
    ASSERT_FALSE(gone.ok()) << "an acknowledged item is never handed out again";
    EXPECT_TRUE(gone.error().heldElsewhere);
    EXPECT_EQ(gone.error().code, "acknowledged");
    EXPECT_EQ(gone.error().httpStatus, 410);
    EXPECT_TRUE(g.a.acknowledge(id).ok()) << "acknowledging twice is harmless";
    EXPECT_EQ(jsonNumber(sim.control("GET", "/control/state"), "leaseRefusals"), 2);
}

TEST(InboxLease, AnItemNobodyHoldsMayBeAcknowledgedByAnyBoundClient) {
    SimProcess sim;
    Gateways g(sim);
    const std::string id = inject(sim, "ohne Abruf");
    // A gateway that delivered before a restart acknowledges from its ledger without fetching.
    ASSERT_TRUE(g.b.acknowledge(id).ok());
    EXPECT_EQ(listed(g.a), 0u);
}

TEST(InboxLease, AnExpiredLeaseMakesTheItemAvailableAgain) {
    SimProcess sim({"--inbox-lease", "2s"});
    Gateways g(sim);
    const std::string id = inject(sim, "verwaist");
    ASSERT_TRUE(g.a.fetch(id).ok());  // A "dies" here: no acknowledgement
    // No timed assertion: wait (generously) until B may have it; the lease is 2 s.
    bool taken = false;
    for (int i = 0; i < 300 && !taken; ++i) {
        auto r = g.b.fetch(id);
        if (r.ok()) {
            taken = true;
            break;
        }
        ASSERT_TRUE(r.error().heldElsewhere) << r.error().reason;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(taken) << "the lease never ran out";
    EXPECT_EQ(listed(g.a), 0u) << "B holds it now";
    auto lateAck = g.a.acknowledge(id);
    ASSERT_FALSE(lateAck.ok()) << "A's lease ran out and B took the item";
    EXPECT_TRUE(lateAck.error().heldElsewhere);
    ASSERT_TRUE(g.b.acknowledge(id).ok());
}
