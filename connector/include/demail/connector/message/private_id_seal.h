// The internal sender, sealed into the X-de-mail-private-id the gateway sends, so that a peer
// gateway that fetches a confirmation of this message (both gateways poll the same account,
// docs/operations.md "Redundancy") can route it back to that sender without the sending
// gateway's own record (sent/<queue id>): shared nothing but a key every gateway of the
// organisation holds ([provider] private_id_key_file).
//
// The seal is AES-256-GCM over the sender address with the queue id as associated data, encoded
// in base32 (A-Z, 2-7): recipients, who see the private-id, learn nothing of it, and nobody
// without the key can make one a gateway accepts. It is deterministic (the nonce is derived from
// key, queue id and sender), so every attempt of a message sends the same bytes: the idempotency
// key and the sent-items look-up by private-id keep working.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace demail::connector {

class PrivateIdSeal {
  public:
    // The key: 64 hex digits (`openssl rand -hex 32`), white space around them ignored. nullopt
    // with `error` set for anything else.
    static std::optional<PrivateIdSeal> fromHex(std::string_view text, std::string& error);
    // Reads the key file (at most a few hundred bytes).
    static std::optional<PrivateIdSeal> fromFile(const std::string& path, std::string& error);

    // 16 hex digits derived from the key (not the key, nor a way to it): equal on two gateways
    // exactly when they hold the same key. Logged at start so that operators can compare.
    const std::string& fingerprint() const { return fingerprint_; }

    std::string seal(std::string_view queueId, std::string_view sender) const;
    // The sender, or nullopt when `tag` was not sealed with this key for this queue id.
    std::optional<std::string> open(std::string_view queueId, std::string_view tag) const;

  private:
    std::array<unsigned char, 32> encKey_{};
    std::array<unsigned char, 32> nonceKey_{};
    std::string fingerprint_;
};

}  // namespace demail::connector
