// Where the provider is and how to recognise it: configuration, not code.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace demail::connector {

// An outbound HTTP proxy between the gateway and the provider (public-sector networks often
// allow no other way out). The TLS connection to the provider is tunnelled through it with
// CONNECT, so the proxy sees host and port, never the content, and the TLS policy, the server
// verification and the client certificate apply end to end as without it.
struct ProxySettings {
    std::string host;  // empty: no proxy
    unsigned short port = 0;
    std::string user;          // empty: no Proxy-Authorization
    std::string passwordFile;  // the password's first line; read when a connection is built
};

struct ProviderEndpoint {
    std::string profile;     // a name from providerProfiles(): selects binding and TLS policy
    std::string url;         // https://host[:port][/base]
    std::string caFile;      // PEM CA(s) the server certificate must chain to
    std::string serverName;  // name verified in the server certificate; empty: URL host
    ProxySettings proxy;
};

// Defaults per profile. The URLs are placeholders: the real endpoints are given to customers
// under contract (docs/provider-api.md); Telekom's De-Mail service ended on 31 Aug 2022.
// A profile is the one choice an operator makes ([provider] profile): it names the binding that
// speaks the provider's API (provider_binding.h) and the TLS policy (tls_profile.h).
struct ProviderProfile {
    std::string name;
    std::string defaultUrl;
    std::string defaultServerName;
    bool serviceDiscontinued;
    std::string note;
    std::string binding = "demail-json-v1";
    std::string tlsPolicy = "bsi-tr-03116-4";
};

const std::vector<ProviderProfile>& providerProfiles();
std::optional<ProviderProfile> findProviderProfile(const std::string& name);

// Fills url/serverName from the profile when empty. Returns an error text naming the field
// when the endpoint is unusable (unknown profile, no https URL, no CA file).
std::optional<std::string> completeEndpoint(ProviderEndpoint& endpoint);

struct ParsedUrl {
    std::string host;
    unsigned short port = 443;
    std::string basePath;  // without trailing slash, "" for the root
};
std::optional<ParsedUrl> parseHttpsUrl(const std::string& url);

// The name to verify: serverName, or the URL host.
std::string effectiveServerName(const ProviderEndpoint& endpoint);

}  // namespace demail::connector
