// The persisted PIN rejection record: what one process records, another honours; another PIN
// voids it; the PIN itself is never in it; a damaged record stops logins instead of being ignored.
#include "demail/smartcard/pin_rejection.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace demail::smartcard;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/pin-rejection-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

unsigned mode(const fs::path& p) {
    struct stat st {};
    stat(p.c_str(), &st);
    return st.st_mode & 07777;
}

}  // namespace

TEST(PinRejectionStore, ARejectionIsSeenByAnotherStoreOnTheSameFileUntilThePinChanges) {
    TempDir dir;
    const std::string path = (dir.path / "card-pin-rejected").string();
    EXPECT_FALSE(PinRejectionStore(path).check("9017000000001234", Secret("000000")).rejected);
    ASSERT_EQ(PinRejectionStore(path).record({"9017000000001234", "wrong", 2}, Secret("000000")),
              "");

    // Another process (a new store object) sees it, for this card and this PIN only.
    const auto seen = PinRejectionStore(path).check("9017000000001234", Secret("000000"));
    EXPECT_TRUE(seen.rejected);
    EXPECT_EQ(seen.entry.kind, "wrong");
    EXPECT_EQ(seen.entry.triesLeft, 2);
    EXPECT_TRUE(seen.error.empty());
    EXPECT_FALSE(PinRejectionStore(path).check("9017000000009999", Secret("000000")).rejected);
    EXPECT_TRUE(fs::exists(path));  // another card does not void it

    // The same PIN rejected by a second card: both are remembered.
    ASSERT_EQ(PinRejectionStore(path).record({"9017000000009999", "wrong", 1}, Secret("000000")),
              "");
    EXPECT_TRUE(PinRejectionStore(path).check("9017000000001234", Secret("000000")).rejected);
    EXPECT_TRUE(PinRejectionStore(path).check("9017000000009999", Secret("000000")).rejected);

    // Another PIN in the file: the record is void and removed; the key stays.
    EXPECT_FALSE(PinRejectionStore(path).check("9017000000001234", Secret("123456")).rejected);
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::exists(path + ".key"));
    EXPECT_FALSE(PinRejectionStore(path).check("9017000000001234", Secret("000000")).rejected);
}

TEST(PinRejectionStore, FilesAre0600AndHoldNoPin) {
    TempDir dir;
    const std::string path = (dir.path / "r").string();
    const mode_t old = umask(0);  // the files must be 0600 whatever the umask
    ASSERT_EQ(PinRejectionStore(path).record({"ABC", "wrong", 2}, Secret("987654")), "");
    umask(old);
    EXPECT_EQ(mode(path), 0600u);
    EXPECT_EQ(mode(path + ".key"), 0600u);
    EXPECT_EQ(fs::file_size(path + ".key"), 32u);
    const std::string text = slurp(path);
    EXPECT_EQ(text.find("987654"), std::string::npos);
    EXPECT_NE(text.find("pin-hmac "), std::string::npos);
    EXPECT_NE(text.find("\nend\n"), std::string::npos);
    // No temporary file is left behind.
    int files = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path))
        ++files;
    EXPECT_EQ(files, 2);
}

TEST(PinRejectionStore, TheHmacDependsOnTheInstallationKey) {
    TempDir a, b;
    const std::string pa = (a.path / "r").string(), pb = (b.path / "r").string();
    ASSERT_EQ(PinRejectionStore(pa).record({"S", "wrong", 2}, Secret("000000")), "");
    ASSERT_EQ(PinRejectionStore(pb).record({"S", "wrong", 2}, Secret("000000")), "");
    EXPECT_NE(slurp(pa), slurp(pb));  // random keys: the same PIN gives different records
}

TEST(PinRejectionStore, ADamagedRecordOrALostKeyStopsTheLoginInsteadOfBeingIgnored) {
    TempDir dir;
    const std::string path = (dir.path / "r").string();
    ASSERT_EQ(PinRejectionStore(path).record({"S", "wrong", 2}, Secret("000000")), "");
    {
        std::ofstream out(path, std::ios::trunc);
        out << "demail-pin-rejection v1\npin-hmac 00\n";  // truncated, no end marker
    }
    auto c = PinRejectionStore(path).check("S", Secret("000000"));
    EXPECT_FALSE(c.rejected);
    EXPECT_NE(c.error, "");
    EXPECT_NE(c.error.find(path), std::string::npos);

    ASSERT_EQ(PinRejectionStore(path).record({"S", "wrong", 2}, Secret("000000")), "");
    fs::remove(path + ".key");
    c = PinRejectionStore(path).check("S", Secret("111111"));
    EXPECT_NE(c.error, "");  // cannot tell whether the PIN changed: no login
}

// demailctl run by root must not leave files the service user cannot read: new files take the
// owner of their directory (the spool belongs to demail-gateway).
TEST(PinRejectionStore, RootGivesNewFilesTheOwnerOfTheDirectory) {
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root";
    TempDir dir;
    ASSERT_EQ(chown(dir.path.c_str(), 65534, 65534), 0);
    const std::string path = (dir.path / "r").string();
    ASSERT_EQ(PinRejectionStore(path).record({"S", "wrong", 2}, Secret("000000")), "");
    for (const std::string& p : {path, path + ".key"}) {
        struct stat st {};
        ASSERT_EQ(stat(p.c_str(), &st), 0);
        EXPECT_EQ(st.st_uid, 65534u) << p;
        EXPECT_EQ(st.st_gid, 65534u) << p;
    }
}

TEST(PinRejectionStore, AnUnwritableDirectoryIsReported) {
    EXPECT_NE(PinRejectionStore("/proc/none/r").record({"S", "wrong", 2}, Secret("000000")), "");
}
