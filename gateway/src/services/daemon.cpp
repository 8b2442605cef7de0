#include "demail/gateway/services/daemon.h"

#include <Poco/Logger.h>
#include <Poco/URI.h>
#include <unistd.h>

#include <iostream>

#include "demail/connector/transport/provider_binding.h"
#include "demail/gateway/accounts_file.h"
#include "demail/gateway/provider_endpoint.h"
#include "demail/gateway/spool_layout.h"
#include "demail/gateway/systemd_notify.h"
#include "demail/smtp/server.h"

namespace demail::gateway {
namespace {

using namespace std::chrono_literals;

Poco::Logger& log() {
    return Poco::Logger::get("gatewayd");
}

std::string hostnameOr(const std::string& configured) {
    if (!configured.empty())
        return configured;
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    return buf;
}

SmtpRelayTarget relayTarget(const Config& cfg, const std::string& host) {
    SmtpRelayTarget relay;
    relay.host = cfg.delivery.relay.host;
    relay.port = cfg.delivery.relay.port;
    relay.requireTls = cfg.delivery.tls == DeliveryTls::Required;
    relay.caFile = cfg.delivery.caFile;
    relay.heloName = host;
    return relay;
}

bool isLoopback(const std::string& host) {
    return host == "127.0.0.1" || host == "::1" || host == "localhost";
}

// What an operator should hear at start about a configuration that works but is weaker than it
// looks (review M4, L11).
void warnAboutExposure(const Config& cfg) {
    if (!isLoopback(cfg.health.listen.host))
        log().warning("event=health_exposed listen=" + cfg.health.listen.toString() +
                      " reason=\"the health endpoint has no authentication and shows card, PIN "
                      "and provider state; keep it on loopback or firewall it\"");
    // Inbound De-Mail (also Persönlich), confirmations and DSNs cross the link to the relay. Off
    // the host, without a verified certificate anyone who can redirect the relay's name or
    // address reads and alters them, and `opportunistic` TLS can be stripped to plain text.
    const bool required = cfg.delivery.tls == DeliveryTls::Required;
    if (!isLoopback(cfg.delivery.relay.host) && (cfg.delivery.caFile.empty() || !required))
        log().warning(std::string("event=delivery_unauthenticated relay=") +
                      cfg.delivery.relay.toString() + " reason=\"" +
                      (!required ? "[delivery] tls = opportunistic can be stripped to plain text"
                                 : "[delivery] ca_file is empty: the relay's certificate is not "
                                   "verified") +
                      "\" action=\"set [delivery] ca_file and tls = required\"");
}

}  // namespace

Daemon::Daemon(Config config, std::string configPath, connector::AccountMap accounts)
    : config_(std::move(config)),
      configPath_(std::move(configPath)),
      host_(hostnameOr(config_.smtp.hostname)),
      spool_(config_.queue.dir, config_.smtp.maxMessageSize),
      accounts_(config_.provider.deMailDomains, config_.provider.deMailDomainsFromProvider,
                std::move(accounts)),
      accountPauses_(config_.queue.retryMax),
      relay_(relayTarget(config_, host_)) {}

Daemon::~Daemon() = default;

int Daemon::start() {
    const Config& cfg = config_;
    if (auto e = spool_.open(); !e.empty()) {
        std::cerr << "demail-gatewayd: [queue] dir: " << e << "\n";
        return 1;
    }
    const auto recovered = spool_.recover();
    log().notice("event=spool_recovered kept=" + std::to_string(recovered.kept) +
                 " temp_removed=" + std::to_string(recovered.tempRemoved) +
                 " corrupt=" + std::to_string(recovered.movedToCorrupt));
    health_.set("spool", true, "writable, " + std::to_string(recovered.kept) + " queued at start");
    archive_ = std::make_unique<archive::Archive>(archiveDir(cfg));
    if (auto e = archive_->open(); !e.empty()) {
        std::cerr << "demail-gatewayd: [archive] dir: " << e << "\n";
        return 1;
    }
    evidence_ = std::make_unique<ArchiveEvidence>(*archive_);
    if (auto e = signatures_.configure(cfg.provider.signatureCa, cfg.provider.signatureCrl);
        !e.empty()) {
        std::cerr << "demail-gatewayd: " << e << "\n";
        return 1;
    }
    log().notice("event=archive_opened dir=" + smtp::auditValue(archive_->dir()) +
                 " seq=" + std::to_string(archive_->headSeq()) + " hash=" + archive_->headHash());
    try {
        healthServer_ = std::make_unique<HealthServer>(cfg.health.listen, health_, metrics_);
    } catch (const std::exception& e) {
        std::cerr << "demail-gatewayd: [health] listen: " << e.what() << "\n";
        return 1;
    }

    // Credentials: the card (or PEM in the lab). A missing card or a wrong PIN does not stop the
    // service: mail is accepted and queued, readiness says why nothing is sent.
    credentials_ = makeCredentials(cfg);
    if (!credentials_.credentials) {
        std::cerr << "demail-gatewayd: " << credentials_.error << "\n";
        return 2;
    }
    if (!credentials_.notice.empty())
        log().warning("event=card_unchecked reason=\"" + credentials_.notice + "\"");

    const connector::ProviderEndpoint endpoint = providerEndpoint(cfg);
    const connector::ProviderBinding* binding = nullptr;
    try {
        binding = &connector::bindingFor(endpoint);  // the profile names it (connector registry)
    } catch (const std::exception& e) {
        std::cerr << "demail-gatewayd: [provider]: " << e.what() << "\n";
        return 2;
    }
    log().information(std::string("event=provider_binding profile=") + endpoint.profile +
                      " binding=" + binding->name +
                      " unknown_outcome=" + connector::toString(binding->resolution) +
                      (endpoint.proxy.host.empty() ? std::string{}
                                                   : " proxy=" + endpoint.proxy.host + ":" +
                                                         std::to_string(endpoint.proxy.port)));
    auto* credentials = credentials_.credentials.get();
    auto* card = credentials_.card;
    pool_ = std::make_unique<ProviderConnectionPool>(
        [endpoint, binding, credentials, card](std::string& why, Poco::Net::Session::Ptr resume)
            -> std::unique_ptr<connector::ProviderConnection> {
            if (card && !card->privateKey()) {
                why = "the card key is not loaded";
                return nullptr;
            }
            try {
                return binding->connect(endpoint, *credentials, connector::TransportTimeouts{},
                                        resume);
            } catch (const std::exception& e) {
                why = e.what();
                return nullptr;
            }
        },
        binding->resolution, cfg.provider.connections);
    if (credentials_.error.empty()) {  // a usable key: check the endpoint settings now
        try {
            binding->connect(endpoint, *credentials, connector::TransportTimeouts{}, nullptr);
        } catch (const std::exception& e) {
            std::cerr << "demail-gatewayd: [provider]: " << e.what() << "\n";
            return 2;
        }
    }

    journal_ = std::make_unique<SentJournal>(spool_layout::path(cfg.queue.dir, spool_layout::kSent),
                                             cfg.queue.sentRetention);
    submitter_ = std::make_unique<ProviderSubmitter>(*pool_, *journal_,
                                                     Poco::URI(cfg.provider.url).getHost());
    std::shared_ptr<const connector::PrivateIdSeal> seal;
    if (!cfg.provider.privateIdKeyFile.empty()) {
        std::string why;
        auto loaded = connector::PrivateIdSeal::fromFile(cfg.provider.privateIdKeyFile, why);
        if (!loaded) {
            std::cerr << "demail-gatewayd: [provider] private_id_key_file: " << why << "\n";
            return 2;
        }
        seal = std::make_shared<const connector::PrivateIdSeal>(*loaded);
        // Every gateway of the organisation must hold the same key: compare this line.
        log().notice("event=private_id_key fingerprint=" + seal->fingerprint());
    }
    submitter_->privateIdSeal = seal;
    accounts_.subscribe([this](const AccountSnapshot& s) {
        submitter_->update({s.deMailDomains, s.map});
    });
    submitter_->evidence = evidence_.get();
    if (card)
        submitter_->cardProblem = [card]() -> std::optional<std::string> {
            if (card->source().tokenLost())
                return "the card stopped answering (removed or reader gone)";
            return std::nullopt;
        };

    // An account's pause (by a 403 for it, or the provider's listing) never reaches the card
    // supervisor: only the whole dispatcher's pause (card, key, certificate) makes it log in.
    submitter_->accountPauses = &accountPauses_;
    accountPauses_.onChange(
        [this](const std::string& account, const std::optional<std::string>& reason) {
            health_.setAccountSending(account, reason.value_or(""));
            if (!reason && outbound_)
                outbound_->lookAtWholeQueue();  // its parked mail goes out now
        });

    outbound_ = std::make_unique<OutboundService>(cfg, spool_, *submitter_, relay_, metrics_,
                                                  health_, host_, &accountPauses_);
    card_ = std::make_unique<CardSupervisor>(
        cfg, credentials_, health_,
        CardSupervisor::Hooks{[this](const std::string& why) { outbound_->pause(why); },
                              [this] { outbound_->resume(); }, [this] { pool_->reset(); },
                              [this] { outbound_->lookAtWholeQueue(); },
                              // Only a pause a login may end: a provider that refuses our
                              // certificate would otherwise make the card log in every 2 s.
                              [this] { return outbound_->pausedForCard(); }});
    card_->start();
    inbound_ = std::make_unique<InboundService>(
        cfg, *pool_, accounts_, *journal_, relay_, metrics_, health_,
        [this] { return outbound_->paused(); }, accountPauses_, host_);
    inbound_->setEvidence(evidence_.get());
    inbound_->setSignatures(&signatures_);
    inbound_->setPrivateIdSeal(seal);
    if (card_->ready())
        inbound_->refreshAccounts();
    else
        health_.set("provider", false, "not contacted: the card is not ready");

    intake_ = std::make_unique<IntakeService>(
        cfg, spool_, accounts_, host_, [this](const std::string& id) { outbound_->committed(id); });
    intake_->setCannotSend([this] { return cannotSend(); });
    intake_->setPrivateIdSeal(seal);
    if (cfg.provider.addressCheck) {
        AddressBook::Settings book;
        book.timeout = cfg.provider.addressCheckTimeout;
        book.positiveTtl = cfg.provider.addressCacheTtl;
        book.negativeTtl = cfg.provider.addressCacheNegativeTtl;
        book.maxEntries = cfg.provider.addressCacheSize;
        book.acceptWhenUnavailable =
            cfg.provider.addressCheckUnavailable == ProviderConfig::Unavailable::Accept;
        addressBook_ =
            std::make_shared<AddressBook>(book, [pool = pool_.get()](const std::string& address) {
                return pool->lookupAddress(address);
            });
        intake_->setAddressBook(addressBook_);
    }
    if (auto e = intake_->start(); !e.empty()) {
        std::cerr << "demail-gatewayd: " << e << "\n";
        return e.rfind("[smtp] users_file", 0) == 0 ? 2 : 1;
    }
    warnAboutExposure(cfg);

    auto& accepted = metrics_.counter("demail_messages_accepted_total", "Messages answered 250");
    auto& signatures = metrics_.counter("demail_card_signatures_total",
                                        "TLS handshakes signed with the client key");
    auto& full =
        metrics_.counter("demail_tls_handshakes_total", "Provider TLS handshakes", "kind", "full");
    auto& resumed = metrics_.counter("demail_tls_handshakes_total", "Provider TLS handshakes",
                                     "kind", "resumed");
    const auto checks = [this](const char* result) -> Metrics::Counter& {
        return metrics_.counter("demail_address_checks_total",
                                "Recipient checks at RCPT ([provider] address_check) by how they "
                                "were answered",
                                "result", result);
    };
    auto& asked = checks("asked");
    auto& cached = checks("cached");
    auto& failed = checks("failed");
    auto& timedOut = checks("timeout");
    auto& stale = checks("confirmed_before");
    outbound_->afterFullPass = [this, &accepted, &signatures, &full, &resumed, &asked, &cached,
                                &failed, &timedOut, &stale] {
        if (addressBook_) {
            const auto c = addressBook_->counters();
            asked.mirror(c.lookups);
            cached.mirror(c.hits);
            failed.mirror(c.failures);
            timedOut.mirror(c.timeouts);
            stale.mirror(c.stale);
        }
        probeProviderIfUnreachable();
        accepted.mirror(intake_->accepted());
        const auto totals = pool_->totals();
        signatures.mirror(totals.cardSignatures);
        full.mirror(totals.fullHandshakes);
        resumed.mirror(totals.resumedHandshakes);
    };

    housekeeping_ = std::make_unique<Housekeeping>(
        *journal_, inbound_->ledger(),
        Housekeeping::intervalFor(cfg.queue.sentRetention, cfg.queue.inboundRetention));
    housekeeping_->watchArchive(
        {archive_.get(), cfg.archive.retention, cfg.archive.minFree, &health_,
         &metrics_.gauge("demail_archive_free_bytes",
                         "Free bytes on the evidence archive's file system"),
         &metrics_.gauge("demail_clock_synchronized",
                         "1 when the system clock is synchronised (legal timestamps)")});
    housekeeping_->checkArchive();
    outbound_->start();
    inbound_->start();
    housekeeping_->start();
    outbound_->updateQueueMetrics();
    systemd::ready("accepting mail on " + cfg.smtp.listen.toString() + "; " +
                   (health_.ready() ? "ready" : health_.notReadySummary()));
    log().notice("event=ready");
    return 0;
}

std::string Daemon::cannotSend() const {
    if (outbound_->paused()) {
        const auto components = health_.components();
        const auto card = components.find("card");
        if (card != components.end() && !card->second.ready) {
            if (card->second.condition == kConditionAbsent)
                return "card absent";
            if (card->second.condition == kConditionPinRejected)
                return "card PIN rejected";
            return "card not ready";
        }
        return outbound_->pausedForCard() ? "card not usable"
                                          : "the provider refused this gateway's certificate";
    }
    if (!pool_->unreachable().empty())
        return "provider unreachable";
    return {};
}

void Daemon::probeProviderIfUnreachable() {
    const auto now = std::chrono::steady_clock::now();
    if (providerDown_ && pool_->unreachable().empty()) {  // a submission got through meanwhile
        log().notice("event=provider_reachable");
        providerDown_ = false;
    }
    if (now < nextProbe_ || outbound_->paused() || pool_->unreachable().empty())
        return;
    nextProbe_ = now + 3s;
    if (!providerDown_) {
        const auto why = pool_->unreachable();
        log().warning("event=provider_unreachable reason=\"" + why + "\"");
        health_.set("provider", false, "no answer: " + why);
        providerDown_ = true;
    }
    pool_->listAccounts();  // its outcome updates the pool's reachability
    if (pool_->unreachable().empty()) {
        log().notice("event=provider_reachable");
        health_.set("provider", true, "answers again");
        providerDown_ = false;
    }
}

std::string Daemon::statusText() const {
    return (health_.ready() ? std::string("ready") : health_.notReadySummary()) + "; " +
           std::to_string(intake_->activeSessions()) + " sessions";
}

// SIGHUP: the accounts file, the provider's signature trust anchor and CRL, the users file and
// relay networks, and the card (a new PIN file is
// tried once; a rejected PIN never again). A file with an error keeps the old settings.
void Daemon::reload() {
    auto again = loadConfig(configPath_);
    connector::AccountMap map;
    std::string err = again.ok() ? "" : again.error;
    if (err.empty() && !again.config->provider.accountsFile.empty())
        err = loadAccountsFile(again.config->provider.accountsFile, map);
    if (err.empty())  // a new CRL (or anchor) is read here
        err = signatures_.configure(again.config->provider.signatureCa,
                                    again.config->provider.signatureCrl);
    if (err.empty())
        err = intake_->reload(*again.config);
    if (!err.empty()) {
        log().error("event=reload_failed reason=\"" + err + "\" action=kept_old");
        return;
    }
    accounts_.replaceMap(std::move(map));
    card_->reload(*again.config);
    log().notice("event=reloaded");
}

void Daemon::run(const sigset_t& signals) {
    const auto watchdog = systemd::watchdogInterval();
    auto nextPing = std::chrono::steady_clock::now();
    std::string lastStatus;
    while (true) {
        timespec timeout{1, 0};
        siginfo_t info;
        const int sig = sigtimedwait(&signals, &info, &timeout);
        if (watchdog && std::chrono::steady_clock::now() >= nextPing) {
            systemd::watchdog();
            nextPing = std::chrono::steady_clock::now() + *watchdog;
        }
        if (sig == SIGHUP) {
            systemd::reloading();
            reload();
            // READY=1 ends the reload for systemd, also a failed one (the old settings stay).
            lastStatus = statusText();
            systemd::reloaded(lastStatus);
        } else if (sig == SIGTERM || sig == SIGINT) {
            break;
        } else if (auto now = statusText(); now != lastStatus) {
            systemd::status(now);
            lastStatus = std::move(now);
        }
    }
    systemd::stopping("stopping: finishing sessions in flight");
    log().notice("event=stopping");
    intake_->stop();  // no new mail; the sessions in flight finish (30 s)
    if (addressBook_)
        addressBook_->stop();  // before the pool its look-ups use
    outbound_->stop();
    inbound_->stop();
    housekeeping_->stop();
    card_->stop();
    log().notice("event=stopped");
}

}  // namespace demail::gateway
