// A PIN or PUK in memory: wiped (OPENSSL_cleanse) when it goes, never copied implicitly, never
// printed. Keep it only as long as the operation needs it.
#pragma once

#include <string>

namespace demail::smartcard {

class Secret {
  public:
    Secret() = default;
    // Takes the characters and wipes the source string, including a short string's inline buffer,
    // which a move leaves behind.
    explicit Secret(std::string&& value) : value_(std::move(value)) { cleanse(value); }
    Secret(const char* data, std::size_t size) : value_(data, size) {}
    ~Secret() { wipe(); }
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.wipe(); }
    Secret& operator=(Secret&& other) noexcept;

    const std::string& reveal() const { return value_; }
    std::size_t size() const { return value_.size(); }
    bool empty() const { return value_.empty(); }
    void wipe();

    // Overwrites every byte a string owns (its whole capacity), not only its current length.
    static void cleanse(std::string& s);

  private:
    std::string value_;
};

// Reads the first line of a file (a PIN file or systemd credential), without the line end.
// Empty error on success; the error names the path, never the content.
Secret readSecretFile(const std::string& path, std::string& error);

}  // namespace demail::smartcard
