#include "demail/smtp/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

namespace demail::smtp {
namespace {

constexpr int kSlowAfter = 3, kBlockAfter = 10, kUserBlockAfter = 30;
constexpr long long kWindowSeconds = 600;

std::string b64(const unsigned char* data, int n) {
    std::string out(static_cast<std::size_t>(4 * ((n + 2) / 3) + 1), '\0');
    const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, n);
    out.resize(static_cast<std::size_t>(len));
    return out;
}

std::vector<unsigned char> unb64(const std::string& s) {
    std::vector<unsigned char> out(s.size());
    const int len = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(s.data()),
                                    static_cast<int>(s.size()));
    if (len < 0)
        return {};
    std::size_t n = static_cast<std::size_t>(len);
    for (std::size_t i = s.size(); i > 0 && s[i - 1] == '='; --i)
        --n;  // EVP_DecodeBlock counts padding bytes
    out.resize(n);
    return out;
}

long long nowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

std::string hashPassword(const std::string& password, int iterations) {
    unsigned char salt[16], hash[32];
    RAND_bytes(salt, sizeof salt);
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt, sizeof salt,
                      iterations, EVP_sha256(), sizeof hash, hash);
    return "$pbkdf2-sha256$" + std::to_string(iterations) + "$" + b64(salt, sizeof salt) + "$" +
           b64(hash, sizeof hash);
}

bool verifyPassword(const std::string& encoded, const std::string& password) {
    std::istringstream in(encoded);
    std::string empty, scheme, iter, salt, hash;
    if (!std::getline(in, empty, '$') || !empty.empty() || !std::getline(in, scheme, '$') ||
        scheme != "pbkdf2-sha256" || !std::getline(in, iter, '$') || !std::getline(in, salt, '$') ||
        !std::getline(in, hash))
        return false;
    int iterations = 0;
    try {
        iterations = std::stoi(iter);
    } catch (const std::exception&) {
        return false;
    }
    const auto s = unb64(salt), want = unb64(hash);
    if (iterations < 1000 || s.empty() || want.size() != 32)
        return false;
    unsigned char got[32];
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), s.data(),
                      static_cast<int>(s.size()), iterations, EVP_sha256(), sizeof got, got);
    return CRYPTO_memcmp(got, want.data(), sizeof got) == 0;
}

std::string UsersFile::load(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        return "cannot read users file " + path;
    std::map<std::string, std::string> users;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (line.empty() || line[0] == '#')
            continue;
        const auto colon = line.find(':');
        if (colon == std::string::npos || colon == 0 ||
            line.compare(colon + 1, 15, "$pbkdf2-sha256$") != 0)
            return path + " line " + std::to_string(n) + ": expected user:$pbkdf2-sha256$...";
        users[line.substr(0, colon)] = line.substr(colon + 1);
    }
    auto next = std::make_shared<const Table>(std::move(users));
    std::lock_guard lock(mutex_);
    users_ = std::move(next);
    return {};
}

std::shared_ptr<const UsersFile::Table> UsersFile::table() const {
    std::lock_guard lock(mutex_);
    return users_;
}

bool UsersFile::empty() const {
    return table()->empty();
}

bool UsersFile::verify(const std::string& user, const std::string& password) const {
    const auto users = table();
    auto it = users->find(user);
    // Unknown users cost the same work as known ones (no user enumeration by timing).
    static const std::string dummy = hashPassword("dummy", 200000);
    const bool ok = verifyPassword(it == users->end() ? dummy : it->second, password);
    return ok && it != users->end();
}

AuthThrottle::Entry& AuthThrottle::entry(std::map<std::string, Entry>& m, const std::string& key) {
    auto& e = m[key];
    if (nowSeconds() - e.windowStart > kWindowSeconds)
        e = Entry{0, e.inFlight, nowSeconds()};
    return e;
}

void AuthThrottle::prune(std::map<std::string, Entry>& m) {
    // Keeps the maps bounded under a scan from many addresses or with many user names.
    if (m.size() < 4096)
        return;
    const long long now = nowSeconds();
    for (auto it = m.begin(); it != m.end();)
        it = it->second.inFlight == 0 && now - it->second.windowStart > kWindowSeconds
                 ? m.erase(it)
                 : std::next(it);
}

AuthThrottle::Verdict AuthThrottle::begin(const std::string& client) {
    std::lock_guard lock(mutex_);
    prune(clients_);
    auto& e = entry(clients_, client);
    const int counted = e.failures + e.inFlight;  // attempts in flight may all fail
    if (counted >= kBlockAfter)
        return Verdict::Block;
    ++e.inFlight;
    return counted >= kSlowAfter ? Verdict::Slow : Verdict::Allow;
}

AuthThrottle::Verdict AuthThrottle::checkUser(const std::string& user) {
    std::lock_guard lock(mutex_);
    prune(users_);
    const auto& e = entry(users_, user);
    if (e.failures >= kUserBlockAfter)
        return Verdict::Block;
    return e.failures >= kSlowAfter ? Verdict::Slow : Verdict::Allow;
}

void AuthThrottle::end(const std::string& client, const std::string& user, bool ok) {
    std::lock_guard lock(mutex_);
    auto& c = entry(clients_, client);
    if (c.inFlight > 0)
        --c.inFlight;
    if (ok)
        return;
    ++c.failures;
    if (!user.empty())
        ++entry(users_, user).failures;
}

}  // namespace demail::smtp
