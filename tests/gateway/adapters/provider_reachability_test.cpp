// ProviderReachability: when the pool takes the provider as unreachable ([smtp] when_paused =
// refuse then sends new mail to a peer gateway). Through the real pool, binding and a cut TCP
// path: tests/gateway/e2e/when_paused.sh.
#include <gtest/gtest.h>

#include "demail/gateway/provider_pool.h"

using demail::connector::ErrorKind;
using demail::connector::TransportError;
using demail::gateway::ProviderReachability;

namespace {

TransportError noAnswer(const std::string& code) {
    return {ErrorKind::Retryable, code, code + " talking to provider.test", 0};
}

}  // namespace

TEST(ProviderReachability, TwoCallsInARowWithoutAnAnswerMakeItUnreachable) {
    ProviderReachability r;
    EXPECT_EQ(r.unreachable(), "");
    const auto refused = noAnswer("connect_refused");
    r.record(&refused);
    EXPECT_EQ(r.unreachable(), "") << "one lost connection is not an outage";
    const auto timeout = noAnswer("timeout");
    r.record(&timeout);
    EXPECT_EQ(r.unreachable(), "timeout talking to provider.test");
    r.record(nullptr);  // a call got through
    EXPECT_EQ(r.unreachable(), "");
}

TEST(ProviderReachability, AnHttpErrorIsAnAnswer) {
    ProviderReachability r;
    const auto reset = noAnswer("connection_reset");
    r.record(&reset);
    r.record(&reset);
    ASSERT_NE(r.unreachable(), "");
    const TransportError busy{ErrorKind::Retryable, "http_503", "provider answered 503", 503};
    r.record(&busy);
    EXPECT_EQ(r.unreachable(), "");
}

TEST(ProviderReachability, OurOwnFailuresSayNothingOfTheProvider) {
    ProviderReachability r;
    const TransportError shortBody{ErrorKind::Retryable, "short_body", "the message ended early",
                                   0};
    const TransportError noKey{ErrorKind::OperatorAction, "client_credentials",
                               "the client key is not ready", 0};
    for (int i = 0; i < 3; ++i) {
        r.record(&shortBody);
        r.record(&noKey);
    }
    EXPECT_EQ(r.unreachable(), "");
    // ... and do not interrupt a run of failures either.
    const auto handshake = noAnswer("tls_handshake");
    r.record(&handshake);
    r.record(&noKey);
    r.record(&handshake);
    EXPECT_EQ(r.unreachable(), "tls_handshake talking to provider.test");
}
