// Fuzz target for the provider JSON binding (DESIGN.md: every parser has one). Built with
// -DDEMAIL_LIBFUZZER and -fsanitize=fuzzer it is a libFuzzer target; otherwise main() replays
// the committed corpus (tests/connector/transport/corpus/provider_json) as a regression test.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "demail/connector/transport/json_api_binding.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace demail::connector;
    const std::string text(reinterpret_cast<const char*>(data), size);
    // Each parser must return a value (never throw, never crash) for any input.
    auto accounts = api::parseAccounts(text);
    if (!accounts.ok() && accounts.error().kind != ErrorKind::Retryable)
        __builtin_trap();
    if (accounts.ok())
        for (const auto& d : accounts.value().domains)  // never a bare label or an address
            if (d.find('.') == std::string::npos || d.find('@') != std::string::npos)
                __builtin_trap();
    auto address = api::parseAddress(200, text, "a@b.de-mail.de");
    if (address.ok() && address.value().address != "a@b.de-mail.de")
        __builtin_trap();
    auto receipt = api::parseSubmitReceipt(201, text);
    if (receipt.ok() && receipt.value().messageIds.empty())
        __builtin_trap();
    auto inbox = api::parseInbox(text);
    if (inbox.ok())
        for (const auto& ref : inbox.value())
            if (ref.id.empty() || ref.id.find('/') != std::string::npos)
                __builtin_trap();
    for (int status : {400, 403, 429, 503})
        if (api::mapHttpError(status, text).httpStatus != status)
            __builtin_trap();
    return 0;
}

#ifndef DEMAIL_LIBFUZZER
int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
        std::ifstream in(entry.path(), std::ios::binary);
        std::stringstream buf;
        buf << in.rdbuf();
        const std::string data = buf.str();
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
        ++n;
    }
    std::printf("provider JSON corpus: %d inputs replayed\n", n);
    return n > 0 ? 0 : 1;
}
#endif
