// The evidence archive on its own: records chain, a removed or altered record or its bytes is
// found by verify(), a torn last line is cut at open, retention removes whole months and says so.
// Through the daemon and demailctl (kill -9, tampering): tests/gateway/e2e/archive.sh.
#include "demail/archive/archive.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using demail::archive::Archive;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/demail-archive-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write(const fs::path& p, const std::string& text) {
    fs::permissions(p, fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

fs::path onlyMonth(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_directory())
            return e.path();
    return {};
}

bool mentions(const demail::archive::Verification& v, const std::string& part) {
    for (const auto& p : v.problems)
        if (p.find(part) != std::string::npos)
            return true;
    return false;
}

void fill(Archive& a, int n) {
    for (int i = 1; i <= n; ++i) {
        const std::string bytes = "message " + std::to_string(i) + "\r\n";
        std::istringstream rest("and its body\r\n");
        ASSERT_EQ(
            a.append("submitted", {{"queue_id", "Q" + std::to_string(i)}}, {bytes, &rest, 14}), "");
    }
}

}  // namespace

TEST(Archive, RecordsChainAndVerify) {
    TempDir t;
    Archive a((t.path / "a").string());
    ASSERT_EQ(a.open(), "");
    fill(a, 3);
    ASSERT_EQ(a.append("accepted", {{"queue_id", "Q3"}, {"provider_id", "<dm-1@p>"}}, {}), "");
    const auto v = demail::archive::verify(a.dir());
    EXPECT_TRUE(v.ok) << (v.problems.empty() ? "" : v.problems[0]);
    EXPECT_EQ(v.records, 4u);
    EXPECT_EQ(v.headHash, a.headHash());
    std::string error;
    const auto all = demail::archive::readAll(a.dir(), error);
    ASSERT_EQ(all.size(), 4u);
    EXPECT_EQ(read(demail::archive::bytesPath(a.dir(), all[1])), "message 2\r\nand its body\r\n");
    EXPECT_EQ(all[3].fields.at("provider_id"), "<dm-1@p>");
    EXPECT_EQ(all[3].size, 0u);
    // A reopened archive continues the chain.
    Archive again(a.dir());
    ASSERT_EQ(again.open(), "");
    EXPECT_EQ(again.headSeq(), 4u);
    fill(again, 1);
    EXPECT_TRUE(demail::archive::verify(a.dir()).ok);
}

TEST(Archive, AnAlteredOrRemovedRecordIsFound) {
    TempDir t;
    Archive a((t.path / "a").string());
    ASSERT_EQ(a.open(), "");
    fill(a, 4);
    const fs::path month = onlyMonth(a.dir());
    const fs::path index = month / "index.jsonl";
    const std::string original = read(index);

    // Altered bytes of record 2.
    const std::string bytes2 = read(month / "2.bin");
    write(month / "2.bin", "message 2\r\nand its bodY\r\n");
    EXPECT_TRUE(mentions(demail::archive::verify(a.dir()), "record 2 (")) << "bytes";
    write(month / "2.bin", bytes2);
    EXPECT_TRUE(demail::archive::verify(a.dir()).ok);

    // An altered field of record 3 (its line's hash no longer matches).
    std::string text = original;
    text.replace(text.find("\"Q3\""), 4, "\"Q9\"");
    write(index, text);
    EXPECT_TRUE(mentions(demail::archive::verify(a.dir()), "record 3 (")) << "field";

    // Record 2 removed from the index: record 3 follows 1 and does not chain.
    text = original;
    const auto from = text.find("{\"seq\":2,");
    text.erase(from, text.find('\n', from) + 1 - from);
    write(index, text);
    const auto v = demail::archive::verify(a.dir());
    EXPECT_TRUE(mentions(v, "records missing")) << (v.problems.empty() ? "" : v.problems[0]);

    // Record 1 removed: the chain begins at 2 without a pruning record to explain it.
    text = original;
    text.erase(0, text.find('\n') + 1);
    write(index, text);
    EXPECT_TRUE(mentions(demail::archive::verify(a.dir()), "no record says"));

    // A record's bytes deleted.
    write(index, original);
    fs::remove(month / "4.bin");
    EXPECT_TRUE(mentions(demail::archive::verify(a.dir()), "bytes are missing"));
}

TEST(Archive, ATornLastLineIsCutAtOpen) {
    TempDir t;
    Archive a((t.path / "a").string());
    ASSERT_EQ(a.open(), "");
    fill(a, 2);
    const fs::path index = onlyMonth(a.dir()) / "index.jsonl";
    std::ofstream(index, std::ios::app) << "{\"seq\":3,\"time\":\"20";  // a crash mid-append
    Archive again(a.dir());
    ASSERT_EQ(again.open(), "");
    EXPECT_EQ(again.headSeq(), 2u);
    fill(again, 1);
    const auto v = demail::archive::verify(a.dir());
    EXPECT_TRUE(v.ok) << (v.problems.empty() ? "" : v.problems[0]);
    EXPECT_EQ(v.lastSeq, 3u);
}

TEST(Archive, RetentionRemovesWholeMonthsAndRecordsIt) {
    TempDir t;
    const std::string dir = (t.path / "a").string();
    {
        Archive a(dir);
        ASSERT_EQ(a.open(), "");
        fill(a, 3);
    }
    fs::rename(onlyMonth(dir), fs::path(dir) / "2020-01");  // three records of January 2020
    Archive a(dir);
    ASSERT_EQ(a.open(), "");
    fill(a, 1);  // record 4, this month
    ASSERT_EQ(a.prune(std::chrono::hours(24 * 365)), "");
    EXPECT_FALSE(fs::exists(fs::path(dir) / "2020-01"));
    const auto v = demail::archive::verify(dir);
    EXPECT_TRUE(v.ok) << (v.problems.empty() ? "" : v.problems[0]);
    EXPECT_EQ(v.firstSeq, 4u);
    std::string error;
    const auto all = demail::archive::readAll(dir, error);
    ASSERT_EQ(all.back().kind, "pruned");
    EXPECT_EQ(all.back().fields.at("month"), "2020-01");
    EXPECT_EQ(all.back().fields.at("records"), "3");
}
