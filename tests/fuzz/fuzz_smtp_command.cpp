// SMTP command lines and MAIL/RCPT paths (smtp/command.h).
#include <cstdint>
#include <string>

#include "demail/smtp/command.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace demail::smtp;
    const std::string line(reinterpret_cast<const char*>(data), size);
    const Command c = parseCommand(line);
    std::string error;
    for (const char* prefix : {"FROM:", "TO:"}) {
        if (auto p = parsePath(c.argument, prefix, error)) {
            std::string why;
            // A path that parsed must hold a plain mailbox or be the null path.
            if (!p->address.empty() && !isPlainMailbox(p->address, why))
                __builtin_trap();
        }
    }
    (void)decodeXtext(line);
    return 0;
}
