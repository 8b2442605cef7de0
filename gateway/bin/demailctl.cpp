// demailctl: the operator's and scripts' tool. `health` prints the gateway's /status for a
// person; `provider probe` checks the TLS profile and the account against the provider with the
// configured credentials; `queue list|show|retry|delete|import` works on the spool; `passwd USER`
// prints a users-file line. Exit codes (DESIGN.md): 0 ok, 1 failed, 2 usage/config, 3 wrong PIN, 4
// blocked, 5 no reader or card, 6 TLS or provider refused.
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "demail/config/file.h"
#include "demail/connector/transport/probe.h"
#include "demail/connector/transport/provider_endpoint.h"
#include "demail/gateway/config.h"
#include "demail/gateway/credentials.h"
#include "demail/gateway/ctl_archive.h"
#include "demail/gateway/ctl_queue.h"
#include "demail/gateway/provider_endpoint.h"
#include "demail/gateway/spool.h"
#include "demail/smtp/auth.h"

using namespace demail;

namespace {

void usage(std::ostream& out) {
    out << "usage: demailctl [--config FILE] COMMAND\n"
           "  health                     the gateway's state, readiness and counters\n"
           "  provider probe             TLS profile and accounts at the provider\n"
           "  queue list                 queued messages (like mailq)\n"
           "  queue show|retry ID\n"
           "  queue delete ID...|-       removes messages, no notification (-: ids on stdin)\n"
           "  queue import DIR           the queue of a stopped peer gateway's spool copy\n"
           "  trace ID                   one message's log trail (journalctl QUEUE_ID=ID)\n"
           "  archive list [kind=K] [queue_id=ID] [account=A]   the evidence archive's records\n"
           "  archive show|export SEQ    one record / its bytes as kept (to stdout)\n"
           "  archive verify             the hash chain and every record's bytes\n"
           "  passwd USER                read a password, print a users_file line\n"
           "Exit codes: 0 ok, 1 failed, 2 usage/config, 3 wrong PIN, 4 blocked, 5 no card,\n"
           "6 TLS or provider refused.\n";
}

// Every journal line that names the queue id: the SMTP acceptance (client, TLS, AUTH user, from,
// to, size, Message-ID), each submission attempt (duration, provider ids, result), DSNs and the
// confirmations routed back to the sender (gateway/journal_channel.h).
int trace(const std::string& queueId) {
    if (!gateway::Spool::validId(queueId)) {
        std::cerr << "demailctl trace: '" << queueId << "' is not a queue id\n";
        return 2;
    }
    const std::string match = "QUEUE_ID=" + queueId;
    execlp("journalctl", "journalctl", "--no-pager", "-o", "short-iso", match.c_str(),
           static_cast<char*>(nullptr));
    std::cerr << "demailctl trace: cannot run journalctl (" << std::strerror(errno)
              << "); without the journal: grep 'queue_id=" << queueId << "' in the daemon's log\n";
    return 1;
}

int health(const gateway::Config& config) {
    try {
        Poco::Net::HTTPClientSession s(config.health.listen.host, config.health.listen.port);
        s.setTimeout(Poco::Timespan(5, 0));
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, "/status");
        s.sendRequest(req);
        Poco::Net::HTTPResponse resp;
        std::istream& in = s.receiveResponse(resp);
        Poco::JSON::Parser parser;
        auto root = parser.parse(in).extract<Poco::JSON::Object::Ptr>();
        const bool ready = root->getValue<bool>("ready");
        std::cout << "demail-gatewayd at " << config.health.listen.toString() << ": "
                  << (ready ? "READY" : "NOT READY") << "\n\n";
        auto comps = root->getObject("components");
        for (const auto& name : comps->getNames()) {
            auto c = comps->getObject(name);
            std::cout << "  " << (c->getValue<bool>("ready") ? "ok  " : "FAIL") << "  " << name
                      << ": " << c->getValue<std::string>("reason") << "\n";
        }
        // Per De-Mail account: a paused account does not make the gateway unready (the others
        // go on), so it is listed here. Provider text: control bytes shown as \xNN.
        const auto printable = [](const std::string& v) {
            std::string out;
            for (unsigned char c : v) {
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02X", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
            }
            return out;
        };
        if (auto accounts = root->getObject("accounts"); accounts && accounts->size() > 0) {
            std::cout << "\n  accounts:\n";
            for (const auto& name : accounts->getNames()) {
                auto a = accounts->getObject(name);
                const std::string state = a->optValue<std::string>("state", "ok");
                std::cout << "  "
                          << (state == "ok"       ? "ok    "
                              : state == "paused" ? "PAUSED"
                                                  : "LIST  ")
                          << "  " << printable(name);
                if (a->has("sendingReason"))
                    std::cout << ": sending paused: "
                              << printable(a->getValue<std::string>("sendingReason"));
                if (a->has("receivingReason"))
                    std::cout << (a->has("sendingReason") ? "; " : ": ") << "inbox listing failed: "
                              << printable(a->getValue<std::string>("receivingReason"));
                std::cout << "\n";
            }
        }
        std::cout << "\n";
        auto metrics = root->getObject("metrics");
        for (const auto& name : metrics->getNames())
            std::cout << "  " << name << " " << metrics->getValue<double>(name) << "\n";
        return ready ? 0 : 1;
    } catch (const Poco::Exception& e) {
        std::cerr << "demailctl health: cannot reach the gateway at "
                  << config.health.listen.toString() << ": " << e.displayText()
                  << " (is demail-gatewayd running?)\n";
        return 1;
    }
}

int providerProbe(const gateway::Config& config) {
    auto creds = gateway::makeCredentials(config);
    if (!creds.notice.empty())
        std::cerr << "demailctl provider probe: warning: " << creds.notice << "\n";
    if (!creds.error.empty()) {
        std::cerr << "demailctl provider probe: " << creds.error << "\n";
        return creds.exitCode ? creds.exitCode : 1;
    }
    const auto report = connector::probe(gateway::providerEndpoint(config), *creds.credentials);
    std::cout << connector::formatProbeReport(report) << "\n";
    return report.ok ? 0 : 6;
}

int passwdCommand(const std::string& user) {
    std::string pw;
    if (isatty(STDIN_FILENO)) {
        std::cerr << "Password for " << user << ": ";
        termios old{};
        tcgetattr(STDIN_FILENO, &old);
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        std::getline(std::cin, pw);
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        std::cerr << "\n";
    } else {
        std::getline(std::cin, pw);
    }
    if (pw.size() < 8) {
        std::cerr << "demailctl passwd: use at least 8 characters\n";
        return 2;
    }
    std::cout << user << ":" << smtp::hashPassword(pw) << "\n";
    return 0;
}

// Root must not work in a directory another user controls: that user could plant symlinks or
// files for root to follow (an attacker running as the service user would become root). When
// run as root, demailctl becomes the owner of the spool (normally demail-gateway) before it
// touches anything in it, so it can do no more there than the service itself. "" or the error.
std::string becomeSpoolOwner(const std::string& spoolDir) {
    if (::geteuid() != 0)
        return {};
    struct stat st {};
    // The configured path may be a symlink (root's choice, e.g. to another filesystem); what
    // counts is who owns the directory it leads to.
    const int fd = ::open(spoolDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return "cannot open the spool directory " + spoolDir +
               " ([queue] dir): " + std::strerror(errno);
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        return "cannot stat " + spoolDir + ": " + std::strerror(e);
    }
    // A root-owned spool with a subdirectory the service owns is still the service's to write.
    uid_t uid = st.st_uid;
    gid_t gid = st.st_gid;
    for (const char* sub : {"queue", "dispatch"}) {
        struct stat s {};
        if (uid == 0 && ::fstatat(fd, sub, &s, AT_SYMLINK_NOFOLLOW) == 0 && s.st_uid != 0) {
            uid = s.st_uid;
            gid = s.st_gid;
        }
    }
    ::close(fd);
    if (uid == 0)
        return {};  // only root can write there: nothing to defend against
    if (const struct passwd* pw = ::getpwuid(uid))
        gid = pw->pw_gid;
    if (::setgroups(1, &gid) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0)
        return "cannot switch to the spool's owner (uid " + std::to_string(uid) +
               "): " + std::strerror(errno);
    uid_t r = 0, e = 0, saved = 0;
    if (::getresuid(&r, &e, &saved) != 0 || r != uid || e != uid || saved != uid)
        return "still root after switching to uid " + std::to_string(uid);
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    std::string configPath = config::kDefaultPath;
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            usage(std::cout);
            return 0;
        }
        if (a == "--config") {
            if (i + 1 >= argc) {
                std::cerr << "demailctl: --config needs a file\n";
                return 2;
            }
            configPath = argv[++i];
        } else {
            args.push_back(a);
        }
    }
    if (args.empty()) {
        usage(std::cerr);
        return 2;
    }
    if (args[0] == "passwd")
        return args.size() == 2 ? passwdCommand(args[1]) : (usage(std::cerr), 2);
    if (args[0] == "trace")
        return args.size() == 2 ? trace(args[1]) : (usage(std::cerr), 2);
    // Each command checks in full only the sections it reads (the probe runs with an [smtp] the
    // daemon would refuse); every name in the file is checked whatever the command.
    gateway::Sections use;
    if (args[0] == "health")
        use.health = true;
    else if (args[0] == "provider")
        use.card = use.provider = use.queue = use.certpromote = true;
    else if (args[0] == "queue" || args[0] == "archive")
        use.queue = true;
    const auto loaded = gateway::loadConfig(configPath, use);
    if (!loaded.ok()) {
        std::cerr << "demailctl: " << loaded.error << "\n";
        return 2;
    }
    const gateway::Config& config = *loaded.config;
    if (args[0] == "health")
        return health(config);
    if (args[0] == "provider" && args.size() == 2 && args[1] == "probe")
        return providerProbe(config);
    if (args[0] == "queue") {
        if (const std::string e = becomeSpoolOwner(config.queue.dir); !e.empty()) {
            std::cerr << "demailctl queue: " << e << "\n";
            return 1;
        }
        return gateway::runQueueCommand(config.queue.dir, {args.begin() + 1, args.end()}, std::cout,
                                        std::cerr);
    }
    if (args[0] == "archive") {
        if (const std::string e = becomeSpoolOwner(config.queue.dir); !e.empty()) {
            std::cerr << "demailctl archive: " << e << "\n";
            return 1;
        }
        return gateway::runArchiveCommand(gateway::archiveDir(config),
                                          {args.begin() + 1, args.end()}, std::cout, std::cerr);
    }
    usage(std::cerr);
    return 2;
}
