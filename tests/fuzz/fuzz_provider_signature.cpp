// What the provider signs, checked on hostile bytes (connector/message/provider_signature): the
// X-de-mail-integrity DKIM header with its certificate, and a confirmation's XML-DSig. Whatever
// arrives, the verdict is a value, never a crash, and nothing unsigned is ever "pass".
#include <cstdint>
#include <string>

#include "demail/connector/message/provider_signature.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace demail::connector;
    const std::string m(reinterpret_cast<const char*>(data), size);
    // Without a trust anchor nothing can be Valid: at most Unverified.
    if (verifyIntegrity(m, nullptr).state == SignatureState::Valid)
        __builtin_trap();
    if (verifyXmlSignature(m, nullptr).state == SignatureState::Valid)
        __builtin_trap();
    return 0;
}
