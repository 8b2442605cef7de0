// A small SMTP intake for the tests of smtp/ and the spool, before demail-gatewayd exists in the
// tests: the real smtp::Server, the real IntakePolicy and the real spool, fixed settings.
//   intake_server --spool DIR --port-file F [--cert C --key K] [--users FILE] [--no-require-tls]
//                 [--relay CIDR] [--max-size N] [--listen ADDR]
//                 [--timeouts COMMAND,DATA,HANDSHAKE seconds] [--data-slots N,WAIT_MS]
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include "demail/gateway/intake.h"
#include "demail/gateway/spool.h"
#include "demail/smtp/auth.h"
#include "demail/smtp/server.h"

namespace {
std::atomic<bool> stop{false};
void onSignal(int) {
    stop = true;
}
}  // namespace

int main(int argc, char** argv) {
    std::string spoolDir, portFile, cert, key, usersPath, relay = "127.0.0.1/32";
    std::string listenHost = "127.0.0.1";
    bool requireTls = true;
    std::uint64_t maxSize = 20971520;
    int commandTimeout = 300, dataTimeout = 600, handshakeTimeout = 60;
    int dataSlots = 32, dataWaitMs = 5000;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--spool")
            spoolDir = next();
        else if (a == "--port-file")
            portFile = next();
        else if (a == "--cert")
            cert = next();
        else if (a == "--key")
            key = next();
        else if (a == "--users")
            usersPath = next();
        else if (a == "--relay")
            relay = next();
        else if (a == "--max-size")
            maxSize = std::stoull(next());
        else if (a == "--no-require-tls")
            requireTls = false;
        else if (a == "--listen")
            listenHost = next();
        else if (a == "--data-slots") {  // N,WAIT_MS
            const std::string t = next();
            std::sscanf(t.c_str(), "%d,%d", &dataSlots, &dataWaitMs);
        } else if (a == "--timeouts") {  // command,data,handshake in seconds
            const std::string t = next();
            std::sscanf(t.c_str(), "%d,%d,%d", &commandTimeout, &dataTimeout, &handshakeTimeout);
        }
    }
    demail::gateway::Spool spool(spoolDir, maxSize);
    if (auto e = spool.open(); !e.empty()) {
        std::cerr << e << "\n";
        return 1;
    }
    const auto rec = spool.recover();
    std::cerr << "spool recovery: kept=" << rec.kept << " temp_removed=" << rec.tempRemoved
              << " corrupt=" << rec.movedToCorrupt << "\n";
    // The intake alone: the built-in sending policy for one mapped domain, the account as the
    // provider would list it; messages are not judged at the end of DATA (no authority in the
    // sink), so the SMTP layer is measured and tested on its own.
    demail::gateway::AccountSnapshot accounts;
    accounts.map.entries = {{"@firma.de", "poststelle@firma.de-mail.de"}};
    accounts.providerListed = true;
    accounts.listed = {{"poststelle@firma.de-mail.de", "firma.de-mail.de", "high", true, false}};
    demail::gateway::SendingAuthority authority(demail::gateway::SendingPolicy::builtIn(), {},
                                                spoolDir + "/sending-counts");
    if (auto e = authority.open(); !e.empty()) {
        std::cerr << e << "\n";
        return 1;
    }
    authority.setAccounts(accounts);
    demail::gateway::IntakePolicy policy({relay}, authority, {"de-mail.de"});
    demail::gateway::SpoolSink sink(spool);
    demail::smtp::UsersFile users;
    if (!usersPath.empty()) {
        if (auto e = users.load(usersPath); !e.empty()) {
            std::cerr << e << "\n";
            return 1;
        }
    }
    demail::smtp::ServerConfig cfg;
    cfg.host = listenHost;
    cfg.port = 0;
    cfg.commandTimeout = std::chrono::seconds(commandTimeout);
    cfg.dataTimeout = std::chrono::seconds(dataTimeout);
    cfg.tlsHandshakeTimeout = std::chrono::seconds(handshakeTimeout);
    cfg.maxConcurrentData = dataSlots;
    cfg.dataAdmissionWait = std::chrono::milliseconds(dataWaitMs);
    cfg.hostname = "gateway.test";
    cfg.tlsCert = cert;
    cfg.tlsKey = key;
    cfg.requireTls = requireTls && !cert.empty();
    cfg.maxMessageSize = maxSize;
    cfg.audit = [](const std::string& line) { std::cerr << line << std::endl; };
    demail::smtp::Server server(cfg, policy, sink, usersPath.empty() ? nullptr : &users);
    if (auto e = server.start(); !e.empty()) {
        std::cerr << e << "\n";
        return 1;
    }
    if (!server.notice().empty())
        std::cerr << server.notice() << "\n";
    signal(SIGTERM, onSignal);
    signal(SIGINT, onSignal);
    { std::ofstream(portFile + ".tmp") << server.port(); }
    std::rename((portFile + ".tmp").c_str(), portFile.c_str());
    while (!stop)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
    return 0;
}
