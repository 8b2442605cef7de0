#include "demail/connector/message/private_id_seal.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>
#include <fstream>
#include <vector>

namespace demail::connector {
namespace {

constexpr std::size_t kNonce = 12, kTag = 16;
constexpr std::size_t kMaxSender = 320;  // an address: 64 + 1 + 255

using Bytes = std::vector<unsigned char>;

std::array<unsigned char, 32> hmac(const unsigned char* key, std::size_t keyLen,
                                   std::string_view data) {
    std::array<unsigned char, 32> out{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key, static_cast<int>(keyLen),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
    return out;
}

const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

std::string base32(const Bytes& in) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (unsigned char c : in) {
        buffer = (buffer << 8) | c;
        bits += 8;
        while (bits >= 5) {
            out += kAlphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out += kAlphabet[(buffer << (5 - bits)) & 31];
    return out;
}

std::optional<Bytes> unbase32(std::string_view in) {
    Bytes out;
    unsigned buffer = 0;
    int bits = 0;
    for (char c : in) {
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= '2' && c <= '7' ? c - '2' + 26 : -1;
        if (v < 0)
            return std::nullopt;
        buffer = (buffer << 5) | static_cast<unsigned>(v);
        bits += 5;
        if (bits >= 8) {
            out.push_back(static_cast<unsigned char>((buffer >> (bits - 8)) & 0xff));
            bits -= 8;
        }
    }
    return out;
}

struct CipherCtx {
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

}  // namespace

std::optional<PrivateIdSeal> PrivateIdSeal::fromHex(std::string_view text, std::string& error) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
        text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.remove_suffix(1);
    std::array<unsigned char, 32> key{};
    const auto hex = [](char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
    };
    bool ok = text.size() == 64;
    for (std::size_t i = 0; ok && i < 32; ++i) {
        const int hi = hex(text[2 * i]), lo = hex(text[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        key[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    if (!ok) {
        error = "expected 64 hex digits (openssl rand -hex 32)";
        return std::nullopt;
    }
    // Two keys from one: one encrypts, one derives the nonces.
    PrivateIdSeal s;
    s.encKey_ = hmac(key.data(), key.size(), "demail private-id seal: encryption");
    s.nonceKey_ = hmac(key.data(), key.size(), "demail private-id seal: nonce");
    const auto print = hmac(key.data(), key.size(), "demail private-id seal: fingerprint");
    static const char* digits = "0123456789abcdef";
    for (std::size_t i = 0; i < 8; ++i) {
        s.fingerprint_ += digits[print[i] >> 4];
        s.fingerprint_ += digits[print[i] & 15];
    }
    return s;
}

std::optional<PrivateIdSeal> PrivateIdSeal::fromFile(const std::string& path, std::string& error) {
    std::ifstream in(path);
    if (!in) {
        error = "cannot read " + path;
        return std::nullopt;
    }
    std::string text(256, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    auto s = fromHex(text, error);
    if (!s)
        error = path + ": " + error;
    return s;
}

std::string PrivateIdSeal::seal(std::string_view queueId, std::string_view sender) const {
    std::string nonceInput(queueId);
    nonceInput += '\0';
    nonceInput += sender;
    const auto derived = hmac(nonceKey_.data(), nonceKey_.size(), nonceInput);
    Bytes out(derived.begin(), derived.begin() + kNonce);
    out.resize(kNonce + sender.size() + kTag);
    CipherCtx c;
    int len = 0;
    EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, encKey_.data(), out.data());
    EVP_EncryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(queueId.data()),
                      static_cast<int>(queueId.size()));
    EVP_EncryptUpdate(c.ctx, out.data() + kNonce, &len,
                      reinterpret_cast<const unsigned char*>(sender.data()),
                      static_cast<int>(sender.size()));
    EVP_EncryptFinal_ex(c.ctx, out.data() + kNonce + len, &len);
    EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTag),
                        out.data() + kNonce + sender.size());
    return base32(out);
}

std::optional<std::string> PrivateIdSeal::open(std::string_view queueId,
                                               std::string_view tag) const {
    if (tag.size() > (kNonce + kMaxSender + kTag) * 8 / 5 + 1)
        return std::nullopt;
    auto raw = unbase32(tag);
    if (!raw || raw->size() <= kNonce + kTag)
        return std::nullopt;
    const std::size_t n = raw->size() - kNonce - kTag;
    std::string sender(n, '\0');
    CipherCtx c;
    int len = 0;
    EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, encKey_.data(), raw->data());
    EVP_DecryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(queueId.data()),
                      static_cast<int>(queueId.size()));
    EVP_DecryptUpdate(c.ctx, reinterpret_cast<unsigned char*>(sender.data()), &len,
                      raw->data() + kNonce, static_cast<int>(n));
    EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTag),
                        raw->data() + kNonce + n);
    if (EVP_DecryptFinal_ex(c.ctx, reinterpret_cast<unsigned char*>(sender.data()) + len, &len) !=
        1)
        return std::nullopt;
    return sender;
}

}  // namespace demail::connector
