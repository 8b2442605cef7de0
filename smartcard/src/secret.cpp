#include "demail/smartcard/secret.h"

#include <openssl/crypto.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace demail::smartcard {

Secret& Secret::operator=(Secret&& other) noexcept {
    if (this != &other) {
        wipe();
        value_ = std::move(other.value_);
        other.wipe();
    }
    return *this;
}

void Secret::cleanse(std::string& s) {
    OPENSSL_cleanse(s.data(), s.capacity());
}

void Secret::wipe() {
    cleanse(value_);
    value_.clear();
    value_.shrink_to_fit();
}

Secret readSecretFile(const std::string& path, std::string& error) {
    // read(2) into a buffer wiped here: an ifstream would leave the file's bytes in its own heap
    // buffer, which nobody wipes (found by the memory scan in tests/reliability/secrets.sh).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error = "cannot read PIN file " + path + ": " + std::strerror(errno);
        return Secret();
    }
    std::array<char, 256> buffer{};
    ssize_t got = 0;
    do {
        got = ::read(fd, buffer.data(), buffer.size());
    } while (got < 0 && errno == EINTR);
    const int readErrno = errno;
    ::close(fd);
    if (got < 0) {
        error = "cannot read PIN file " + path + ": " + std::strerror(readErrno);
        return Secret();
    }
    std::size_t length = 0;
    while (length < static_cast<std::size_t>(got) && buffer[length] != '\n' &&
           buffer[length] != '\r')
        ++length;
    if (length == buffer.size()) {
        OPENSSL_cleanse(buffer.data(), buffer.size());
        error = "PIN file " + path + " has an overlong first line";
        return Secret();
    }
    while (length > 0 && buffer[length - 1] == ' ')
        --length;
    Secret s(buffer.data(), length);
    OPENSSL_cleanse(buffer.data(), buffer.size());
    if (s.empty())
        error = "PIN file " + path + " is empty";
    return s;
}

}  // namespace demail::smartcard
