// The spool record reader (gateway/spool.h): whatever a queue file holds, reading it returns a
// complete record or nothing, and a body that is there has exactly the size the record states.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "demail/gateway/spool.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace demail::gateway;
    static const std::string dir = [] {
        char t[] = "/tmp/demail-fuzz-spool-XXXXXX";
        std::string d = mkdtemp(t);
        std::filesystem::create_directories(d + "/queue");
        return d;
    }();
    const std::string id = "20261122000000FUZZFUZZ";
    {
        std::ofstream out(dir + "/queue/" + id, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    Spool spool(dir);
    const auto env = spool.envelope(id);
    auto body = spool.body(id);
    if (env.has_value() != static_cast<bool>(body))
        __builtin_trap();
    if (env) {
        std::stringstream ss;
        ss << body->rdbuf();
        if (ss.str().size() != env->size || env->recipients.empty())
            __builtin_trap();
    }
    return 0;
}
