// Keeping the card PIN out of the daemon's memory, so it is in no core dump (issue 8, tested by
// tests/reliability/secrets.sh, which scans the live process and a gcore dump for the PIN).
//
// Our own copies are wiped (smartcard::Secret). Two copies belong to libraries:
//  - OpenSC caches a verified PIN for re-validation (use_pin_caching, default on). The daemon
//    points OPENSC_CONF at a file that turns the cache off; a lost login is recovered by our key
//    source, which reads the PIN file again.
//  - OpenSC 0.23's pcsc_transmit hex-dumps every APDU into a malloc'd buffer before it checks the
//    log level, and frees it unwiped: the VERIFY APDU leaves the PIN in freed heap. glibc wipes
//    freed chunks only with the perturb tunable and without the thread cache, and tunables are
//    read at start-up only, hence the re-exec.
#pragma once

#include <string>

namespace demail::gatewayd {

// Re-executes the daemon once with GLIBC_TUNABLES set so that free() overwrites what it frees.
// Returns only if the tunables are already in effect or the re-exec failed (then with a reason).
std::string ensureFreedMemoryIsWiped(char** argv);

// Sets OPENSC_CONF to `openscConf` (before the PKCS#11 module is loaded). Empty result on success,
// otherwise a warning: an operator-set OPENSC_CONF is kept, a missing file is reported.
std::string disableOpenScPinCache(const std::string& openscConf);

}  // namespace demail::gatewayd
