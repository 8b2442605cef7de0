#include "demail/gateway/state_files.h"

#include "demail/gateway/durable_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace demail::gateway;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    TempDir() {
        char t[] = "/tmp/demail-state-XXXXXX";
        path = mkdtemp(t);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string path;
};
}  // namespace

TEST(DispatchStateRecord, RoundTripsEveryField) {
    DispatchState s;
    s.phase = DispatchState::Phase::Notify;
    s.attempts = 7;
    s.nextAttempt = TimePoint(std::chrono::milliseconds(1'800'000'123'456));
    s.delayWarned = true;
    s.lastStatus = "4.4.1";
    s.lastError = "provider answered 503\r\nInjected: yes";
    const auto back = decodeDispatchState(encodeDispatchState(s));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->phase, s.phase);
    EXPECT_EQ(back->attempts, 7);
    EXPECT_EQ(back->nextAttempt, s.nextAttempt);
    EXPECT_TRUE(back->delayWarned);
    EXPECT_EQ(back->lastStatus, "4.4.1");
    EXPECT_EQ(back->lastError, "provider answered 503  Injected: yes");
}

TEST(DispatchStateRecord, TornOrForeignRecordsAreRejected) {
    const std::string full = encodeDispatchState(DispatchState{});
    EXPECT_FALSE(decodeDispatchState(full.substr(0, full.size() - 4)));  // no end marker
    EXPECT_FALSE(decodeDispatchState("demail-dispatch 2\nend\n"));
    EXPECT_FALSE(decodeDispatchState("demail-dispatch 1\nattempts=x\nend\n"));
    EXPECT_FALSE(decodeDispatchState(std::string("\0\0\0", 3)));
}

TEST(DispatchStateFiles, SaveLoadRemove) {
    TempDir d;
    DispatchStateFiles files(d.path + "/dispatch");
    EXPECT_EQ(files.load("Q1").attempts, 0) << "unknown id is a fresh message";
    DispatchState s;
    s.attempts = 2;
    ASSERT_EQ(files.save("Q1", s), "");
    EXPECT_EQ(files.load("Q1").attempts, 2);
    for (const auto& e : fs::directory_iterator(d.path + "/dispatch"))
        EXPECT_EQ(e.path().filename(), "Q1") << "a temporary file was left behind";
    ASSERT_EQ(files.remove("Q1"), "");
    EXPECT_EQ(files.load("Q1").attempts, 0);
    EXPECT_EQ(files.remove("Q1"), "") << "removing twice is fine";
    // An unsafe id never escapes the directory.
    ASSERT_EQ(files.save("../evil", s), "");
    EXPECT_FALSE(fs::exists(d.path + "/evil"));
    EXPECT_EQ(files.load("../evil").attempts, 2);
}

// demailctl may run these as root in a directory the service user owns (security review M6).
TEST(DispatchStateFiles, FollowNoSymlinkPlantedInTheDirectory) {
    TempDir d;
    const std::string dir = d.path + "/dispatch";
    DispatchStateFiles files(dir);
    std::ofstream(d.path + "/victim") << "victim\n";
    fs::create_symlink(d.path + "/victim", dir + "/Q1");
    fs::create_symlink(d.path + "/victim", dir + "/Q1.tmp");  // the old, predictable name
    fs::create_symlink(d.path + "/created", dir + "/.Q1.tmp");
    DispatchState planted;
    planted.attempts = 5;
    std::ofstream(d.path + "/state") << encodeDispatchState(planted);
    fs::create_symlink(d.path + "/state", dir + "/Q2");
    EXPECT_EQ(files.load("Q2").attempts, 0) << "a symlinked state file must not be read";
    DispatchState s;
    s.attempts = 2;
    ASSERT_EQ(files.save("Q1", s), "");
    EXPECT_FALSE(fs::is_symlink(dir + "/Q1")) << "the link itself is replaced";
    EXPECT_EQ(files.load("Q1").attempts, 2);
    std::ifstream in(d.path + "/victim");
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "victim");
    EXPECT_FALSE(fs::exists(d.path + "/created"));
}

TEST(DurableFile, RefusesADirectorySymlinkAndNamesTemporariesUnpredictably) {
    TempDir d;
    fs::create_directory(d.path + "/real");
    fs::create_directory_symlink(d.path + "/real", d.path + "/link");
    EXPECT_NE(writeFileDurably(d.path + "/link/f", "x"), "");
    EXPECT_FALSE(fs::exists(d.path + "/real/f"));
    ASSERT_EQ(writeFileDurably(d.path + "/real/f", "x"), "");
    EXPECT_TRUE(isTemporaryName(".f.0123456789abcdef.tmp"));
    EXPECT_FALSE(isTemporaryName("f"));
    EXPECT_FALSE(isTemporaryName("20261201000000AAAAAAAA"));
}

TEST(DispatchStateFiles, RemovesTemporariesOfAnInterruptedWriteOnlyWhenOld) {
    TempDir d;
    const std::string dir = d.path + "/dispatch";
    fs::create_directory(dir);
    std::ofstream(dir + "/.Q1.00000000000000aa.tmp") << "old";
    std::ofstream(dir + "/.Q1.00000000000000bb.tmp") << "in flight";
    fs::last_write_time(dir + "/.Q1.00000000000000aa.tmp",
                        fs::file_time_type::clock::now() - std::chrono::hours(2));
    DispatchStateFiles files(dir);
    EXPECT_FALSE(fs::exists(dir + "/.Q1.00000000000000aa.tmp"));
    EXPECT_TRUE(fs::exists(dir + "/.Q1.00000000000000bb.tmp")) << "another writer may be busy";
}

TEST(FileLedger, RemembersAcrossInstancesAndPrunesOldEntries) {
    TempDir d;
    {
        FileLedger ledger(d.path);
        EXPECT_FALSE(ledger.contains("provider/id 1"));
        ledger.add("provider/id 1");
    }
    FileLedger again(d.path);
    EXPECT_TRUE(again.contains("provider/id 1"));
    for (const auto& e : fs::directory_iterator(d.path))
        fs::last_write_time(e.path(), fs::file_time_type::clock::now() - std::chrono::hours(800));
    FileLedger pruned(d.path);
    EXPECT_FALSE(pruned.contains("provider/id 1"));
}
