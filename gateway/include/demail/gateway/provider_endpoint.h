// The connector's view of [provider]: where the provider is, which profile (binding and TLS
// policy) and which proxy. One function, so the daemon and demailctl build it the same way.
#pragma once

#include "demail/connector/transport/provider_endpoint.h"
#include "demail/gateway/config.h"

namespace demail::gateway {

inline connector::ProviderEndpoint providerEndpoint(const Config& cfg) {
    connector::ProviderEndpoint e;
    e.profile = cfg.provider.profile;
    e.url = cfg.provider.url;
    e.caFile = cfg.provider.caFile;
    e.serverName = cfg.provider.serverName;
    e.proxy.host = cfg.provider.proxy.host;
    e.proxy.port = cfg.provider.proxy.port;
    e.proxy.user = cfg.provider.proxyUser;
    e.proxy.passwordFile = cfg.provider.proxyPasswordFile;
    return e;
}

}  // namespace demail::gateway
