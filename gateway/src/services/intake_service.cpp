#include "demail/gateway/services/intake_service.h"

#include <Poco/Logger.h>

#include "demail/gateway/spool_layout.h"

namespace demail::gateway {
namespace {

Poco::Logger& log() {
    return Poco::Logger::get("smtpd");
}

SendingLimits limitsOf(const SendingConfig& c) {
    return {c.senderDailyLimit, c.accountDailyLimit};
}

// The policy file of [sending], or the built-in policy when none is named.
std::string loadPolicy(const SendingConfig& c, SendingPolicy& out) {
    if (c.policyFile.empty()) {
        out = SendingPolicy::builtIn();
        return {};
    }
    if (auto e = loadSendingPolicy(c.policyFile, out); !e.empty())
        return "[sending] policy_file: " + e;
    return {};
}

}  // namespace

IntakeService::IntakeService(const Config& config, Spool& spool, AccountDirectory& accounts,
                             std::string hostname,
                             std::function<void(const std::string&)> committed)
    : config_(config),
      hostname_(std::move(hostname)),
      accounts_(accounts),
      authority_(SendingPolicy::builtIn(), limitsOf(config.sending),
                 spool_layout::path(config.queue.dir, spool_layout::kSendingCounts)),
      policy_(config.smtp.relayNetworks, authority_, config.provider.deMailDomains),
      submissionPolicy_({}, authority_, config.provider.deMailDomains),
      sink_(spool, &authority_) {
    const bool refuse = config.smtp.whenPaused == SmtpConfig::WhenPaused::Refuse;
    policy_.setRefuseWhenPaused(refuse);
    submissionPolicy_.setRefuseWhenPaused(refuse);
    sink_.onCommitted = std::move(committed);
    sink_.setNetSizeLimit(config.smtp.maxNetSize);
    accounts_.subscribe([this](const AccountSnapshot& s) {
        authority_.setAccounts(s);
        for (IntakePolicy* p : {&policy_, &submissionPolicy_})
            p->setDeMailDomains(s.deMailDomains);
    });
}

std::string IntakeService::start() {
    const auto& smtpCfg = config_.smtp;
    SendingPolicy sendingPolicy;
    if (auto e = loadPolicy(config_.sending, sendingPolicy); !e.empty())
        return e;
    log().notice("event=sending_policy source=" +
                 (sendingPolicy.source.empty() ? std::string("built-in")
                                               : smtp::auditValue(sendingPolicy.source)) +
                 " rules=" + std::to_string(sendingPolicy.rules.size()));
    authority_.setPolicy(std::move(sendingPolicy), limitsOf(config_.sending));
    if (auto e = authority_.open(); !e.empty())
        return "[queue] dir: " + e;
    if (!smtpCfg.usersFile.empty())
        if (auto e = users_.load(smtpCfg.usersFile); !e.empty())
            return "[smtp] users_file: " + e;
    smtp::ServerConfig s;
    s.host = smtpCfg.listen.host;
    s.port = smtpCfg.listen.port;
    s.hostname = hostname_;
    s.tlsCert = smtpCfg.tlsCert;
    s.tlsKey = smtpCfg.tlsKey;
    s.requireTls = smtpCfg.requireTls;
    s.maxMessageSize = smtpCfg.maxMessageSize;
    s.maxConnections = static_cast<int>(smtpCfg.maxConnections);
    s.maxConnectionsPerClient = static_cast<int>(smtpCfg.maxConnectionsPerClient);
    s.maxConcurrentData = static_cast<int>(smtpCfg.maxConcurrentData);
    s.audit = [](const std::string& line) { log().notice(line); };
    relay_ = std::make_unique<smtp::Server>(s, policy_, sink_,
                                            smtpCfg.usersFile.empty() ? nullptr : &users_);
    if (auto e = relay_->start(); !e.empty())
        return e;
    if (!relay_->notice().empty())
        log().warning("event=smtp_limit " + relay_->notice());
    log().notice("event=listening smtp=" + smtpCfg.listen.toString());
    if (smtpCfg.submissionListen) {
        smtp::ServerConfig sub = s;
        sub.host = smtpCfg.submissionListen->host;
        sub.port = smtpCfg.submissionListen->port;
        sub.requireTls = true;
        submission_ = std::make_unique<smtp::Server>(sub, submissionPolicy_, sink_, &users_);
        if (auto e = submission_->start(); !e.empty())
            return "[smtp] submission_listen: " + e;
        log().notice("event=listening submission=" + smtpCfg.submissionListen->toString());
    }
    return {};
}

void IntakeService::stop() {
    using namespace std::chrono_literals;
    if (relay_)
        relay_->stop(30s);
    if (submission_)
        submission_->stop(5s);
}

std::string IntakeService::reload(const Config& fresh) {
    // The file the listeners were started with, read again (a new path needs a restart).
    if (!config_.smtp.usersFile.empty())
        if (auto e = users_.load(config_.smtp.usersFile); !e.empty())
            return "[smtp] users_file: " + e;
    SendingPolicy sendingPolicy;
    if (auto e = loadPolicy(fresh.sending, sendingPolicy); !e.empty())
        return e;
    authority_.setPolicy(std::move(sendingPolicy), limitsOf(fresh.sending));
    policy_.setRelayNetworks(fresh.smtp.relayNetworks);
    const bool refuse = fresh.smtp.whenPaused == SmtpConfig::WhenPaused::Refuse;
    policy_.setRefuseWhenPaused(refuse);
    submissionPolicy_.setRefuseWhenPaused(refuse);
    if (fresh.smtp.listen.toString() != config_.smtp.listen.toString() ||
        fresh.smtp.tlsCert != config_.smtp.tlsCert ||
        fresh.smtp.usersFile != config_.smtp.usersFile)
        log().warning(
            "event=reload_partial reason=\"[smtp] listen, tls_cert and users_file (the "
            "path) take effect at the next restart\"");
    return {};
}

void IntakeService::setCannotSend(std::function<std::string()> cannotSend) {
    policy_.setCannotSend(cannotSend);
    submissionPolicy_.setCannotSend(std::move(cannotSend));
}

void IntakeService::setAddressBook(std::shared_ptr<AddressBook> book) {
    policy_.setAddressBook(book);
    submissionPolicy_.setAddressBook(std::move(book));
}

std::uint64_t IntakeService::accepted() const {
    return (relay_ ? relay_->counters().accepted.load() : 0) +
           (submission_ ? submission_->counters().accepted.load() : 0);
}

int IntakeService::activeSessions() const {
    return (relay_ ? relay_->activeSessions() : 0) +
           (submission_ ? submission_->activeSessions() : 0);
}

}  // namespace demail::gateway
