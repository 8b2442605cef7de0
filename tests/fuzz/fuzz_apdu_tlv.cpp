// Card answers: response APDUs and BER-TLV (smartcard/apdu.h).
#include <cstdint>

#include "demail/smartcard/apdu.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace demail::smartcard;
    const Bytes b(data, data + size);
    if (auto r = ResponseApdu::parse(b))
        if (r->data.size() + 2 != b.size())
            __builtin_trap();
    if (auto tlvs = parseTlvs(b)) {
        std::size_t total = 0;
        for (const auto& t : *tlvs) {
            total += t.value.size();
            (void)parseTlvs(t.value);
        }
        if (total > b.size())
            __builtin_trap();
    }
    (void)describeStatusWord(size >= 2 ? static_cast<std::uint16_t>((data[0] << 8) | data[1]) : 0);
    return 0;
}
