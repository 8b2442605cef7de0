// Where the provider is and how to recognise it: configuration, not code.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace demail::connector {

struct ProviderEndpoint {
    std::string profile;     // mentana | telekom | t-systems | custom
    std::string url;         // https://host[:port][/base]
    std::string caFile;      // PEM CA(s) the server certificate must chain to
    std::string serverName;  // name verified in the server certificate; empty: URL host
};

// Defaults per profile. The URLs are placeholders: the real endpoints are given to customers
// under contract (docs/provider-api.md); Telekom's De-Mail service ended on 31 Aug 2022.
struct ProviderProfile {
    std::string name;
    std::string defaultUrl;
    std::string defaultServerName;
    bool serviceDiscontinued;
    std::string note;
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
