// The net size (TR PVD_FU §4.1): decoded text and attachments, not the encoded message. Checked
// against the real encoders: base64 from OpenSSL, quoted-printable from Python's email package
// is exercised end to end in tests/gateway/e2e/message_size.sh.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>

#include "demail/connector/message/net_size.h"

using demail::connector::NetSizeCounter;

namespace {

// base64 in lines of 76 characters, as MIME writes it.
std::string base64Lines(std::size_t bytes) {
    std::string raw(bytes, '\0');
    std::mt19937 rng(7);
    for (auto& c : raw)
        c = static_cast<char>(rng());
    std::string out(4 * ((bytes + 2) / 3) + 1, '\0');
    out.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                                                        reinterpret_cast<unsigned char*>(&raw[0]),
                                                        static_cast<int>(bytes))));
    std::string lines;
    for (std::size_t i = 0; i < out.size(); i += 76)
        lines += out.substr(i, 76) + "\r\n";
    return lines;
}

std::uint64_t count(const std::string& message, std::size_t chunk = 4096) {
    NetSizeCounter c;
    for (std::size_t i = 0; i < message.size(); i += chunk)
        c.feed(message.data() + i, std::min(chunk, message.size() - i));
    return c.netBytes();
}

}  // namespace

TEST(NetSize, ABase64AttachmentCountsDecoded) {
    for (std::size_t bytes : {0u, 1u, 2u, 3u, 1000u, 1000001u}) {
        const std::string m =
            "From: a@b.de\r\nContent-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n"
            "This is a multi-part message.\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\n"
            "Hallo\r\n--XyZ\r\nContent-Type: application/pdf\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" +
            base64Lines(bytes) + "--XyZ--\r\nepilogue\r\n";
        // "Hallo" + CRLF, and the attachment's bytes.
        EXPECT_EQ(count(m), 7 + bytes) << bytes;
        EXPECT_EQ(count(m, 1), 7 + bytes) << bytes;
    }
}

TEST(NetSize, NestedMultipartsAndQuotedPrintable) {
    const std::string m =
        "Content-Type: multipart/mixed;\r\n boundary=outer\r\n\r\n--outer\r\n"
        "Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        "\r\nGr=C3=BC=C3=9Fe, ein langer =\r\nText\r\n--inner\r\nContent-Type: text/html\r\n\r\n"
        "<p>x</p>\r\n--inner--\r\n--outer\r\nContent-Type: text/plain\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nSGFsbG8=\r\n--outer--\r\n";
    // "Grüße, ein langer Text" = 24 bytes + CRLF; "<p>x</p>" + CRLF; "Hallo" (5).
    EXPECT_EQ(count(m), 26u + 10u + 5u);
}

TEST(NetSize, ASinglePartMessageIsItsBody) {
    EXPECT_EQ(count("Subject: x\r\n\r\nab\r\ncd\r\n"), 8u);
    EXPECT_EQ(count("Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64Lines(30000)),
              30000u);
}
