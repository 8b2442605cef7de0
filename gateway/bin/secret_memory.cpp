#include "secret_memory.h"

#include <limits.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace demail::gatewayd {
namespace {
// tcache_count=0: small frees otherwise go to the per-thread cache, which glibc does not perturb.
// perturb=165 (0xA5): free() fills the freed chunk with it.
constexpr const char* kTunables = "glibc.malloc.tcache_count=0:glibc.malloc.perturb=165";
constexpr const char* kMarker = "glibc.malloc.perturb=";

std::string ownPath() {
    char buf[PATH_MAX] = {};
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0 || std::string_view(buf, static_cast<std::size_t>(n)).ends_with(" (deleted)"))
        return "/proc/self/exe";
    return std::string(buf, static_cast<std::size_t>(n));
}

// After a re-exec through /proc/self/exe the process is called "exe": take argv[0]'s name back.
void keepProgramName(char** argv) {
    char comm[16] = {};
    if (::prctl(PR_GET_NAME, comm) != 0 || std::strcmp(comm, "exe") != 0 || !argv[0])
        return;
    const char* slash = std::strrchr(argv[0], '/');
    ::prctl(PR_SET_NAME, slash ? slash + 1 : argv[0]);
}
}  // namespace

std::string ensureFreedMemoryIsWiped(char** argv) {
    const char* current = std::getenv("GLIBC_TUNABLES");
    if (current && std::strstr(current, kMarker)) {
        keepProgramName(argv);
        return {};
    }
    std::string value = kTunables;
    if (current && *current)
        value = std::string(current) + ":" + value;
    if (::setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0)
        return std::string("cannot set GLIBC_TUNABLES: ") + std::strerror(errno);
    // The binary's own path, not /proc/self/exe: the kernel names the process after the file
    // executed, and "exe" in ps, top and `systemctl status` says nothing. /proc/self/exe only
    // when the path is gone (the package replaced the binary since).
    ::execv(ownPath().c_str(), argv);
    const int e = errno;
    ::unsetenv("GLIBC_TUNABLES");
    return std::string("cannot re-execute with wiped frees (") + std::strerror(e) +
           "): freed heap may keep a copy of the PIN";
}

std::string disableOpenScPinCache(const std::string& openscConf) {
    if (openscConf.empty())
        return {};
    if (const char* set = std::getenv("OPENSC_CONF"); set && *set)
        return std::string("OPENSC_CONF is set to ") + set +
               " by the environment and kept; [card] opensc_conf is not used";
    if (::access(openscConf.c_str(), R_OK) != 0)
        return "[card] opensc_conf " + openscConf + " is not readable (" + std::strerror(errno) +
               "): OpenSC keeps its PIN cache";
    ::setenv("OPENSC_CONF", openscConf.c_str(), 1);
    return {};
}

}  // namespace demail::gatewayd
