#include "secret_memory.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace demail::gatewayd {
namespace {
// tcache_count=0: small frees otherwise go to the per-thread cache, which glibc does not perturb.
// perturb=165 (0xA5): free() fills the freed chunk with it.
constexpr const char* kTunables = "glibc.malloc.tcache_count=0:glibc.malloc.perturb=165";
constexpr const char* kMarker = "glibc.malloc.perturb=";
}  // namespace

std::string ensureFreedMemoryIsWiped(char** argv) {
    const char* current = std::getenv("GLIBC_TUNABLES");
    if (current && std::strstr(current, kMarker))
        return {};
    std::string value = kTunables;
    if (current && *current)
        value = std::string(current) + ":" + value;
    if (::setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0)
        return std::string("cannot set GLIBC_TUNABLES: ") + std::strerror(errno);
    ::execv("/proc/self/exe", argv);
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
