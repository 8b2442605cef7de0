// The De-Mail message layer: header block, classification, confirmation XML, outbound
// preparation, chosen-recipient and address lists (connector/message).
#include <cstdint>
#include <string>

#include "demail/connector/message/demail_headers.h"
#include "demail/connector/message/header_block.h"
#include "demail/connector/message/inbound.h"
#include "demail/connector/message/outbound.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace demail::connector;
    const std::string m(reinterpret_cast<const char*>(data), size);
    std::string error;
    if (auto h = HeaderBlock::parse(m, error))
        if (h->bodyOffset() > m.size())
            __builtin_trap();
    const auto c = classifyInbound(m);
    if (c.privateId.size() > 1024)
        __builtin_trap();
    (void)confirmationXmlOf(m, error);
    OutboundContext ctx;
    ctx.queueId = "20261122000000ABCDEFGH";
    ctx.envelopeSender = "a@firma.de";
    ctx.envelopeRecipients = {"b@behoerde.de-mail.de"};
    ctx.deMailDomains = {"de-mail.de"};
    ctx.accounts.entries = {{"@firma.de", "poststelle@firma.de-mail.de"}};
    const auto p = prepareOutbound(m, ctx);
    if (p.ok() &&
        (p.bodyOffset > m.size() || p.headers.find("X-de-mail-private-id") == std::string::npos))
        __builtin_trap();
    (void)parseChosenRecipient(m, error);
    (void)parseAddressList(m);
    return 0;
}
