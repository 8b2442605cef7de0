// Housekeeping's look at the evidence archive: a real archive whose commit failed (its month
// directory taken away while a record waited) makes the "archive" health component not ready
// with the archive's error, since every submission is refused until the service restarts.
#include "demail/gateway/services/housekeeping.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

using namespace demail;
using namespace demail::gateway;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/demail-housekeeping-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST(Housekeeping, AnArchiveThatCannotKeepRecordsIsNotReady) {
    TempDir t;
    archive::Archive a((t.path / "archive").string());
    ASSERT_EQ(a.open(), "");
    SentJournal journal((t.path / "sent").string());
    FileLedger ledger((t.path / "ledger").string());
    HealthState health;
    Housekeeping h(journal, ledger, std::chrono::seconds(3600));
    h.watchArchive({&a, std::chrono::hours(24 * 3650), 0, &health, nullptr, nullptr});

    ASSERT_EQ(a.append("submitted", {{"queue_id", "Q1"}}, {"message 1"}), "");
    h.checkArchive();
    ASSERT_TRUE(health.components().at("archive").ready);

    // The next commit finds the month directory gone (what a failing disk looks like to it).
    a.onCommit([&](std::size_t) {
        for (const auto& e : fs::directory_iterator(a.dir()))
            if (e.is_directory())
                fs::remove_all(e.path());
    });
    EXPECT_NE(a.append("submitted", {{"queue_id", "Q2"}}, {"message 2"}), "");
    h.checkArchive();
    const auto c = health.components().at("archive");
    EXPECT_FALSE(c.ready);
    EXPECT_NE(c.reason.find("records cannot be kept: cannot open"), std::string::npos) << c.reason;
    EXPECT_EQ(c.condition, "failed");
}
