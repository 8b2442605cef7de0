// A PIN or PUK in memory: wiped (OPENSSL_cleanse) when it goes, never copied implicitly, never
// printed. Keep it only as long as the operation needs it.
#pragma once

#include <string>

namespace demail::smartcard {

class Secret {
  public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}
    ~Secret() { wipe(); }
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.wipe(); }
    Secret& operator=(Secret&& other) noexcept;

    const std::string& reveal() const { return value_; }
    std::size_t size() const { return value_.size(); }
    bool empty() const { return value_.empty(); }
    void wipe();

  private:
    std::string value_;
};

// Reads the first line of a file (a PIN file or systemd credential), without the line end.
// Empty error on success; the error names the path, never the content.
Secret readSecretFile(const std::string& path, std::string& error);

}  // namespace demail::smartcard
