// The binding registry. To add a provider API: write its binding (a ProviderConnection over
// TlsClient, like json_api_binding.cpp), add an entry here and a profile naming it in
// provider_endpoint.cpp. Nothing in the gateway changes.
#include "demail/connector/transport/provider_binding.h"

#include <stdexcept>

#include "demail/connector/transport/json_api_binding.h"

namespace demail::connector {

const char* toString(OutcomeResolution resolution) {
    switch (resolution) {
        case OutcomeResolution::IdempotencyKey:
            return "idempotency_key";
        case OutcomeResolution::LookupByPrivateId:
            return "lookup_by_private_id";
    }
    return "unknown";
}

namespace {

ProviderBinding jsonBinding(std::string name, OutcomeResolution resolution,
                            std::string description) {
    return {std::move(name), resolution, std::move(description),
            [resolution](const ProviderEndpoint& endpoint, ClientCredentials& credentials,
                         TransportTimeouts timeouts, Poco::Net::Session::Ptr resume) {
                return std::unique_ptr<ProviderConnection>(std::make_unique<JsonApiConnection>(
                    endpoint, credentials, timeouts, resume, resolution));
            }};
}

}  // namespace

const std::vector<ProviderBinding>& providerBindings() {
    static const std::vector<ProviderBinding> bindings = {
        jsonBinding("demail-json-v1", OutcomeResolution::IdempotencyKey,
                    "docs/provider-api.md over HTTPS; Idempotency-Key settles unknown outcomes"),
        // A second binding of the same contract for a provider without Idempotency-Key: sends
        // none, and settles unknown outcomes by GET /v1/messages?account=&privateId=.
        jsonBinding("demail-json-v1-lookup", OutcomeResolution::LookupByPrivateId,
                    "docs/provider-api.md without Idempotency-Key; sent items looked up by "
                    "private-id"),
    };
    return bindings;
}

const ProviderBinding* findBinding(const std::string& name) {
    for (const auto& b : providerBindings())
        if (b.name == name)
            return &b;
    return nullptr;
}

const ProviderBinding& bindingFor(const ProviderEndpoint& endpoint) {
    const std::string name = endpoint.profile.empty() ? "custom" : endpoint.profile;
    const auto profile = findProviderProfile(name);
    if (!profile) {
        ProviderEndpoint probe = endpoint;  // completeEndpoint names the known profiles
        throw std::runtime_error(completeEndpoint(probe).value_or("provider.profile: unknown"));
    }
    const ProviderBinding* binding = findBinding(profile->binding);
    if (!binding)
        throw std::runtime_error("provider.profile: " + profile->name +
                                 " names an unknown binding " + profile->binding);
    return *binding;
}

std::unique_ptr<ProviderConnection> connectProvider(const ProviderEndpoint& endpoint,
                                                    ClientCredentials& credentials,
                                                    TransportTimeouts timeouts,
                                                    Poco::Net::Session::Ptr resume) {
    return bindingFor(endpoint).connect(endpoint, credentials, timeouts, std::move(resume));
}

}  // namespace demail::connector
