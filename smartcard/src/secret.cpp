#include "demail/smartcard/secret.h"

#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace demail::smartcard {

Secret& Secret::operator=(Secret&& other) noexcept {
    if (this != &other) {
        wipe();
        value_ = std::move(other.value_);
        other.wipe();
    }
    return *this;
}

void Secret::wipe() {
    if (!value_.empty())
        OPENSSL_cleanse(value_.data(), value_.size());
    value_.clear();
    value_.shrink_to_fit();
}

Secret readSecretFile(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot read PIN file " + path + ": " + std::strerror(errno);
        return Secret();
    }
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' '))
        line.pop_back();
    Secret s(std::move(line));  // the buffer moves into the Secret, which wipes it
    if (s.empty())
        error = "PIN file " + path + " is empty";
    return s;
}

}  // namespace demail::smartcard
