// demail-sim provider: option parsing, test PKI, start-up line, signal handling.
#include <Poco/Exception.h>
#include <Poco/Net/SocketAddress.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "../src/sim_entry.h"
#include "provider_server.h"
#include "provider_state.h"
#include "test_pki.h"

namespace demail::sim {
namespace {

void usage() {
    std::fputs(
        "usage: demail-sim provider [--listen 127.0.0.1:PORT] [--control 127.0.0.1:PORT]\n"
        "                           [--cert PEM --key PEM --client-ca PEM] [--accounts JSON]\n"
        "                           [--state DIR] [--idle-timeout SECONDS]\n"
        "                           [--inbox-lease SECONDS[s|m]]\n"
        "  Serves docs/provider-api.md over HTTPS (TLS 1.2, ECDHE-RSA-AES256-SHA384, P-521,\n"
        "  client certificate required) and a plain-HTTP control endpoint.\n"
        "  Without --cert, a test CA, server and client certificate are generated into --state\n"
        "  (and a default accounts file when --accounts is absent). Port 0 picks a free port;\n"
        "  the chosen ports and paths are printed and written to DIR/sim.env.\n"
        "  --idle-timeout: close a keep-alive connection idle this long (60).\n"
        "  --inbox-lease: how long a fetch leases an inbox item to its client (300s).\n",
        stderr);
}

bool writeDefaultAccounts(const std::string& path, const std::string& subject,
                          const std::string& fingerprint) {
    std::ofstream out(path);
    out << "{\n"
           "  \"providerDomain\": \"sim-provider.de-mail.de\",\n"
           "  \"domains\": [\"behoerde.de-mail.de\", \"example.de-mail.de\"],\n"
           "  \"certificates\": [{\n"
           "    \"subject\": \""
        << subject << "\",\n    \"fingerprint\": \"" << fingerprint
        << "\",\n"
           "    \"accounts\": [\n"
           "      {\"address\": \"poststelle@firma.de-mail.de\", \"authLevel\": \"high\", "
           "\"retrieveConfirmation\": true},\n"
           "      {\"address\": \"rechnung@firma.de-mail.de\", \"authLevel\": \"normal\"},\n"
           "      {\"address\": \"poststelle@standort-b.firma.de-mail.de\", \"authLevel\": "
           "\"high\"}\n"
           "    ]\n"
           "  }],\n"
           "  \"otherAccounts\": [\"buerger@example.de-mail.de\", "
           "\"poststelle@behoerde.de-mail.de\"]\n"
           "}\n";
    return static_cast<bool>(out);
}

}  // namespace

int provider_main(int argc, char** argv) {
    provider::ServerConfig config;
    std::string accountsFile, stateDir;
    long leaseSeconds = 300;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "demail-sim provider: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        try {
            if (arg == "--help" || arg == "-h") {
                usage();
                return 0;
            } else if (arg == "--listen") {
                config.listen = Poco::Net::SocketAddress(value());
            } else if (arg == "--control") {
                config.control = Poco::Net::SocketAddress(value());
            } else if (arg == "--cert") {
                config.cert = value();
            } else if (arg == "--key") {
                config.key = value();
            } else if (arg == "--client-ca") {
                config.clientCa = value();
            } else if (arg == "--accounts") {
                accountsFile = value();
            } else if (arg == "--state") {
                stateDir = value();
            } else if (arg == "--idle-timeout") {
                const std::string v = value();
                char* end = nullptr;
                const long n = std::strtol(v.c_str(), &end, 10);
                if (v.empty() || *end != '\0' || n < 1 || n > 3600) {
                    std::fputs("demail-sim provider: --idle-timeout takes 1-3600 seconds\n",
                               stderr);
                    return 2;
                }
                config.idleTimeoutSeconds = static_cast<int>(n);
            } else if (arg == "--inbox-lease") {
                const std::string v = value();
                char* end = nullptr;
                long n = std::strtol(v.c_str(), &end, 10);
                const std::string unit = end ? end : "";
                if (unit == "m")
                    n *= 60;
                if (v.empty() || end == v.c_str() || (unit != "" && unit != "s" && unit != "m") ||
                    n < 1 || n > 86400) {
                    std::fputs("demail-sim provider: --inbox-lease takes 1s-24h (e.g. 300s, 5m)\n",
                               stderr);
                    return 2;
                }
                leaseSeconds = n;
            } else {
                std::fprintf(stderr, "demail-sim provider: unknown option %s\n", arg.c_str());
                usage();
                return 2;
            }
        } catch (const Poco::Exception& e) {
            std::fprintf(stderr, "demail-sim provider: %s: %s\n", arg.c_str(),
                         e.displayText().c_str());
            return 2;
        }
    }
    provider::TestPkiPaths pki;
    if (config.cert.empty()) {
        if (stateDir.empty()) {
            std::fputs("demail-sim provider: give --cert/--key/--client-ca or --state DIR\n",
                       stderr);
            return 2;
        }
        ::mkdir(stateDir.c_str(), 0700);
        if (auto err = provider::ensureTestPki(stateDir, pki)) {
            std::fprintf(stderr, "demail-sim provider: %s\n", err->c_str());
            return 1;
        }
        config.cert = pki.serverCert;
        config.key = pki.serverKey;
        if (config.clientCa.empty())
            config.clientCa = pki.caCert;
        if (accountsFile.empty()) {
            accountsFile = stateDir + "/accounts.json";
            auto id = provider::certificateIdentity(pki.clientCert);
            if (!id || !writeDefaultAccounts(accountsFile, id->first, id->second)) {
                std::fprintf(stderr, "demail-sim provider: cannot write %s\n",
                             accountsFile.c_str());
                return 1;
            }
        }
    }
    if (config.key.empty() || config.clientCa.empty() || accountsFile.empty()) {
        std::fputs(
            "demail-sim provider: --key, --client-ca and --accounts are required with "
            "--cert\n",
            stderr);
        return 2;
    }
    provider::ProviderState state;
    state.setLeaseTime(std::chrono::seconds(leaseSeconds));
    if (auto err = state.load(accountsFile)) {
        std::fprintf(stderr, "demail-sim provider: %s\n", err->c_str());
        return 2;
    }
    std::string signingCa, signingCrl;
    if (!stateDir.empty()) {  // the provider's signing key lives with its state
        ::mkdir(stateDir.c_str(), 0700);
        std::string error;
        auto signer = provider::ProviderSigner::open(stateDir, error);
        if (!signer) {
            std::fprintf(stderr, "demail-sim provider: %s\n", error.c_str());
            return 1;
        }
        signingCa = signer->caPath();
        signingCrl = signer->crlPath();
        state.setSigner(std::move(signer));
    }

    // Block the stop signals in every thread; the main thread waits for them.
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGINT);
    sigaddset(&stopSignals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    provider::ProviderServer server(config, state);
    try {
        server.start();
    } catch (const Poco::Exception& e) {
        std::fprintf(stderr, "demail-sim provider: cannot start: %s\n", e.displayText().c_str());
        return 1;
    }
    const std::string host = config.listen.host().toString();
    char line[2048];
    std::snprintf(line, sizeof line,
                  "HTTPS_PORT=%u\nCONTROL_PORT=%u\nURL=https://%s:%u\nSERVER_NAME=%s\n"
                  "CA=%s\nCLIENT_CERT=%s\nCLIENT_KEY=%s\nACCOUNTS=%s\nSIGNING_CA=%s\n"
                  "SIGNING_CRL=%s\n",
                  server.httpsPort(), server.controlPort(), host.c_str(), server.httpsPort(),
                  provider::kTestServerName, pki.caCert.c_str(), pki.clientCert.c_str(),
                  pki.clientKey.c_str(), accountsFile.c_str(), signingCa.c_str(),
                  signingCrl.c_str());
    std::fprintf(stdout, "demail-sim provider: listening https=%s:%u control=%s:%u\n%s",
                 host.c_str(), server.httpsPort(), config.control.host().toString().c_str(),
                 server.controlPort(), line);
    std::fflush(stdout);
    if (!stateDir.empty()) {  // written last and renamed: its presence means "ready"
        std::string tmp = stateDir + "/sim.env.tmp";
        {
            std::ofstream env(tmp);
            env << line;
        }
        std::rename(tmp.c_str(), (stateDir + "/sim.env").c_str());
    }
    int sig = 0;
    sigwait(&stopSignals, &sig);
    server.stop();
    if (!stateDir.empty())
        std::remove((stateDir + "/sim.env").c_str());
    return 0;
}

}  // namespace demail::sim
