// Secret and readSecretFile: the bytes of a PIN do not survive where our code put them.
#include "demail/smartcard/secret.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace demail::smartcard {
namespace {

std::string writeFile(const std::string& content) {
    std::string path = "/tmp/demail-secret-XXXXXX";
    const int fd = ::mkstemp(path.data());
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path, std::ios::binary) << content;
    return path;
}

TEST(Secret, MovingAShortStringInWipesItsInlineBuffer) {
    std::string source = "73918462";  // short: lives in the string's inline buffer
    const char* inlineBuffer = source.data();
    Secret secret(std::move(source));
    EXPECT_EQ(secret.reveal(), "73918462");
    // A plain std::string move leaves the characters behind in the source's inline buffer.
    EXPECT_EQ(std::string(inlineBuffer, 8).find("739"), std::string::npos);
}

TEST(Secret, MoveConstructionWipesTheMovedFromSecret) {
    Secret a("73918462", 8);
    const char* inlineBuffer = a.reveal().data();
    Secret b(std::move(a));
    EXPECT_EQ(b.reveal(), "73918462");
    EXPECT_EQ(std::string(inlineBuffer, 8).find("739"), std::string::npos);
}

TEST(ReadSecretFile, ReadsTheFirstLineWithoutLineEndOrTrailingBlanks) {
    const std::string path = writeFile("123456  \r\nsecond line\n");
    std::string error;
    Secret pin = readSecretFile(path, error);
    EXPECT_TRUE(error.empty()) << error;
    EXPECT_EQ(pin.reveal(), "123456");
    ::unlink(path.c_str());
}

TEST(ReadSecretFile, RefusesEmptyMissingAndOverlongFilesNamingThePathNotTheContent) {
    std::string error;
    const std::string empty = writeFile("\n");
    EXPECT_TRUE(readSecretFile(empty, error).empty());
    EXPECT_NE(error.find("is empty"), std::string::npos);

    error.clear();
    EXPECT_TRUE(readSecretFile("/nonexistent/card.pin", error).empty());
    EXPECT_NE(error.find("/nonexistent/card.pin"), std::string::npos);

    error.clear();
    const std::string overlong = writeFile(std::string(300, '7'));
    EXPECT_TRUE(readSecretFile(overlong, error).empty());
    EXPECT_NE(error.find("overlong"), std::string::npos);
    EXPECT_EQ(error.find("777"), std::string::npos);
    ::unlink(empty.c_str());
    ::unlink(overlong.c_str());
}

}  // namespace
}  // namespace demail::smartcard
