// Provider profiles and endpoint validation.
#include "demail/connector/transport/provider_endpoint.h"

#include <fstream>

namespace demail::connector {

const std::vector<ProviderProfile>& providerProfiles() {
    // Host names are deliberately absent: the real gateway endpoints are handed out under
    // contract. An operator sets [provider] url and ca_file from the provider's documents.
    static const std::vector<ProviderProfile> profiles = {
        {"mentana", "", "", false,
         "Mentana-Claimsoft (FP); endpoint URL and CA from the provider's onboarding documents"},
        {"telekom", "", "", true,
         "Telekom De-Mail ended 31 Aug 2022 (mailboxes closed Nov 2022); kept for old configs"},
        {"t-systems", "", "", true,
         "T-Systems ran Telekom's De-Mail; same end of service as telekom"},
        {"custom", "", "", false, "any endpoint implementing docs/provider-api.md (simulator)"},
        // The same contract at a provider that keeps no Idempotency-Key: a submission whose
        // reply was lost is looked up among the account's sent items before it is sent again.
        {"custom-lookup", "", "", false,
         "docs/provider-api.md without Idempotency-Key (unknown outcomes resolved by look-up)",
         "demail-json-v1-lookup"},
    };
    return profiles;
}

std::optional<ProviderProfile> findProviderProfile(const std::string& name) {
    for (const auto& p : providerProfiles())
        if (p.name == name)
            return p;
    return std::nullopt;
}

std::optional<ParsedUrl> parseHttpsUrl(const std::string& url) {
    const std::string scheme = "https://";
    if (url.compare(0, scheme.size(), scheme) != 0)
        return std::nullopt;
    std::string rest = url.substr(scheme.size());
    ParsedUrl out;
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    if (slash != std::string::npos)
        out.basePath = rest.substr(slash);
    while (!out.basePath.empty() && out.basePath.back() == '/')
        out.basePath.pop_back();
    if (authority.empty() || authority.find('@') != std::string::npos)
        return std::nullopt;
    std::string portText;
    if (authority.front() == '[') {  // [v6]:port
        auto close = authority.find(']');
        if (close == std::string::npos)
            return std::nullopt;
        out.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':')
                return std::nullopt;
            portText = authority.substr(close + 2);
        }
    } else {
        auto colon = authority.rfind(':');
        out.host = authority.substr(0, colon);
        if (colon != std::string::npos)
            portText = authority.substr(colon + 1);
    }
    if (out.host.empty())
        return std::nullopt;
    if (!portText.empty()) {
        if (portText.size() > 5 || portText.find_first_not_of("0123456789") != std::string::npos)
            return std::nullopt;
        unsigned long port = std::stoul(portText);
        if (port == 0 || port > 65535)
            return std::nullopt;
        out.port = static_cast<unsigned short>(port);
    }
    return out;
}

std::string effectiveServerName(const ProviderEndpoint& endpoint) {
    if (!endpoint.serverName.empty())
        return endpoint.serverName;
    auto url = parseHttpsUrl(endpoint.url);
    return url ? url->host : std::string{};
}

std::optional<std::string> completeEndpoint(ProviderEndpoint& endpoint) {
    if (endpoint.profile.empty())
        endpoint.profile = "custom";
    auto profile = findProviderProfile(endpoint.profile);
    if (!profile) {
        std::string names;
        for (const auto& p : providerProfiles())
            names += (names.empty() ? "" : ", ") + p.name;
        return "provider.profile: unknown profile '" + endpoint.profile + "' (" + names + ")";
    }
    if (endpoint.url.empty())
        endpoint.url = profile->defaultUrl;
    if (endpoint.serverName.empty())
        endpoint.serverName = profile->defaultServerName;
    if (endpoint.url.empty())
        return "provider.url: no URL configured and profile '" + endpoint.profile +
               "' has no default";
    if (!parseHttpsUrl(endpoint.url))
        return "provider.url: '" + endpoint.url + "' is not an https://host[:port][/path] URL";
    if (endpoint.caFile.empty())
        return "provider.ca_file: no CA file configured";
    if (!std::ifstream(endpoint.caFile))
        return "provider.ca_file: cannot read " + endpoint.caFile;
    if (!endpoint.proxy.host.empty() && endpoint.proxy.port == 0)
        return "provider.proxy: no port for proxy " + endpoint.proxy.host;
    if (!endpoint.proxy.user.empty() && endpoint.proxy.passwordFile.empty())
        return "provider.proxy_password_file: needed when proxy_user is set";
    return std::nullopt;
}

}  // namespace demail::connector
