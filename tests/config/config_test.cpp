#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "demail/config/file.h"

namespace fs = std::filesystem;
using namespace demail::config;

namespace {

TEST(ConfigValues, HostPortForms) {
    EXPECT_EQ(parseHostPort("[::1]:25")->host, "::1");
    EXPECT_EQ(parseHostPort("[::1]:25")->toString(), "[::1]:25");
    EXPECT_EQ(parseHostPort("mail.internal.example:25")->port, 25);
    EXPECT_FALSE(parseHostPort("::1:25"));
    EXPECT_FALSE(parseHostPort(":25"));
    EXPECT_FALSE(parseHostPort("host:0"));
}

TEST(ConfigValues, DurationsAndSizes) {
    EXPECT_EQ(parseDuration("2d"), std::chrono::seconds(172800));
    EXPECT_EQ(parseDuration("45"), std::chrono::seconds(45));
    EXPECT_FALSE(parseDuration("-5s"));
    EXPECT_FALSE(parseDuration("h"));
    EXPECT_EQ(parseSize("20M"), 20971520u);
    EXPECT_FALSE(parseSize("20X"));
    EXPECT_EQ(formatDuration(std::chrono::seconds(60)), "60s");
    EXPECT_EQ(formatDuration(std::chrono::hours(24)), "24h");
    EXPECT_EQ(formatDuration(std::chrono::seconds(1800)), "30m");
    EXPECT_EQ(formatDuration(std::chrono::hours(24 * 120)), "120d");
    EXPECT_EQ(sizeText(1024), "1K");
    EXPECT_EQ(sizeText(1ULL << 31), "2G");
}

TEST(ConfigValues, CidrsBoolsLists) {
    EXPECT_TRUE(isValidCidr("127.0.0.0/8"));
    EXPECT_TRUE(isValidCidr("fd00::/8"));
    EXPECT_FALSE(isValidCidr("127.0.0.0/33"));
    EXPECT_FALSE(isValidCidr("127.0.0.0"));
    EXPECT_EQ(parseBool("Yes"), true);
    EXPECT_EQ(parseBool("off"), false);
    EXPECT_FALSE(parseBool("perhaps"));
    EXPECT_EQ(splitList(" a,b  c,,"), (std::vector<std::string>{"a", "b", "c"}));
}

// A settings struct as a module would declare it, bound to names the catalogue has ([health]
// listen, [queue] ...), so that the file can hold it.
struct Toy {
    HostPort listen{"127.0.0.1", 8025};
    std::string dir = "/var/spool/x";
    std::chrono::seconds maxAge{3600};
    bool flag = true;
    std::size_t attempts = 5;
    enum class Mode { A, B } mode = Mode::A;
    std::vector<std::string> nets{"127.0.0.0/8"};
};

const Section<Toy>& toyQueue() {
    static const Section<Toy> s{
        "queue",
        {absoluteDir("dir", &Toy::dir), duration("max_age", &Toy::maxAge),
         count("retry_min", &Toy::attempts, 1, 9), boolean("retry_max", &Toy::flag),
         choice<Toy, Toy::Mode>("sent_retention", &Toy::mode,
                                {{"a", Toy::Mode::A}, {"b", Toy::Mode::B}}),
         cidrList("inbound_retention", &Toy::nets)}};
    return s;
}
const Section<Toy>& toyHealth() {
    static const Section<Toy> s{"health", {hostPort("listen", &Toy::listen)}};
    return s;
}

class ConfigFile : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/demail-config-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::optional<File> read(const std::string& text, std::string& error) {
        const auto path = dir_ / "gateway.ini";
        std::ofstream(path) << text;
        return File::read(path.string(), error);
    }
    fs::path dir_;
};

TEST_F(ConfigFile, ApplyStoresWhatTheFileSetsAndKeepsTheRest) {
    std::string error;
    auto f = read(
        "[QUEUE]\nDir = /srv/q   ; a comment\nmax_age = 2d\nretry_min = 3\nsent_retention = b\n"
        "inbound_retention = 10.0.0.0/8 fd00::/8\n[smtp]\nlisten = whatever\n",
        error);
    ASSERT_TRUE(f) << error;
    Toy t;
    EXPECT_EQ(f->apply(toyQueue(), t), "");
    EXPECT_EQ(t.dir, "/srv/q");
    EXPECT_EQ(t.maxAge, std::chrono::hours(48));
    EXPECT_EQ(t.attempts, 3u);
    EXPECT_TRUE(t.flag) << "not in the file: the struct's default";
    EXPECT_EQ(t.mode, Toy::Mode::B);
    EXPECT_EQ(t.nets, (std::vector<std::string>{"10.0.0.0/8", "fd00::/8"}));
    EXPECT_EQ(f->apply(toyHealth(), t), "") << "[smtp] is not read, its value not checked";
    EXPECT_EQ(t.listen.toString(), "127.0.0.1:8025");
}

TEST_F(ConfigFile, ValueErrorsNameSectionKeyAndValue) {
    struct Case {
        std::string text;
        std::string error;
    };
    const Case cases[] = {
        {"[queue]\ndir = relative\n",
         "[queue] dir: expected an absolute directory path, got 'relative'"},
        {"[queue]\nmax_age = 0s\n",
         "[queue] max_age: expected a positive duration such as 90s, 30m, 24h, 2d, got '0s'"},
        {"[queue]\nretry_min = 10\n",
         "[queue] retry_min: expected a number between 1 and 9, got '10'"},
        {"[queue]\nretry_max = maybe\n", "[queue] retry_max: expected true or false, got 'maybe'"},
        {"[queue]\nsent_retention = c\n", "[queue] sent_retention: expected a or b, got 'c'"},
        {"[queue]\ninbound_retention = 1.2.3.4\n",
         "[queue] inbound_retention: expected CIDRs such as 10.0.0.0/8, got '1.2.3.4'"},
        {"[health]\nlisten = [::1]\n", "[health] listen: expected HOST:PORT, got '[::1]'"},
    };
    for (const auto& c : cases) {
        std::string error;
        auto f = read(c.text, error);
        ASSERT_TRUE(f) << error;
        Toy t;
        EXPECT_EQ(f->apply(c.text.find("[queue]") == 0 ? toyQueue() : toyHealth(), t), c.error);
    }
}

TEST_F(ConfigFile, UnknownNamesAreErrorsWhicheverSectionsAreRead) {
    std::string error;
    EXPECT_FALSE(read("[queue]\ndir = /q\n[smtp]\nlisten_port = 25\n", error));
    EXPECT_EQ(error, "[smtp] listen_port: unknown key (see docs/configuration.md)");
    EXPECT_FALSE(read("[smpt]\nlisten = 127.0.0.1:25\n", error));
    EXPECT_EQ(error,
              "[smpt]: unknown section (known: smtp, card, provider, sending, delivery, queue, "
              "archive, health, "
              "certpromote)");
    // A name the catalogue knows but this program's schema does not: unknown to it too.
    auto f = read("[queue]\ndelay_warning = 4h\n", error);
    ASSERT_TRUE(f) << error;
    Toy t;
    EXPECT_EQ(f->apply(toyQueue(), t),
              "[queue] delay_warning: unknown key (see docs/configuration.md)");
}

TEST_F(ConfigFile, MissingFileIsAClearError) {
    std::string error;
    EXPECT_FALSE(File::read((dir_ / "none.ini").string(), error));
    EXPECT_EQ(error, "cannot read configuration file '" + (dir_ / "none.ini").string() + "'");
}

TEST(ConfigSchema, DescribeReadsTheStructDefaultsBack) {
    const auto info = toyQueue().describe();
    ASSERT_EQ(info.name, "queue");
    ASSERT_EQ(info.keys.size(), 6u);
    EXPECT_EQ(info.keys[0].defaultValue, "/var/spool/x");
    EXPECT_EQ(info.keys[1].defaultValue, "1h");
    EXPECT_EQ(info.keys[1].kind, Kind::Duration);
    EXPECT_EQ(info.keys[3].defaultValue, "true");
    EXPECT_EQ(info.keys[4].defaultValue, "a");
    EXPECT_EQ(info.keys[5].defaultValue, "127.0.0.0/8");
}

}  // namespace
