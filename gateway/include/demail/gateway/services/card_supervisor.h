// The card supervisor: the one owner of the card's state in the daemon. It follows reader and
// card events (pcscd), logs the card in again when it returns, decides in one place which login
// failures need the operator (isPinRejection: a rejected, blocked or last-try PIN, or another
// card; then only a reload tries again, and the smartcard module's persisted rejection record
// keeps any process from presenting a rejected PIN again), reports the certificate's expiry, and
// tells the rest of the daemon through its hooks: pause or resume sending, drop the provider
// connections that hold the old key, look at the whole queue now.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "demail/gateway/config.h"
#include "demail/gateway/credentials.h"
#include "demail/gateway/health.h"
#include "demail/smartcard/pcsc.h"

namespace demail::gateway {

class CardSupervisor {
  public:
    struct Hooks {
        std::function<void(const std::string& why)> pause;  // sending stops, mail is queued
        std::function<void()> resume;
        std::function<void()> dropConnections;  // TLS contexts let go of the old key
        std::function<void()> cardBack;         // the whole queue is worth a look now
        // Sending paused, also by the dispatcher itself (a submission found the key unusable):
        // with the card present, a reason to log in again. One account's pause (blocked at the
        // provider, AccountPauses) is not a pause of sending here: it never causes a login.
        std::function<bool()> sendingPaused;
    };
    // `credentials` as makeCredentials() left them (the first login already tried).
    CardSupervisor(const Config& config, CredentialsResult& credentials, HealthState& health,
                   Hooks hooks);
    ~CardSupervisor();

    // The first state into health and the hooks, and the event thread (with a card).
    void start();
    void stop();
    // SIGHUP with the new configuration: the expected certificates again, and one login if the
    // PIN or the card may have changed (the rejection record decides whether the PIN is sent).
    void reload(const Config& fresh);

    bool ready() const;
    // A failure only the operator can end: no automatic login until a reload.
    static bool isPinRejection(smartcard::KeyErrorKind kind);
    // The card's signature count and whether a signature failed because it went away.
    CardCredentials* card() const { return credentials_.card; }

  private:
    void run();
    void login(const char* event);  // mutex_ held
    void checkExpiry();
    void notReady(const std::string& why, const std::string& condition = {});
    std::string pinTries() const;

    const std::string reader_;
    CredentialsResult& credentials_;
    HealthState& health_;
    Hooks hooks_;
    std::mutex mutex_;  // one login at a time: the event thread and a reload
    std::atomic<bool> needsOperator_{false};
    std::atomic<bool> ready_{false};
    std::atomic<bool> stopping_{false};
    smartcard::PcscContext pcsc_;
    smartcard::CardMonitor monitor_;
    std::thread thread_;
};

}  // namespace demail::gateway
