// Provider bindings and their registry. A binding speaks one provider API over a connection; the
// registry maps its name to a factory and to what it offers for unknown outcomes; a profile
// ([provider] profile, provider_endpoint.h) names the binding and the TLS policy. The gateway's
// pool, the daemon and the probe know only this header: binding another provider's API means a
// new binding file in connector/src/transport/ and one entry in provider_binding.cpp.
#pragma once

#include <Poco/Net/Session.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "demail/connector/transport/client_credentials.h"
#include "demail/connector/transport/provider_endpoint.h"
#include "demail/connector/transport/provider_transport.h"
#include "demail/connector/transport/tls_client.h"
#include "demail/connector/transport/tls_profile.h"

namespace demail::connector {

// One connection of a binding: the provider calls plus what a pool needs to keep connections
// cheap (resumption: the card signs once per new TLS session) and to count card signatures.
class ProviderConnection : public ProviderTransport {
  public:
    // Drops the TCP/TLS connection but keeps the TLS session for resumption.
    virtual void disconnect() = 0;
    virtual const TlsCounters& counters() const = 0;
    // What the last handshake negotiated (empty before the first one).
    virtual HandshakeInfo lastHandshake() const = 0;
    // The TLS session of the current or last connection, to resume on another (null before one).
    virtual Poco::Net::Session::Ptr tlsSession() const = 0;
};

struct ProviderBinding {
    std::string name;
    OutcomeResolution resolution;  // also what each of its connections answers
    std::string description;
    // Builds a connection, no I/O yet. Throws std::runtime_error (one line) when the endpoint,
    // the credentials or the proxy settings are unusable.
    std::function<std::unique_ptr<ProviderConnection>(const ProviderEndpoint&, ClientCredentials&,
                                                      TransportTimeouts, Poco::Net::Session::Ptr)>
        connect;
};

const std::vector<ProviderBinding>& providerBindings();
const ProviderBinding* findBinding(const std::string& name);

// The binding the endpoint's profile names. Throws std::runtime_error naming the field when the
// profile or its binding is unknown.
const ProviderBinding& bindingFor(const ProviderEndpoint& endpoint);

// bindingFor(endpoint).connect(...): the one way to open a provider connection.
std::unique_ptr<ProviderConnection> connectProvider(const ProviderEndpoint& endpoint,
                                                    ClientCredentials& credentials,
                                                    TransportTimeouts timeouts = {},
                                                    Poco::Net::Session::Ptr resume = nullptr);

}  // namespace demail::connector
