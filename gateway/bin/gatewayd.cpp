// demail-gatewayd: the appliance service. It runs in the foreground under systemd (Type=notify):
// READY and STATUS lines, WATCHDOG pings, SIGHUP reloads the accounts file, the users file and
// relay networks and logs in again if the PIN file now holds another PIN (a rejected PIN is never
// sent again, by any process: smartcard/pin_rejection.h), SIGTERM stops accepting, lets the
// sessions in flight finish and exits. The services and who owns what:
// gateway/services/daemon.h.
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <signal.h>

#include <cstdlib>
#include <iostream>

#include "demail/config/file.h"
#include "demail/gateway/accounts_file.h"
#include "demail/gateway/config.h"
#include "demail/gateway/journal_channel.h"
#include "demail/gateway/services/daemon.h"
#include "secret_memory.h"

using namespace demail;

namespace {

// Under systemd (JOURNAL_STREAM set) straight to the journal with QUEUE_ID=/PROVIDER_ID= fields
// (journal_channel.h); elsewhere "<priority> <component>: <event line>" on stderr.
void setUpLogging() {
    if (std::getenv("JOURNAL_STREAM")) {
        Poco::AutoPtr<gateway::JournalChannel> j(new gateway::JournalChannel("demail-gatewayd"));
        Poco::Logger::root().setChannel(j);
    } else {
        Poco::AutoPtr<Poco::PatternFormatter> f(new Poco::PatternFormatter("%p %s: %t"));
        Poco::AutoPtr<Poco::FormattingChannel> c(
            new Poco::FormattingChannel(f, new Poco::ConsoleChannel(std::cerr)));
        Poco::Logger::root().setChannel(c);
    }
    Poco::Logger::root().setLevel("information");
}

}  // namespace

int main(int argc, char** argv) {
    std::string configPath = config::kDefaultPath;
    bool checkOnly = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--config" && i + 1 < argc) {
            configPath = argv[++i];
        } else if (a == "--check") {
            checkOnly = true;
        } else if (a == "--help" || a == "-h") {
            std::cout << "usage: demail-gatewayd [--config FILE] [--check]\n"
                         "  --check  validate the configuration and exit (0 ok, 2 bad key)\n";
            return 0;
        } else {
            std::cerr << "demail-gatewayd: unknown option " << a << "\n";
            return 2;
        }
    }
    const std::string wipeWarning = checkOnly ? "" : gatewayd::ensureFreedMemoryIsWiped(argv);
    setUpLogging();
    auto loaded = gateway::loadConfig(configPath);
    if (!loaded.ok()) {
        std::cerr << "demail-gatewayd: " << loaded.error << "\n";
        return 2;
    }
    const gateway::Config& cfg = *loaded.config;
    connector::AccountMap accounts;
    if (!cfg.provider.accountsFile.empty())
        if (auto e = gateway::loadAccountsFile(cfg.provider.accountsFile, accounts); !e.empty()) {
            std::cerr << "demail-gatewayd: [provider] accounts_file: " << e << "\n";
            return 2;
        }
    if (checkOnly) {
        std::cout << "configuration " << configPath << " is valid\n";
        return 0;
    }
    auto& log = Poco::Logger::get("gatewayd");
    if (!wipeWarning.empty())
        log.warning("event=secret_memory reason=\"" + wipeWarning + "\"");
    if (auto w = gatewayd::disableOpenScPinCache(cfg.card.openscConf); !w.empty())
        log.warning("event=secret_memory reason=\"" + w + "\"");

    // Signals are taken by the main thread only (sigtimedwait in Daemon::run): blocked before any
    // service starts a thread, which inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGTERM, SIGINT, SIGHUP})
        sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    gateway::Daemon daemon(cfg, configPath, std::move(accounts));
    if (const int code = daemon.start(); code != 0)
        return code;
    daemon.run(signals);
    return 0;
}
