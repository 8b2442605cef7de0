// Test driver for the provider probe: prints formatProbeReport() and exits 0, or 6 (TLS or
// provider refused, as demailctl does).
#include <cstdio>
#include <cstring>
#include <string>

#include "demail/connector/transport/probe.h"

int main(int argc, char** argv) {
    demail::connector::ProviderEndpoint endpoint;
    endpoint.profile = "custom";
    std::string cert, key;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--url"))
            endpoint.url = argv[i + 1];
        else if (!std::strcmp(argv[i], "--ca"))
            endpoint.caFile = argv[i + 1];
        else if (!std::strcmp(argv[i], "--server-name"))
            endpoint.serverName = argv[i + 1];
        else if (!std::strcmp(argv[i], "--cert"))
            cert = argv[i + 1];
        else if (!std::strcmp(argv[i], "--key"))
            key = argv[i + 1];
    }
    try {
        demail::connector::PemClientCredentials credentials(cert, key);
        auto report = demail::connector::probe(endpoint, credentials);
        std::puts(demail::connector::formatProbeReport(report).c_str());
        return report.ok ? 0 : 6;
    } catch (const std::exception& e) {
        std::printf("provider probe failed: %s\n", e.what());
        return 2;
    }
}
