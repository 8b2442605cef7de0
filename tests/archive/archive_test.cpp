// The evidence archive on its own: records chain, a removed or altered record or its bytes is
// found by verify(), a torn last line is cut at open, retention removes whole months and says so.
// Concurrent appenders share one commit (group commit) and each gets a durable, chained record.
// Through the daemon and demailctl (kill -9, tampering): tests/gateway/e2e/archive.sh.
#include "demail/archive/archive.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

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
    std::ofstream(index.parent_path() / ".append-9.tmp") << "bytes of an interrupted append";
    Archive again(a.dir());
    ASSERT_EQ(again.open(), "");
    EXPECT_EQ(again.headSeq(), 2u);
    EXPECT_FALSE(fs::exists(index.parent_path() / ".append-9.tmp"));
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

namespace {

// Holds the first commit until the test lets it go, so that the appends started meanwhile are
// all chained and waiting when the next commit begins: deterministic batches, no timing.
struct CommitGate {
    std::mutex m;
    std::condition_variable cv;
    bool entered = false, open = false;
    std::vector<std::size_t> batches;
    std::function<void(std::size_t)> onSecond;
    void hook(std::size_t records) {
        std::unique_lock lock(m);
        batches.push_back(records);
        if (batches.size() == 2 && onSecond)
            onSecond(records);
        if (batches.size() > 1)
            return;
        entered = true;
        cv.notify_all();
        cv.wait(lock, [&] { return open; });
    }
    void waitEntered() {
        std::unique_lock lock(m);
        ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return entered; }));
    }
    void release() {
        std::lock_guard lock(m);
        open = true;
        cv.notify_all();
    }
};

std::size_t countBins(const fs::path& dir) {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir))
        n += e.path().extension() == ".bin" ? 1 : 0;
    return n;
}

// Waits (generously) until `n` records have their bytes under their final names: each of them
// has been chained and waits for a commit.
bool waitForBins(const std::string& dir, std::size_t n) {
    for (int i = 0; i < 6000; ++i) {
        const fs::path month = onlyMonth(dir);
        if (!month.empty() && countBins(month) >= n)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

}  // namespace

TEST(Archive, ConcurrentAppendersShareOneCommitAndEachGetsADurableChainedRecord) {
    TempDir t;
    Archive a((t.path / "a").string());
    ASSERT_EQ(a.open(), "");
    CommitGate gate;
    a.onCommit([&](std::size_t n) { gate.hook(n); });
    constexpr int kAppenders = 8;
    std::vector<std::string> errors(kAppenders);
    std::vector<demail::archive::Record> written(kAppenders);
    std::vector<char> lineOnDiskAtReturn(kAppenders, 0);  // not vector<bool>: one byte each thread
    const auto appendOne = [&](int i) {
        const std::string bytes = "message " + std::to_string(i) + "\r\n";
        errors[i] =
            a.append("submitted", {{"queue_id", "Q" + std::to_string(i)}}, {bytes}, &written[i]);
        // When append returns, its line is in the index (written and fdatasynced by the commit).
        if (errors[i].empty())
            lineOnDiskAtReturn[i] =
                read(fs::path(a.dir()) / written[i].month / "index.jsonl").find(written[i].hash) !=
                std::string::npos;
    };
    std::vector<std::thread> threads;
    threads.emplace_back(appendOne, 0);
    gate.waitEntered();  // record 1's commit is running (held)
    for (int i = 1; i < kAppenders; ++i)
        threads.emplace_back(appendOne, i);
    ASSERT_TRUE(waitForBins(a.dir(), kAppenders));  // the other 7 are chained and waiting
    EXPECT_EQ(a.headSeq(), 0u) << "nothing is durable yet";
    gate.release();
    for (auto& th : threads)
        th.join();

    // Two commits for eight records: the first alone, then one for the seven that waited.
    EXPECT_EQ(a.syncsDone(), 2u);
    EXPECT_EQ(gate.batches, (std::vector<std::size_t>{1, kAppenders - 1}));
    std::vector<bool> seen(kAppenders + 1, false);
    for (int i = 0; i < kAppenders; ++i) {
        ASSERT_EQ(errors[i], "") << i;
        EXPECT_TRUE(lineOnDiskAtReturn[i]) << i;
        ASSERT_GE(written[i].seq, 1u);
        ASSERT_LE(written[i].seq, static_cast<std::uint64_t>(kAppenders));
        EXPECT_FALSE(seen[written[i].seq]) << "seq " << written[i].seq << " twice";
        seen[written[i].seq] = true;
        EXPECT_EQ(read(demail::archive::bytesPath(a.dir(), written[i])),
                  "message " + std::to_string(i) + "\r\n");
    }
    EXPECT_EQ(written[0].seq, 1u);
    // The chain is strictly ordered: the index holds 1..8 in order, each naming its predecessor,
    // and each appender's record is the one of its number.
    std::string error;
    const auto all = demail::archive::readAll(a.dir(), error);
    ASSERT_EQ(all.size(), static_cast<std::size_t>(kAppenders));
    for (std::size_t k = 0; k < all.size(); ++k) {
        EXPECT_EQ(all[k].seq, k + 1);
        if (k > 0) {
            EXPECT_EQ(all[k].prev, all[k - 1].hash);
        }
    }
    for (int i = 0; i < kAppenders; ++i)
        EXPECT_EQ(all[written[i].seq - 1].hash, written[i].hash) << i;
    const auto v = demail::archive::verify(a.dir());
    EXPECT_TRUE(v.ok) << (v.problems.empty() ? "" : v.problems[0]);
    EXPECT_EQ(a.headSeq(), static_cast<std::uint64_t>(kAppenders));
    EXPECT_EQ(a.headHash(), all.back().hash);
}

TEST(Archive, AFailedCommitFailsEveryRecordItCoveredAndTheArchiveUntilReopened) {
    TempDir t;
    Archive a((t.path / "a").string());
    ASSERT_EQ(a.open(), "");
    CommitGate gate;
    // The second commit finds its month directory gone: the index cannot be written.
    gate.onSecond = [&](std::size_t) { fs::remove_all(onlyMonth(a.dir())); };
    a.onCommit([&](std::size_t n) { gate.hook(n); });
    constexpr int kAppenders = 4;
    std::vector<std::string> errors(kAppenders);
    const auto appendOne = [&](int i) {
        errors[i] = a.append("submitted", {{"queue_id", "Q" + std::to_string(i)}},
                             {"message " + std::to_string(i)});
    };
    std::vector<std::thread> threads;
    threads.emplace_back(appendOne, 0);
    gate.waitEntered();
    for (int i = 1; i < kAppenders; ++i)
        threads.emplace_back(appendOne, i);
    ASSERT_TRUE(waitForBins(a.dir(), kAppenders));
    gate.release();
    for (auto& th : threads)
        th.join();
    EXPECT_EQ(errors[0], "") << "its commit succeeded";
    for (int i = 1; i < kAppenders; ++i)
        EXPECT_NE(errors[i].find("cannot open"), std::string::npos) << i << ": " << errors[i];
    EXPECT_EQ(a.headSeq(), 1u);
    // Later appends are refused (they would chain to records that are not there) ...
    const std::string later = a.append("accepted", {{"queue_id", "Q0"}}, {});
    EXPECT_NE(later.find("takes no more records"), std::string::npos) << later;
    EXPECT_NE(a.failure().find("cannot open"), std::string::npos) << a.failure();
    // ... until the archive is opened again.
    ASSERT_EQ(a.open(), "");
    EXPECT_EQ(a.failure(), "");
    ASSERT_EQ(a.append("accepted", {{"queue_id", "Q0"}}, {}), "");
    const auto v = demail::archive::verify(a.dir());
    EXPECT_TRUE(v.ok) << (v.problems.empty() ? "" : v.problems[0]);
    EXPECT_EQ(v.records, 1u);
}
