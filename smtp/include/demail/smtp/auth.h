// SMTP AUTH users: a file of `user:$pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>` lines
// (PBKDF2-HMAC-SHA256 from OpenSSL, 32-byte hash). Create a line with
// `demailctl passwd USER` or hashPassword() below. Comparison is constant-time.
#pragma once

#include <map>
#include <mutex>
#include <string>

namespace demail::smtp {

class UsersFile {
  public:
    // Empty error on success; every bad line is an error naming its line number (not its content).
    std::string load(const std::string& path);
    bool verify(const std::string& user, const std::string& password) const;
    bool empty() const { return users_.empty(); }

  private:
    std::map<std::string, std::string> users_;  // user -> encoded hash
};

std::string hashPassword(const std::string& password, int iterations = 200000);
bool verifyPassword(const std::string& encoded, const std::string& password);

// Failed AUTH attempts per client address: after `slowAfter` failures in the window each further
// attempt waits; after `blockAfter` the client is turned away until the window passes.
class AuthThrottle {
  public:
    enum class Verdict { Allow, Slow, Block };
    Verdict check(const std::string& client);
    void failure(const std::string& client);
    void success(const std::string& client);

  private:
    struct Entry {
        int failures = 0;
        long long windowStart = 0;
    };
    std::mutex mutex_;
    std::map<std::string, Entry> entries_;
};

}  // namespace demail::smtp
