#include "demail/gateway/spool.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "demail/gateway/ctl_queue.h"

using namespace demail::gateway;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    TempDir() {
        char t[] = "/tmp/demail-spool-XXXXXX";
        path = mkdtemp(t);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string path;
};

Envelope env() {
    Envelope e;
    e.sender = "a@firma.de";
    e.recipients = {{"b@behoerde.de-mail.de", "SUCCESS,FAILURE", "rfc822;b@behoerde.de-mail.de"}};
    e.ret = "HDRS";
    e.envid = "ENV1";
    e.clientAddress = "127.0.0.1";
    e.arrival = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'800'000'000'123));
    return e;
}

std::string read(std::istream& in) {
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
}  // namespace

TEST(Spool, CommitIsDurableAndRoundTrips) {
    TempDir d;
    Spool s(d.path);
    ASSERT_EQ(s.open(), "");
    auto w = s.begin(env());
    const std::string body = "Subject: x\r\n\r\nline\r\n";
    ASSERT_TRUE(w->write(body.data(), body.size()));
    const auto id = w->commit();
    ASSERT_TRUE(id);
    EXPECT_TRUE(Spool::validId(*id));
    EXPECT_EQ(s.list(), std::vector<std::string>{*id});
    const auto e = s.envelope(*id);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->sender, "a@firma.de");
    EXPECT_EQ(e->recipients[0].notify, "SUCCESS,FAILURE");
    EXPECT_EQ(e->recipients[0].orcpt, "rfc822;b@behoerde.de-mail.de");
    EXPECT_EQ(e->ret, "HDRS");
    EXPECT_EQ(e->size, body.size());
    EXPECT_EQ(e->arrival, env().arrival);
    EXPECT_EQ(read(*s.body(*id)), body);
    EXPECT_TRUE(fs::is_empty(d.path + "/tmp"));
}

TEST(Spool, AbandonedWriteLeavesNothingAndTooLargeIsRefused) {
    TempDir d;
    Spool s(d.path, 10);
    ASSERT_EQ(s.open(), "");
    {
        auto w = s.begin(env());
        w->write("12345", 5);
    }  // dropped without commit: the client went away during DATA
    EXPECT_TRUE(s.list().empty());
    EXPECT_TRUE(fs::is_empty(d.path + "/tmp"));
    auto w = s.begin(env());
    EXPECT_FALSE(w->write("12345678901", 11));
    EXPECT_EQ(w->error(), SpoolError::TooLarge);
    EXPECT_FALSE(w->commit());
}

TEST(Spool, RecoveryRemovesTempFilesAndQuarantinesTornOnes) {
    TempDir d;
    Spool s(d.path);
    ASSERT_EQ(s.open(), "");
    auto w = s.begin(env());
    w->write("Subject: y\r\n\r\n", 14);
    const auto good = w->commit();
    ASSERT_TRUE(good);
    std::ofstream(d.path + "/tmp/20261122000000AAAAAAAA") << "half";
    // A torn file: envelope but no end marker.
    std::ofstream(d.path + "/queue/20261122000000BBBBBBBB") << "DEMAIL-SPOOL 1\nsender=x\n";
    std::ofstream(d.path + "/queue/garbage name") << "?";
    const auto r = s.recover();
    EXPECT_EQ(r.kept, 1);
    EXPECT_EQ(r.tempRemoved, 1);
    EXPECT_EQ(r.movedToCorrupt, 2);
    EXPECT_EQ(s.list(), std::vector<std::string>{*good});
    EXPECT_TRUE(fs::exists(d.path + "/corrupt/20261122000000BBBBBBBB"));
}

TEST(Spool, TruncatedBodyIsDetected) {
    TempDir d;
    Spool s(d.path);
    ASSERT_EQ(s.open(), "");
    auto w = s.begin(env());
    w->write("0123456789", 10);
    const auto id = w->commit();
    ASSERT_TRUE(id);
    const std::string path = d.path + "/queue/" + *id;
    fs::resize_file(path, fs::file_size(path) - 40);
    EXPECT_FALSE(s.envelope(*id));
    EXPECT_EQ(s.recover().movedToCorrupt, 1);
}

TEST(QueueCommand, ListShowDeleteAndErrors) {
    TempDir d;
    Spool s(d.path);
    ASSERT_EQ(s.open(), "");
    auto w = s.begin(env());
    w->write("Subject: Antrag\r\n\r\nbody\r\n", 25);
    const auto id = *w->commit();
    std::ostringstream out, err;
    EXPECT_EQ(runQueueCommand(d.path, {"list"}, out, err), 0);
    EXPECT_NE(out.str().find(id), std::string::npos);
    EXPECT_NE(out.str().find("b@behoerde.de-mail.de"), std::string::npos);
    EXPECT_NE(out.str().find("-- 1 message"), std::string::npos);
    out.str("");
    EXPECT_EQ(runQueueCommand(d.path, {"show", id}, out, err), 0);
    EXPECT_NE(out.str().find("Subject: Antrag"), std::string::npos);
    EXPECT_EQ(out.str().find("body"), std::string::npos) << "show prints headers, not the body";
    EXPECT_EQ(runQueueCommand(d.path, {"retry", id}, out, err), 0);
    EXPECT_EQ(runQueueCommand(d.path, {"show", "20260101000000ZZZZZZZZ"}, out, err), 1);
    EXPECT_EQ(runQueueCommand(d.path, {"show"}, out, err), 2);
    EXPECT_EQ(runQueueCommand(d.path, {"delete", id}, out, err), 0);
    EXPECT_TRUE(s.list().empty());

    // Several at once: each known one goes, an unknown one is named and fails the command.
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto m = s.begin(env());
        m->write("Subject: n\r\n\r\nb\r\n", 17);
        ids.push_back(*m->commit());
    }
    err.str("");
    EXPECT_EQ(
        runQueueCommand(d.path, {"delete", ids[0], "20260101000000ZZZZZZZZ", ids[2]}, out, err), 1);
    EXPECT_NE(err.str().find("no message 20260101000000ZZZZZZZZ"), std::string::npos);
    EXPECT_EQ(s.list(), std::vector<std::string>{ids[1]});
    EXPECT_EQ(runQueueCommand(d.path, {"delete"}, out, err), 2);
}

// Group commit: callers from many threads share directory fsyncs; each returns only after a sync
// that began after its call, and all of them see the outcome of theirs.
// Fields from SMTP clients and the service reach the operator's terminal (security review L4).
TEST(QueueCommand, PrintableEscapesWhatATerminalWouldActOn) {
    EXPECT_EQ(printable("plain text, TAB\there"), "plain text, TAB\there");
    EXPECT_EQ(printable("\x1b[31mred\x1b]0;t\x07"), "\\x1B[31mred\\x1B]0;t\\x07");
    EXPECT_EQ(printable(std::string("a\0b\r\nc\x7f", 7)), "a\\x00b\\x0D\\x0Ac\\x7F");
    EXPECT_EQ(printable("back\\slash"), "back\\\\slash") << "unambiguous";
    EXPECT_EQ(printable("Gr\xc3\xbc\xc3\x9f"
                        "e \xe2\x82\xac \xf0\x9f\x93\xa7"),
              "Gr\xc3\xbc\xc3\x9f"
              "e \xe2\x82\xac \xf0\x9f\x93\xa7")
        << "printable UTF-8 stays";
    EXPECT_EQ(printable("\xc2\x9b"
                        "31m"),
              "\\xC2\\x9B31m")
        << "C1 CSI as UTF-8";
    EXPECT_EQ(printable("\x9b"
                        "31m"),
              "\\x9B31m")
        << "bare C1 byte";
    EXPECT_EQ(printable("a\xe2\x80\xae"
                        "b"),
              "a\\xE2\\x80\\xAEb")
        << "RLO";
    EXPECT_EQ(printable("\xc0\xaf"), "\\xC0\\xAF") << "overlong";
    EXPECT_EQ(printable("\xed\xa0\x80"), "\\xED\\xA0\\x80") << "surrogate";
    EXPECT_EQ(printable("\xe2\x82"), "\\xE2\\x82") << "truncated";
}

TEST(DirectorySyncer, ConcurrentCallersAllSucceedWithAtMostOneFsyncEach) {
    TempDir d;
    DirectorySyncer syncer(d.path);
    constexpr int kThreads = 16, kCalls = 40;
    std::vector<int> failures(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kCalls; ++i)
                failures[t] += syncer.sync().empty() ? 0 : 1;
        });
    for (auto& t : threads)
        t.join();
    for (int f : failures)
        EXPECT_EQ(f, 0);
    EXPECT_GE(syncer.syncsDone(), 1u);
    EXPECT_LE(syncer.syncsDone(), static_cast<std::uint64_t>(kThreads * kCalls));
}

TEST(DirectorySyncer, EveryCallerOfAFailedSyncGetsTheError) {
    TempDir d;
    DirectorySyncer syncer(d.path + "/missing");
    std::vector<std::string> errors(8);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] { errors[t] = syncer.sync(); });
    for (auto& t : threads)
        t.join();
    for (const auto& e : errors)
        EXPECT_NE(e.find("cannot open directory " + d.path + "/missing"), std::string::npos) << e;
}

TEST(Spool, ConcurrentCommitsAreAllQueuedAndReadable) {
    TempDir d;
    Spool s(d.path);
    ASSERT_EQ(s.open(), "");
    constexpr int kThreads = 8, kEach = 25;
    std::vector<std::vector<std::string>> ids(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                auto w = s.begin(env());
                const std::string body =
                    "Subject: " + std::to_string(t) + "-" + std::to_string(i) + "\r\n\r\nbody\r\n";
                if (w->write(body.data(), body.size()))
                    if (auto id = w->commit())
                        ids[t].push_back(*id);
            }
        });
    for (auto& t : threads)
        t.join();
    std::size_t committed = 0;
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(ids[t].size(), static_cast<std::size_t>(kEach));
        committed += ids[t].size();
        for (const auto& id : ids[t]) {
            auto b = s.body(id);
            ASSERT_TRUE(b) << id;
            EXPECT_NE(read(*b).find("body"), std::string::npos);
        }
    }
    EXPECT_EQ(s.list().size(), committed);
}

namespace {
ino_t inodeOf(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}
std::vector<std::string> namesIn(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        out.push_back(e.path().filename().string());
    return out;
}
std::optional<std::string> queueOne(Spool& s, const std::string& body) {
    auto w = s.begin(env());
    if (!w->write(body.data(), body.size()))
        return std::nullopt;
    return w->commit();
}
}  // namespace

TEST(SpoolRecycling, ARemovedFileIsEmptiedAndCarriesTheNextMessage) {
    TempDir d;
    Spool s(d.path);
    ASSERT_EQ(s.open(), "");
    s.recover();
    const auto first = queueOne(s, "Subject: first\r\n\r\nsecret of the first\r\n");
    ASSERT_TRUE(first);
    const ino_t inode = inodeOf(d.path + "/queue/" + *first);
    ASSERT_TRUE(s.remove(*first));
    EXPECT_TRUE(s.list().empty());
    // Kept under its old name, with none of the first message's bytes left in it.
    ASSERT_EQ(namesIn(d.path + "/free"), std::vector<std::string>{*first});
    EXPECT_EQ(fs::file_size(d.path + "/free/" + *first), 0u);

    const auto second = queueOne(s, "Subject: second\r\n\r\nx\r\n");
    ASSERT_TRUE(second);
    EXPECT_NE(*second, *first);
    EXPECT_EQ(inodeOf(d.path + "/queue/" + *second), inode);  // the same file, no new inode
    EXPECT_TRUE(fs::is_empty(d.path + "/free"));
    auto body = s.body(*second);
    ASSERT_TRUE(body);
    EXPECT_EQ(read(*body), "Subject: second\r\n\r\nx\r\n");
    EXPECT_EQ(s.envelope(*second)->size, 22u);
}

TEST(SpoolRecycling, AnAbandonedWriteReturnsItsFileEmpty) {
    TempDir d;
    Spool s(d.path);
    ASSERT_EQ(s.open(), "");
    s.recover();
    {
        auto w = s.begin(env());
        w->write("Subject: half\r\n", 15);
    }
    EXPECT_TRUE(fs::is_empty(d.path + "/tmp"));
    EXPECT_TRUE(s.list().empty());
    const auto spare = namesIn(d.path + "/free");
    ASSERT_EQ(spare.size(), 1u);
    EXPECT_EQ(fs::file_size(d.path + "/free/" + spare[0]), 0u);
}

TEST(SpoolRecycling, StartUpEmptiesLeftoversAndDropsWhatIsNotOurs) {
    TempDir d;
    Spool s(d.path);
    ASSERT_EQ(s.open(), "");
    // A crash between a removal's rename and its truncate leaves the bytes: emptied at start.
    std::ofstream(d.path + "/free/20261122000000CCCCCCCC") << "left over message bytes";
    std::ofstream(d.path + "/free/not a queue id") << "?";
    fs::create_directory(d.path + "/free/20261122000000DDDDDDDD");
    std::ofstream(d.path + "/elsewhere") << "another file";
    fs::create_hard_link(d.path + "/elsewhere", d.path + "/free/20261122000000EEEEEEEE");
    s.recover();
    EXPECT_EQ(fs::file_size(d.path + "/free/20261122000000CCCCCCCC"), 0u);
    EXPECT_FALSE(fs::exists(d.path + "/free/not a queue id"));
    EXPECT_FALSE(fs::exists(d.path + "/free/20261122000000DDDDDDDD"));

    // A file with a second link is never written: the link elsewhere keeps its content.
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        const auto id = queueOne(s, "Subject: n\r\n\r\nbody\r\n");
        ASSERT_TRUE(id);
        ids.push_back(*id);
    }
    std::ifstream in(d.path + "/elsewhere");
    std::string content;
    std::getline(in, content);
    EXPECT_EQ(content, "another file");
    for (const auto& id : ids) {
        auto body = s.body(id);
        ASSERT_TRUE(body);
        EXPECT_EQ(read(*body), "Subject: n\r\n\r\nbody\r\n");
    }
    EXPECT_TRUE(fs::is_empty(d.path + "/free"));
}

TEST(SpoolRecycling, AnotherProcesssRemovalsAreFoundAndClaimedOnce) {
    TempDir d;
    Spool daemon(d.path);
    ASSERT_EQ(daemon.open(), "");
    daemon.recover();
    const auto a = queueOne(daemon, "Subject: a\r\n\r\na\r\n");
    ASSERT_TRUE(a);
    {
        Spool ctl(d.path);  // demailctl queue delete: its own Spool, the same directories
        ASSERT_TRUE(ctl.remove(*a));
    }
    // The daemon learns of free/ entries from other processes when its own list runs dry (at
    // most once a second), so the first new message may still get a new file.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    std::vector<std::thread> writers;
    std::vector<std::optional<std::string>> got(8);
    for (int i = 0; i < 8; ++i)
        writers.emplace_back([&, i] { got[i] = queueOne(daemon, "Subject: c\r\n\r\nc\r\n"); });
    for (auto& t : writers)
        t.join();
    for (const auto& id : got) {
        ASSERT_TRUE(id);
        auto body = daemon.body(*id);
        ASSERT_TRUE(body);
        EXPECT_EQ(read(*body), "Subject: c\r\n\r\nc\r\n");
    }
    EXPECT_EQ(daemon.list().size(), 8u);
    EXPECT_TRUE(fs::is_empty(d.path + "/free"));
}
