// The provider's JSON replies (connector/transport/provider_api_binding.h): whatever the provider
// (or something posing as it) answers, parsing returns a value or an error, never crashes, and an
// error is never a permanent one unless the provider said so with an error object.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "demail/connector/transport/json_api_binding.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace demail::connector;
    const std::string body(reinterpret_cast<const char*>(data), size);
    if (auto a = api::parseAccounts(body); !a.ok() && a.error().kind == ErrorKind::Permanent)
        std::abort();  // a malformed list is the provider's fault: retryable
    if (auto i = api::parseInbox(body); !i.ok() && i.error().kind == ErrorKind::Permanent)
        std::abort();
    for (int status : {200, 201, 400, 404, 409, 422, 429, 500, 503}) {
        (void)api::parseSubmitReceipt(status, body);
        // Only a 200 or a 404 with one of the two codes may say "no such address".
        if (auto l = api::parseAddress(status, body, "a@b.de-mail.de");
            l.ok() && !l.value().exists && status != 200 && status != 404)
            std::abort();
        (void)api::mapHttpError(status, body);
    }
    return 0;
}
