// SMTP AUTH users: a file of `user:$pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>` lines
// (PBKDF2-HMAC-SHA256 from OpenSSL, 32-byte hash). Create a line with
// `demailctl passwd USER` or hashPassword() below. Comparison is constant-time.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace demail::smtp {

// Loaded again on SIGHUP while sessions verify: load() swaps in a complete new table, so a
// session sees the old one or the new one, never half of either, and a revoked user is gone for
// every AUTH after the reload.
class UsersFile {
  public:
    // Empty error on success (the table is replaced); on error the old table stays. Every bad
    // line is an error naming its line number (not its content).
    std::string load(const std::string& path);
    bool verify(const std::string& user, const std::string& password) const;
    bool empty() const;

  private:
    using Table = std::map<std::string, std::string>;  // user -> encoded hash
    std::shared_ptr<const Table> table() const;
    mutable std::mutex mutex_;
    std::shared_ptr<const Table> users_ = std::make_shared<const Table>();
};

std::string hashPassword(const std::string& password, int iterations = 200000);
bool verifyPassword(const std::string& encoded, const std::string& password);

// Failed AUTH attempts, Postfix-anvil style, counted per client address and per user name within
// a 10-minute window:
// - an attempt is reserved when it begins (begin()), so parallel sessions from one address cannot
//   all pass the check before the first failure is counted;
// - a success ends its own reservation and resets nothing (a known credential does not buy fresh
//   guesses against other users);
// - per address: after 3 failures each attempt waits 2 s, after 10 it is refused (454, close);
// - per user name, from any address: after 3 failures each attempt waits, after 30 it is refused
//   for the rest of the window (a distributed guess at one user's password; the price is that
//   such an attack also keeps the real user out until the window passes, which the log shows).
class AuthThrottle {
  public:
    enum class Verdict { Allow, Slow, Block };
    // Before reading the credentials: reserves an attempt for `client` unless it is blocked.
    Verdict begin(const std::string& client);
    // Once the user name is known.
    Verdict checkUser(const std::string& user);
    // The end of an attempt begun with begin() (also when it was cancelled: pass ok = true).
    void end(const std::string& client, const std::string& user, bool ok);

  private:
    struct Entry {
        int failures = 0;
        int inFlight = 0;
        long long windowStart = 0;
    };
    Entry& entry(std::map<std::string, Entry>& m, const std::string& key);
    void prune(std::map<std::string, Entry>& m);
    std::mutex mutex_;
    std::map<std::string, Entry> clients_, users_;
};

}  // namespace demail::smtp
