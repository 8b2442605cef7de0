// `demailctl provider probe`: connect once with the enforced profile and list the accounts.
#pragma once

#include <string>

#include "demail/connector/transport/client_credentials.h"
#include "demail/connector/transport/provider_endpoint.h"

namespace demail::connector {

struct ProbeReport {
    bool ok = false;
    std::string reason;  // on failure: one line naming the mismatch (CLI exit code 6)
    std::string protocol, cipher, group;
    std::string serverSubject;
    std::string clientSubject;
    int domains = 0;
    int accounts = 0;
    std::string binding;  // the profile's binding (provider_binding.h)
    std::string proxy;    // host:port when tunnelled through [provider] proxy
};

ProbeReport probe(const ProviderEndpoint& endpoint, ClientCredentials& credentials);

// "protocol=TLSv1.2 cipher=... group=P-521 client=\"CN=..\" domains=2 accounts=3" or the reason.
std::string formatProbeReport(const ProbeReport& report);

}  // namespace demail::connector
