// The De-Mail message layer: header block, classification, confirmation XML, outbound
// preparation, chosen-recipient and address lists (connector/message).
#include <cstdint>
#include <string>

#include "demail/connector/message/demail_headers.h"
#include "demail/connector/message/header_block.h"
#include "demail/connector/message/inbound.h"
#include "demail/connector/message/inbound_prepare.h"
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
    // H2: whatever the provider hands us, what goes to the relay has only CRLF line ends, no line
    // over 998 octets and no NUL, so "\n.\n" can never end DATA early; and exactly one verdict
    // header, ours.
    const auto in = prepareInbound(m, defaultInternalTrustHeaders(),
                                   {"message", "a@b.de", "", "in-1", "gw.test", "now"});
    if (in.ok()) {
        if (!isSafeForSmtp(in.message) || in.message.find("\n.\n") != std::string::npos ||
            in.message.rfind("Received: ", 0) != 0)
            __builtin_trap();
        const std::string head = in.message.substr(0, in.message.find("\r\n\r\n"));
        std::size_t verdicts = 0;
        for (std::size_t at = 0;
             (at = head.find("\nX-Demail-Gateway-Verdict:", at)) != std::string::npos; ++at)
            ++verdicts;
        if (verdicts != 1)
            __builtin_trap();
    } else if (!in.message.empty()) {
        __builtin_trap();
    }
    (void)parseChosenRecipient(m, error);
    (void)parseAddressList(m);
    return 0;
}
