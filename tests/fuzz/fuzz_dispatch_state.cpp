// The dispatcher's state records (gateway/state_files.h).
#include <cstdint>
#include <string>

#include "demail/gateway/state_files.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace demail::gateway;
    const std::string text(reinterpret_cast<const char*>(data), size);
    if (auto s = decodeDispatchState(text)) {
        // What was read must survive a round trip.
        auto again = decodeDispatchState(encodeDispatchState(*s));
        if (!again || again->attempts != s->attempts || again->phase != s->phase)
            __builtin_trap();
    }
    return 0;
}
