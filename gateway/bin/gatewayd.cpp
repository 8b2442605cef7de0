// demail-gatewayd: the appliance service. Joins the intake, the spool, the dispatcher, the
// provider transport, the inbound poller, the card supervision and the health endpoint, and runs
// in the foreground under systemd (Type=notify): READY and STATUS lines, WATCHDOG pings, SIGHUP
// reloads the accounts and forgets a rejected PIN, SIGTERM stops accepting, lets the sessions in
// flight finish and exits.
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/URI.h>
#include <openssl/x509.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "demail/connector/transport/https_provider_transport.h"
#include "demail/gateway/adapters.h"
#include "demail/gateway/config.h"
#include "demail/gateway/credentials.h"
#include "demail/gateway/health.h"
#include "demail/gateway/inbound.h"
#include "demail/gateway/intake.h"
#include "demail/gateway/metrics.h"
#include "demail/gateway/outbound.h"
#include "demail/gateway/spool.h"
#include "demail/gateway/systemd_notify.h"
#include "demail/smartcard/card_profile.h"
#include "demail/smartcard/pcsc.h"
#include "demail/smartcard/tcos.h"
#include "demail/smtp/server.h"
#include "secret_memory.h"

using namespace demail;
using namespace std::chrono_literals;

namespace {

Poco::Logger& log() {
    return Poco::Logger::get("gatewayd");
}

void setUpLogging() {
    Poco::AutoPtr<Poco::PatternFormatter> f(new Poco::PatternFormatter("%p %s: %t"));
    Poco::AutoPtr<Poco::FormattingChannel> c(
        new Poco::FormattingChannel(f, new Poco::ConsoleChannel(std::cerr)));
    Poco::Logger::root().setChannel(c);
    Poco::Logger::root().setLevel("information");
}

std::string hostnameOr(const std::string& configured) {
    if (!configured.empty())
        return configured;
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    return buf;
}

// Why the card cannot sign right now, read over PC/SC without spending a PIN try.
std::string pinTriesText(const std::string& reader) {
    smartcard::PcscContext ctx;
    auto r = ctx.findReader(reader, true);
    if (!r.ok())
        return "";
    auto card = smartcard::PcscCard::connect(ctx, r.value());
    if (!card.ok())
        return "";
    const auto* profile = smartcard::profileForAtr(card.value()->atr());
    if (!profile)
        return "";
    smartcard::TcosCard tcos(*card.value(), *profile);
    auto st = tcos.pinStatus(profile->authPinRef);
    if (!st.ok() || st.value().triesLeft < 0)
        return "";
    return ", " + std::to_string(st.value().triesLeft) + " tries left";
}

// Days until the client certificate expires; nothing without one.
std::optional<int> daysLeft(X509* cert) {
    if (!cert)
        return std::nullopt;
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert)) != 1)
        return std::nullopt;
    return days;
}

struct Daemon {
    gateway::Config config;
    gateway::Metrics metrics;
    gateway::HealthState health;
    std::atomic<bool> stopping{false};
    std::mutex wakeMutex;
    std::condition_variable wake;
    bool fullPassWanted = false;     // the card is back: look at the whole queue now
    std::vector<std::string> fresh;  // committed since the last pass: sent without a full pass
};

}  // namespace

int main(int argc, char** argv) {
    std::string configPath = gateway::kDefaultConfigPath;
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
    Daemon d;
    d.config = *loaded.config;
    const auto& cfg = d.config;
    connector::AccountMap accounts;
    if (!cfg.provider.accountsFile.empty()) {
        if (auto e = gateway::loadAccountsFile(cfg.provider.accountsFile, accounts); !e.empty()) {
            std::cerr << "demail-gatewayd: [provider] accounts_file: " << e << "\n";
            return 2;
        }
    }
    if (checkOnly) {
        std::cout << "configuration " << configPath << " is valid\n";
        return 0;
    }
    if (!wipeWarning.empty())
        log().warning("event=secret_memory reason=\"" + wipeWarning + "\"");
    if (auto w = gatewayd::disableOpenScPinCache(cfg.card.openscConf); !w.empty())
        log().warning("event=secret_memory reason=\"" + w + "\"");
    const std::string host = hostnameOr(cfg.smtp.hostname);

    // Signals are taken by the main thread only (sigtimedwait below).
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGTERM, SIGINT, SIGHUP})
        sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    gateway::Spool spool(cfg.queue.dir, cfg.smtp.maxMessageSize);
    if (auto e = spool.open(); !e.empty()) {
        std::cerr << "demail-gatewayd: [queue] dir: " << e << "\n";
        return 1;
    }
    const auto recovered = spool.recover();
    log().notice("event=spool_recovered kept=" + std::to_string(recovered.kept) +
                 " temp_removed=" + std::to_string(recovered.tempRemoved) +
                 " corrupt=" + std::to_string(recovered.movedToCorrupt));
    d.health.set("spool", true, "writable, " + std::to_string(recovered.kept) + " queued at start");

    std::unique_ptr<gateway::HealthServer> healthServer;
    try {
        healthServer =
            std::make_unique<gateway::HealthServer>(cfg.health.listen, d.health, d.metrics);
    } catch (const std::exception& e) {
        std::cerr << "demail-gatewayd: [health] listen: " << e.what() << "\n";
        return 1;
    }

    // Credentials: the card (or PEM in the lab). A missing card or a wrong PIN does not stop the
    // service: mail is accepted and queued, readiness says why nothing is sent.
    auto creds = gateway::makeCredentials(cfg);
    if (!creds.credentials) {
        std::cerr << "demail-gatewayd: " << creds.error << "\n";
        return 2;
    }
    std::atomic<bool> pinRejected{false};
    if (!creds.error.empty()) {
        const bool pin = creds.exitCode == 3 || creds.exitCode == 4;
        pinRejected = pin;
        d.health.set("card", false,
                     creds.error + (pin ? pinTriesText(cfg.card.reader) : std::string()));
        log().error("event=card_not_ready reason=\"" + creds.error + "\"");
    } else {
        d.health.set("card", true, creds.card ? "logged in" : "PEM key (lab set-up)");
    }
    // Certificate expiry: a warning 30 days ahead (log and status), red when it has expired.
    auto checkExpiry = [&]() {
        const auto days = daysLeft(creds.credentials->certificate());
        if (!days)
            return;
        if (*days < 0) {
            d.health.set("certificate", false, "the client certificate has expired");
            log().error("event=certificate_expired");
        } else if (*days < 30) {
            d.health.set("certificate", true,
                         "warning: the client certificate expires in " + std::to_string(*days) +
                             " days; order a new card");
            log().warning("event=certificate_expires_soon days=" + std::to_string(*days));
        } else {
            d.health.set("certificate", true, "valid for " + std::to_string(*days) + " days");
        }
    };
    checkExpiry();

    const connector::ProviderEndpoint endpoint{cfg.provider.profile, cfg.provider.url,
                                               cfg.provider.caFile, cfg.provider.serverName};
    auto* credentials = creds.credentials.get();
    auto* cardCredentials = creds.card;
    auto transport = std::make_unique<gateway::ProviderConnectionPool>(
        [endpoint, credentials, cardCredentials](std::string& why, Poco::Net::Session::Ptr resume)
            -> std::unique_ptr<connector::HttpsProviderTransport> {
            if (cardCredentials && !cardCredentials->privateKey()) {
                why = "the card key is not loaded";
                return nullptr;
            }
            try {
                return std::make_unique<connector::HttpsProviderTransport>(
                    endpoint, *credentials, connector::TransportTimeouts{}, resume);
            } catch (const std::exception& e) {
                why = e.what();
                return nullptr;
            }
        },
        cfg.provider.connections);
    if (creds.error.empty()) {  // a usable key: check the endpoint settings now, not later
        try {
            connector::HttpsProviderTransport probe(endpoint, *credentials);
        } catch (const std::exception& e) {
            std::cerr << "demail-gatewayd: [provider]: " << e.what() << "\n";
            return 2;
        }
    }
    const std::string providerHost = Poco::URI(cfg.provider.url).getHost();

    gateway::SentJournal journal(cfg.queue.dir + "/sent");
    gateway::ProviderSubmitter submitter(*transport, journal, providerHost);
    gateway::IntakePolicy policy(cfg.smtp.relayNetworks, accounts, cfg.provider.deMailDomains);
    // The submission port ([smtp] submission_listen): AUTH required (no relay networks), TLS first.
    gateway::IntakePolicy submissionPolicy({}, accounts, cfg.provider.deMailDomains);
    std::mutex accountsMutex;
    std::vector<std::string> ownAccounts;

    // What the provider says about our accounts: refreshed at start and with every inbox poll.
    auto refreshAccounts = [&]() -> bool {
        auto r = transport->listAccounts();
        if (!r.ok()) {
            d.health.set("provider", false, r.error().reason);
            return false;
        }
        std::vector<std::string> domains = cfg.provider.deMailDomains, own;
        connector::AccountMap map;
        {
            std::lock_guard lock(accountsMutex);
            map = accounts;
        }
        for (const auto& a : r.value()) {
            own.push_back(a.address);
            // An account domain widens the accepted recipient domains only below the configured
            // De-Mail domains: the provider's list must not turn the gateway into a relay for
            // any domain it names (review L14).
            if (connector::inDomains("x@" + a.domain, cfg.provider.deMailDomains))
                domains.push_back(a.domain);
            else
                log().warning("event=account_domain_ignored domain=" + smtp::auditValue(a.domain) +
                              " reason=\"not below [provider] demail_domains\"");
        }
        policy.setDeMailDomains(domains);
        policy.setAccounts(map);
        submissionPolicy.setDeMailDomains(domains);
        submissionPolicy.setAccounts(map);
        submitter.update({domains, map});
        {
            std::lock_guard lock(accountsMutex);
            ownAccounts = own;
        }
        d.health.set("provider", true,
                     "reached; " + std::to_string(own.size()) + " De-Mail accounts");
        return true;
    };
    submitter.update({cfg.provider.deMailDomains, accounts});
    if (d.health.components().count("card") && d.health.components().at("card").ready)
        refreshAccounts();
    else
        d.health.set("provider", false, "not contacted: the card is not ready");

    gateway::SpoolSink sink(spool);
    sink.onCommitted = [&d](const std::string& id) {
        std::lock_guard lock(d.wakeMutex);
        d.fresh.push_back(id);
        d.wake.notify_all();
    };
    smtp::UsersFile users;
    if (!cfg.smtp.usersFile.empty()) {
        if (auto e = users.load(cfg.smtp.usersFile); !e.empty()) {
            std::cerr << "demail-gatewayd: [smtp] users_file: " << e << "\n";
            return 2;
        }
    }
    smtp::ServerConfig scfg;
    scfg.host = cfg.smtp.listen.host;
    scfg.port = cfg.smtp.listen.port;
    scfg.hostname = host;
    scfg.tlsCert = cfg.smtp.tlsCert;
    scfg.tlsKey = cfg.smtp.tlsKey;
    scfg.requireTls = cfg.smtp.requireTls;
    scfg.maxMessageSize = cfg.smtp.maxMessageSize;
    scfg.maxConnections = static_cast<int>(cfg.smtp.maxConnections);
    scfg.maxConnectionsPerClient = static_cast<int>(cfg.smtp.maxConnectionsPerClient);
    scfg.maxConcurrentData = static_cast<int>(cfg.smtp.maxConcurrentData);
    scfg.audit = [](const std::string& line) { log().notice(line); };
    smtp::Server server(scfg, policy, sink, cfg.smtp.usersFile.empty() ? nullptr : &users);
    if (auto e = server.start(); !e.empty()) {
        std::cerr << "demail-gatewayd: " << e << "\n";
        return 1;
    }
    if (!server.notice().empty())
        log().warning("event=smtp_limit " + server.notice());
    if (cfg.health.listen.host != "127.0.0.1" && cfg.health.listen.host != "::1")
        log().warning("event=health_exposed listen=" + cfg.health.listen.toString() +
                      " reason=\"the health endpoint has no authentication and shows card, PIN "
                      "and provider state; keep it on loopback or firewall it\"");
    log().notice("event=listening smtp=" + cfg.smtp.listen.toString() +
                 " health=" + cfg.health.listen.toString());
    std::unique_ptr<smtp::Server> submission;
    if (cfg.smtp.submissionListen) {
        smtp::ServerConfig sub = scfg;
        sub.host = cfg.smtp.submissionListen->host;
        sub.port = cfg.smtp.submissionListen->port;
        sub.requireTls = true;
        submission = std::make_unique<smtp::Server>(sub, submissionPolicy, sink, &users);
        if (auto e = submission->start(); !e.empty()) {
            std::cerr << "demail-gatewayd: [smtp] submission_listen: " << e << "\n";
            return 1;
        }
        log().notice("event=listening submission=" + cfg.smtp.submissionListen->toString());
    }

    // Outbound.
    gateway::SpoolOutboundStore store(spool);
    gateway::SmtpRelayTarget relay;
    relay.host = cfg.delivery.relay.host;
    relay.port = cfg.delivery.relay.port;
    relay.requireTls = cfg.delivery.tls == gateway::DeliveryTls::Required;
    relay.caFile = cfg.delivery.caFile;
    // Review M4: inbound De-Mail (also Persönlich), confirmations and DSNs cross this link. Off
    // the host, without a verified certificate anyone who can redirect the relay's name or
    // address reads and alters them, and `opportunistic` TLS can be stripped to plain text.
    const bool relayIsLocal = cfg.delivery.relay.host == "127.0.0.1" ||
                              cfg.delivery.relay.host == "::1" ||
                              cfg.delivery.relay.host == "localhost";
    if (!relayIsLocal && (cfg.delivery.caFile.empty() || !relay.requireTls))
        log().warning(std::string("event=delivery_unauthenticated relay=") +
                      cfg.delivery.relay.toString() + " reason=\"" +
                      (!relay.requireTls ? "[delivery] tls = opportunistic can be stripped to "
                                           "plain text"
                                         : "[delivery] ca_file is empty: the relay's certificate "
                                           "is not verified") +
                      "\" action=\"set [delivery] ca_file and tls = required\"");
    relay.heloName = host;
    gateway::RelayNotifier notifier(relay);
    gateway::OutboundDispatcher::Options dopts;
    dopts.reportingHost = host;
    dopts.lanes = cfg.provider.connections;
    dopts.schedule.minDelay = cfg.queue.retryMin;
    dopts.schedule.maxDelay = cfg.queue.retryMax;
    dopts.schedule.maxAge = cfg.queue.maxAge;
    dopts.schedule.delayWarning = cfg.queue.delayWarning;
    std::mt19937_64 rng(std::random_device{}());
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    gateway::OutboundDispatcher dispatcher(dopts, store, submitter, notifier,
                                           [&] { return uniform(rng); });
    if (!d.health.components().at("card").ready)
        dispatcher.pause(d.health.components().at("card").reason);
    if (creds.card) {
        submitter.cardProblem = [&]() -> std::optional<std::string> {
            if (creds.card->source().tokenLost())
                return "the card stopped answering (removed or reader gone)";
            return std::nullopt;
        };
    }

    auto& mAccepted = d.metrics.counter("demail_messages_accepted_total", "Messages answered 250");
    auto& mSubmitted =
        d.metrics.counter("demail_messages_submitted_total", "Messages accepted by the provider");
    auto& mBounced = d.metrics.counter("demail_messages_bounced_total",
                                       "Messages returned to their sender (DSN)");
    auto& mDeferred = d.metrics.counter("demail_messages_deferred_total",
                                        "Submission attempts deferred for a retry");
    auto& mDelivered = d.metrics.counter("demail_messages_delivered_total",
                                         "Inbound De-Mail and confirmations delivered internally");
    auto& mSignatures = d.metrics.counter("demail_card_signatures_total",
                                          "TLS handshakes signed with the client key");
    auto& mFull =
        d.metrics.counter("demail_tls_handshakes_total", "Provider TLS handshakes", "kind", "full");
    auto& mResumed = d.metrics.counter("demail_tls_handshakes_total", "Provider TLS handshakes",
                                       "kind", "resumed");
    auto& mErrProvider =
        d.metrics.counter("demail_errors_total", "Errors by kind", "kind", "provider");
    auto& mErrInbound =
        d.metrics.counter("demail_errors_total", "Errors by kind", "kind", "inbound_delivery");
    auto& gDepth = d.metrics.gauge("demail_queue_depth", "Messages waiting in the spool");
    auto& gOldest =
        d.metrics.gauge("demail_queue_oldest_age_seconds", "Age of the oldest queued message");

    auto updateQueueMetrics = [&]() {
        const auto ids = spool.list();
        gDepth.set(static_cast<double>(ids.size()));
        double oldest = 0;
        if (!ids.empty())
            if (auto e = spool.envelope(ids.front()))
                oldest =
                    std::chrono::duration<double>(std::chrono::system_clock::now() - e->arrival)
                        .count();
        gOldest.set(oldest);
        const bool young = oldest < static_cast<double>(cfg.queue.delayWarning.count());
        d.health.set("queue", young,
                     std::to_string(ids.size()) + " queued" +
                         (young ? "" : ", the oldest waits longer than delay_warning"));
        mAccepted.mirror(server.counters().accepted);
        const auto totals = transport->totals();
        mSignatures.mirror(totals.cardSignatures);
        mFull.mirror(totals.fullHandshakes);
        mResumed.mirror(totals.resumedHandshakes);
    };

    // New mail is sent as it arrives (only its ids, no queue listing); the whole queue is looked
    // at once a second and when the card is back (retries due, expiries, DSNs). While paused the
    // new ids are left to the next full pass: a queue waiting for the card costs the intake
    // nothing.
    std::thread dispatchThread([&] {
        auto lastFullPass = std::chrono::steady_clock::now() - 1h;
        while (!d.stopping) {
            std::vector<std::string> fresh;
            bool full = false;
            {
                std::unique_lock lock(d.wakeMutex);
                d.wake.wait_for(lock, 1s, [&] {
                    return !d.fresh.empty() || d.fullPassWanted || d.stopping.load();
                });
                full = d.fullPassWanted || std::chrono::steady_clock::now() - lastFullPass >= 1s;
                d.fullPassWanted = false;
                fresh.swap(d.fresh);
            }
            if (d.stopping)
                break;
            gateway::DispatchCounts c;
            if (full) {
                c = dispatcher.runOnce(std::chrono::system_clock::now());
                lastFullPass = std::chrono::steady_clock::now();
            } else if (!dispatcher.paused()) {
                c = dispatcher.runIds(fresh, std::chrono::system_clock::now());
            }
            mSubmitted.add(static_cast<std::uint64_t>(c.submitted));
            mBounced.add(static_cast<std::uint64_t>(c.bounced));
            mDeferred.add(static_cast<std::uint64_t>(c.deferred));
            if (c.deferred)
                mErrProvider.add(static_cast<std::uint64_t>(c.deferred));
            if (c.submitted)
                d.health.set("provider", true, "submission accepted");
            if (dispatcher.paused())
                d.health.set("card", false, dispatcher.pauseReason());
            if (full)
                updateQueueMetrics();
        }
    });

    // Inbound.
    gateway::ProviderInbox inbox(*transport, {});
    gateway::InboundHygiene hygiene;
    if (cfg.delivery.stripHeaders)
        hygiene.stripHeaders = *cfg.delivery.stripHeaders;
    hygiene.gatewayName = host;
    gateway::DeMailRouter router(
        journal,
        [&]() {
            std::lock_guard lock(accountsMutex);
            return accounts;
        },
        cfg.delivery.postmaster, hygiene);
    gateway::RelayInboundDelivery inboundDelivery(relay);
    gateway::FileLedger ledger(cfg.queue.dir + "/inbound-delivered");
    gateway::FileAttempts inboundAttempts(cfg.queue.dir + "/inbound-attempts");
    gateway::SpoolQuarantine quarantine(cfg.queue.dir + "/inbound-quarantine",
                                        cfg.delivery.postmaster, inboundDelivery,
                                        hygiene.gatewayName);
    gateway::InboundPoller poller(inbox, router, inboundDelivery, ledger, cfg.delivery.postmaster,
                                  quarantine, inboundAttempts,
                                  static_cast<int>(cfg.delivery.inboundMaxAttempts));
    std::thread inboundThread([&] {
        auto next = std::chrono::steady_clock::now();
        while (!d.stopping) {
            std::this_thread::sleep_for(200ms);
            if (std::chrono::steady_clock::now() < next || dispatcher.paused())
                continue;
            next = std::chrono::steady_clock::now() + cfg.provider.pollInterval;
            if (!refreshAccounts())
                continue;
            {
                std::lock_guard lock(accountsMutex);
                inbox.setAccounts(ownAccounts);
            }
            gateway::InboundCounts c;
            try {  // pollOnce catches per item; this is the last line of defence (M8)
                c = poller.pollOnce();
            } catch (const std::exception& e) {
                c.deferred = 1;
                c.lastError = std::string("inbound pass failed: ") + e.what();
            }
            mDelivered.add(static_cast<std::uint64_t>(c.delivered));
            if (c.deferred)
                mErrInbound.add(static_cast<std::uint64_t>(c.deferred));
            if (c.quarantined)
                d.health.set("inbound", false,
                             std::to_string(c.quarantined) + " inbound item(s) quarantined in " +
                                 quarantine.dir() +
                                 " (see the .reason files; remove them to clear)");
            else
                d.health.set("inbound", c.deferred == 0,
                             c.deferred == 0 ? "delivering to " + cfg.delivery.relay.toString()
                                             : c.lastError);
        }
    });

    // Card supervision: reader and card events; a card back is logged in again (never with a
    // PIN that was rejected) and sending resumes by itself.
    smartcard::PcscContext pcsc;
    smartcard::CardMonitor monitor(pcsc, cfg.card.reader);
    std::thread cardThread;
    if (creds.card) {
        cardThread = std::thread([&] {
            auto state = monitor.current();
            while (!d.stopping) {
                auto now = monitor.waitForChange(state, 2s);
                const bool changed = now.presence != state.presence;
                state = now;
                if (!changed && !(state.presence == smartcard::CardPresence::Present &&
                                  dispatcher.paused() && !pinRejected))
                    continue;
                if (state.presence != smartcard::CardPresence::Present) {
                    const std::string why =
                        std::string(smartcard::toString(state.presence)) +
                        (state.reader.empty() ? "" : " in reader " + state.reader) +
                        ": sending is paused, mail is queued";
                    dispatcher.pause(why);
                    d.health.set("card", false, why);
                    log().warning("event=card_absent reason=\"" + why + "\"");
                    continue;
                }
                if (pinRejected)
                    continue;
                transport->reset();  // the old TLS context lets go of the old key first
                const auto r = creds.card->load();
                if (r.ok()) {
                    checkExpiry();
                    transport->reset();  // a new TLS context with the new key
                    dispatcher.resume();
                    d.health.set("card", true, "logged in");
                    log().notice("event=card_ready");
                    std::lock_guard lock(d.wakeMutex);
                    d.fullPassWanted = true;
                    d.wake.notify_all();
                } else {
                    if (r.kind == smartcard::KeyErrorKind::WrongPin ||
                        r.kind == smartcard::KeyErrorKind::PinLocked ||
                        r.kind == smartcard::KeyErrorKind::PinPreviouslyRejected)
                        pinRejected = true;
                    const std::string why =
                        r.message + (pinRejected ? pinTriesText(cfg.card.reader) : "");
                    dispatcher.pause(why);
                    d.health.set("card", false, why);
                    log().error("event=card_login_failed reason=\"" + r.message + "\"");
                }
            }
        });
    }

    updateQueueMetrics();
    gateway::systemd::ready("accepting mail on " + cfg.smtp.listen.toString() + "; " +
                            (d.health.ready() ? "ready" : d.health.notReadySummary()));
    log().notice("event=ready");

    const auto watchdog = gateway::systemd::watchdogInterval();
    while (true) {
        timespec timeout{1, 0};
        siginfo_t info;
        const int sig = sigtimedwait(&signals, &info, &timeout);
        if (watchdog)
            gateway::systemd::watchdog();
        if (sig == SIGHUP) {
            gateway::systemd::reloading();
            auto again = gateway::loadConfig(configPath);
            connector::AccountMap map;
            std::string err = again.ok() ? "" : again.error;
            if (err.empty() && !again.config->provider.accountsFile.empty())
                err = gateway::loadAccountsFile(again.config->provider.accountsFile, map);
            if (!err.empty()) {
                log().error("event=reload_failed reason=\"" + err + "\" action=kept_old");
            } else {
                {
                    std::lock_guard lock(accountsMutex);
                    accounts = map;
                }
                policy.setAccounts(map);
                submissionPolicy.setAccounts(map);
                submitter.update({submitter.settings().deMailDomains, map});
                if (creds.card) {
                    creds.card->source().resetAfterConfigChange();
                    pinRejected = false;
                    const auto r = creds.card->load();
                    if (r.ok()) {
                        transport->reset();
                        dispatcher.resume();
                        d.health.set("card", true, "logged in");
                    } else {
                        pinRejected = r.kind == smartcard::KeyErrorKind::WrongPin ||
                                      r.kind == smartcard::KeyErrorKind::PinLocked;
                        d.health.set("card", false, r.message);
                        dispatcher.pause(r.message);
                    }
                }
                log().notice("event=reloaded");
            }
            gateway::systemd::status(d.health.ready() ? "ready" : d.health.notReadySummary());
        } else if (sig == SIGTERM || sig == SIGINT) {
            break;
        } else {
            gateway::systemd::status(
                (d.health.ready() ? std::string("ready") : d.health.notReadySummary()) + "; " +
                std::to_string(server.activeSessions()) + " sessions");
        }
    }

    gateway::systemd::stopping("stopping: finishing sessions in flight");
    log().notice("event=stopping");
    server.stop(30s);
    if (submission)
        submission->stop(5s);
    d.stopping = true;
    d.wake.notify_all();
    monitor.cancel();
    dispatchThread.join();
    inboundThread.join();
    if (cardThread.joinable())
        cardThread.join();
    log().notice("event=stopped");
    return 0;
}
