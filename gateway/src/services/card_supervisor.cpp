#include "demail/gateway/services/card_supervisor.h"

#include <Poco/Logger.h>
#include <openssl/x509.h>

#include <optional>

#include "demail/smartcard/card_profile.h"
#include "demail/smartcard/tcos.h"

namespace demail::gateway {
namespace {

Poco::Logger& log() {
    return Poco::Logger::get("card");
}

// Whole days until the client certificate expires (negative once it has); nothing without one.
std::optional<int> daysLeft(X509* cert) {
    const auto notAfter = certificateNotAfter(cert);
    if (!notAfter)
        return std::nullopt;
    return static_cast<int>(
        std::chrono::floor<std::chrono::days>(*notAfter - std::chrono::system_clock::now())
            .count());
}

}  // namespace

CardSupervisor::CardSupervisor(const Config& config, CredentialsResult& credentials,
                               HealthState& health, Hooks hooks)
    : reader_(config.card.reader),
      credentials_(credentials),
      health_(health),
      hooks_(std::move(hooks)),
      monitor_(pcsc_, config.card.reader) {}

CardSupervisor::~CardSupervisor() {
    stop();
}

bool CardSupervisor::isPinRejection(smartcard::KeyErrorKind k) {
    using K = smartcard::KeyErrorKind;
    return k == K::WrongPin || k == K::PinLocked || k == K::PinPreviouslyRejected ||
           k == K::PinLastTry || k == K::WrongCard;
}

bool CardSupervisor::ready() const {
    return ready_;
}

// Why the card cannot sign right now, read over PC/SC without spending a PIN try.
std::string CardSupervisor::pinTries() const {
    smartcard::PcscContext ctx;
    auto r = ctx.findReader(reader_, true);
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

void CardSupervisor::notReady(const std::string& why, const std::string& condition) {
    ready_ = false;
    hooks_.pause(why);
    health_.set("card", false, why, condition);
}

// A warning 30 days ahead (log and status), red once it has expired.
void CardSupervisor::checkExpiry() {
    if (auto notAfter = certificateNotAfter(credentials_.credentials->certificate()))
        health_.setCertificateNotAfter(*notAfter);  // /metrics: certificate expiry
    const auto days = daysLeft(credentials_.credentials->certificate());
    if (!days)
        return;
    if (*days < 0) {
        health_.set("certificate", false, "the client certificate has expired");
        log().error("event=certificate_expired");
    } else if (*days < 30) {
        health_.set("certificate", true,
                    "warning: the client certificate expires in " + std::to_string(*days) +
                        " days; order a new card");
        log().warning("event=certificate_expires_soon days=" + std::to_string(*days));
    } else {
        health_.set("certificate", true, "valid for " + std::to_string(*days) + " days");
    }
}

void CardSupervisor::start() {
    if (!credentials_.error.empty()) {
        const bool pin = credentials_.exitCode == 3 || credentials_.exitCode == 4;
        needsOperator_ = credentials_.card && isPinRejection(credentials_.card->lastKind());
        notReady(credentials_.error + (pin ? pinTries() : std::string()),
                 credentials_.card ? cardCondition(credentials_.card->lastKind()) : "");
        log().error("event=card_not_ready reason=\"" + credentials_.error + "\"");
    } else {
        ready_ = true;
        health_.set("card", true, credentials_.card ? "logged in" : "PEM key (lab set-up)");
    }
    checkExpiry();
    if (credentials_.card)
        thread_ = std::thread([this] { run(); });
}

void CardSupervisor::stop() {
    if (stopping_.exchange(true))
        return;
    monitor_.cancel();
    if (thread_.joinable())
        thread_.join();
}

void CardSupervisor::login(const char* event) {
    hooks_.dropConnections();  // the old TLS context lets go of the old key first
    const auto r = credentials_.card->load();
    if (r.ok()) {
        checkExpiry();
        hooks_.dropConnections();  // a new TLS context with the new key
        needsOperator_ = false;
        ready_ = true;
        hooks_.resume();
        health_.set("card", true, "logged in");
        log().notice(std::string("event=") + event);
        hooks_.cardBack();
        return;
    }
    needsOperator_ = isPinRejection(r.kind);
    notReady(r.message + (needsOperator_ ? pinTries() : ""), cardCondition(r.kind));
    log().error("event=card_login_failed reason=\"" + r.message + "\"");
}

void CardSupervisor::reload(const Config& fresh) {
    if (!credentials_.card)
        return;
    std::lock_guard lock(mutex_);
    credentials_.card->source().resetAfterConfigChange();
    credentials_.card->source().setExpectedCertificates(expectedCardCertificates(fresh));
    login("card_ready");
}

// Reader and card events; a card back is logged in again (never while a failure waits for the
// operator) and sending resumes by itself. A card present but not logged in (the token was not
// found yet, say) is tried again every two seconds.
void CardSupervisor::run() {
    auto state = monitor_.current();
    while (!stopping_) {
        auto now = monitor_.waitForChange(state, std::chrono::seconds(2));
        const bool changed = now.presence != state.presence;
        state = now;
        const bool present = state.presence == smartcard::CardPresence::Present;
        const bool wantsLogin = present && !needsOperator_ && (!ready_ || hooks_.sendingPaused());
        if (stopping_ || (!changed && !wantsLogin))
            continue;
        if (!present) {
            const std::string why = std::string(smartcard::toString(state.presence)) +
                                    (state.reader.empty() ? "" : " in reader " + state.reader) +
                                    ": sending is paused, mail is queued";
            notReady(why, kConditionAbsent);
            log().warning("event=card_absent reason=\"" + why + "\"");
            continue;
        }
        std::lock_guard lock(mutex_);
        if (!needsOperator_)
            login("card_ready");
    }
}

}  // namespace demail::gateway
