#include "demail/smartcard/pcsc.h"

#include <openssl/crypto.h>

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <cstring>
#include <thread>

namespace demail::smartcard {
namespace {

std::string pcscText(LONG rc) {
    return pcsc_stringify_error(rc);
}

// Errors after which the context (or the handle) must be established anew.
bool contextBroken(LONG rc) {
    return rc == SCARD_E_NO_SERVICE || rc == SCARD_E_SERVICE_STOPPED ||
           rc == SCARD_E_INVALID_HANDLE || rc == SCARD_F_COMM_ERROR ||
           rc == SCARD_E_NO_READERS_AVAILABLE || rc == SCARD_E_READER_UNAVAILABLE ||
           rc == SCARD_E_UNKNOWN_READER;
}

CardError errorFromPcsc(LONG rc, const std::string& what) {
    CardErrorKind kind = CardErrorKind::Other;
    std::string hint;
    switch (rc) {
        case SCARD_E_NO_SERVICE:
        case SCARD_E_SERVICE_STOPPED:
            kind = CardErrorKind::NoService;
            hint = "; is pcscd running?";
            break;
        case SCARD_E_NO_READERS_AVAILABLE:
        case SCARD_E_UNKNOWN_READER:
        case SCARD_E_READER_UNAVAILABLE:
            kind = CardErrorKind::NoReader;
            hint = "; is the reader connected (or attached over USB/IP)?";
            break;
        case SCARD_E_NO_SMARTCARD:
        case SCARD_W_UNPOWERED_CARD:
        case SCARD_W_UNRESPONSIVE_CARD:
            kind = CardErrorKind::NoCard;
            hint = "; insert the De-Mail card";
            break;
        case SCARD_W_REMOVED_CARD:
        case SCARD_W_RESET_CARD:
            kind = CardErrorKind::CardRemoved;
            hint = "; the card was removed or reset during the operation";
            break;
        default:
            break;
    }
    return cardError(kind, what + ": " + pcscText(rc) + hint);
}

}  // namespace

PcscContext::PcscContext() = default;

PcscContext::~PcscContext() {
    if (valid_)
        SCardReleaseContext(context_);
}

Result<long> PcscContext::handle() {
    std::lock_guard lock(mutex_);
    if (valid_) {
        if (SCardIsValidContext(context_) == SCARD_S_SUCCESS)
            return context_;
        SCardReleaseContext(context_);
        valid_ = false;
    }
    SCARDCONTEXT c = 0;
    const LONG rc = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &c);
    if (rc != SCARD_S_SUCCESS)
        return errorFromPcsc(rc, "cannot reach the PC/SC service");
    context_ = c;
    valid_ = true;
    return context_;
}

void PcscContext::invalidate() {
    std::lock_guard lock(mutex_);
    if (valid_)
        SCardReleaseContext(context_);
    valid_ = false;
}

Result<std::vector<std::string>> PcscContext::readers() {
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto ctx = handle();
        if (!ctx.ok())
            return ctx.error();
        DWORD len = 0;
        LONG rc = SCardListReaders(ctx.value(), nullptr, nullptr, &len);
        if (rc == SCARD_E_NO_READERS_AVAILABLE)
            return std::vector<std::string>{};
        std::string buf;
        if (rc == SCARD_S_SUCCESS) {
            buf.resize(len);
            rc = SCardListReaders(ctx.value(), nullptr, buf.data(), &len);
        }
        if (rc == SCARD_E_NO_READERS_AVAILABLE)
            return std::vector<std::string>{};
        if (rc != SCARD_S_SUCCESS) {
            if (contextBroken(rc) && attempt == 0) {  // pcscd restarted: one fresh context
                invalidate();
                continue;
            }
            return errorFromPcsc(rc, "cannot list readers");
        }
        std::vector<std::string> out;
        for (const char* p = buf.c_str(); *p; p += std::strlen(p) + 1)
            out.emplace_back(p);
        return out;
    }
    return cardError(CardErrorKind::NoService, "cannot list readers");
}

Result<std::string> PcscContext::findReader(const std::string& substring, bool wantCard) {
    auto all = readers();
    if (!all.ok())
        return all.error();
    std::vector<std::string> matching;
    for (const auto& r : all.value())
        if (substring.empty() || r.find(substring) != std::string::npos)
            matching.push_back(r);
    if (matching.empty()) {
        if (all.value().empty())
            return cardError(CardErrorKind::NoReader,
                             "no card reader found; connect the reader (or attach it over USB/IP)");
        return cardError(CardErrorKind::NoReader, "no reader matches '" + substring + "'");
    }
    if (!wantCard)
        return matching.front();
    auto ctx = handle();
    if (!ctx.ok())
        return ctx.error();
    for (const auto& r : matching) {
        SCARD_READERSTATE st{};
        st.szReader = r.c_str();
        st.dwCurrentState = SCARD_STATE_UNAWARE;
        if (SCardGetStatusChange(ctx.value(), 0, &st, 1) == SCARD_S_SUCCESS &&
            (st.dwEventState & SCARD_STATE_PRESENT))
            return r;
    }
    return cardError(CardErrorKind::NoCard,
                     "no card in reader '" + matching.front() + "'; insert the De-Mail card");
}

PcscCard::PcscCard(PcscContext& context, std::string reader, long handle, unsigned long protocol,
                   Bytes atr)
    : context_(context),
      reader_(std::move(reader)),
      handle_(handle),
      protocol_(protocol),
      atr_(std::move(atr)) {}

PcscCard::~PcscCard() {
    // Leave the card as it is: the gateway's OpenSC session may be logged in on it.
    SCardDisconnect(handle_, SCARD_LEAVE_CARD);
}

Result<std::unique_ptr<PcscCard>> PcscCard::connect(PcscContext& context,
                                                    const std::string& reader) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto ctx = context.handle();
        if (!ctx.ok())
            return ctx.error();
        SCARDHANDLE h = 0;
        DWORD proto = 0;
        LONG rc = SCardConnect(ctx.value(), reader.c_str(), SCARD_SHARE_SHARED,
                               SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &h, &proto);
        if (rc != SCARD_S_SUCCESS) {
            if (contextBroken(rc) && attempt == 0) {
                context.invalidate();
                continue;
            }
            return errorFromPcsc(rc, "cannot connect to the card in '" + reader + "'");
        }
        BYTE atr[MAX_ATR_SIZE];
        DWORD atrLen = sizeof atr;
        DWORD state = 0, p = 0, nameLen = 0;
        rc = SCardStatus(h, nullptr, &nameLen, &state, &p, atr, &atrLen);
        if (rc != SCARD_S_SUCCESS) {
            SCardDisconnect(h, SCARD_LEAVE_CARD);
            return errorFromPcsc(rc, "cannot read the card's ATR");
        }
        return std::unique_ptr<PcscCard>(
            new PcscCard(context, reader, h, proto, Bytes(atr, atr + atrLen)));
    }
    return cardError(CardErrorKind::NoService, "cannot connect to the card");
}

// After a failed or short exchange: a card that left the reader (or a reader that went away) is
// reported as such, not as a protocol or transport error. pcscd notices a removal on its next
// poll, later still on a loaded machine, so the reader is asked for up to five seconds while it
// still says "present"; this costs time only on a failure path.
CardError PcscCard::failure(const std::string& otherwise, CardErrorKind kind, long rc) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        DWORD state = 0, proto = 0, nameLen = 0, atrLen = 0;
        const LONG st = SCardStatus(handle_, nullptr, &nameLen, &state, &proto, nullptr, &atrLen);
        if (st == SCARD_W_REMOVED_CARD || st == SCARD_E_NO_SMARTCARD ||
            (st == SCARD_S_SUCCESS && !(state & SCARD_PRESENT)))
            return CardError{
                CardErrorKind::CardRemoved,
                "the card was removed during the operation (" +
                    (rc != SCARD_S_SUCCESS ? pcscText(static_cast<LONG>(rc)) : otherwise) + ")"};
        if (st == SCARD_E_READER_UNAVAILABLE || st == SCARD_E_UNKNOWN_READER)
            return CardError{
                CardErrorKind::NoReader,
                "the reader went away during the operation (" +
                    (rc != SCARD_S_SUCCESS ? pcscText(static_cast<LONG>(rc)) : otherwise) + ")"};
        if (st != SCARD_S_SUCCESS || std::chrono::steady_clock::now() >= deadline)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (rc != SCARD_S_SUCCESS)
        return errorFromPcsc(static_cast<LONG>(rc), otherwise);
    return CardError{kind, otherwise};
}

Result<Bytes> PcscCard::transmitRaw(const Bytes& apdu) {
    const SCARD_IO_REQUEST* pci = protocol_ == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    Bytes resp(65538);
    DWORD len = static_cast<DWORD>(resp.size());
    const LONG rc = SCardTransmit(handle_, pci, apdu.data(), static_cast<DWORD>(apdu.size()),
                                  nullptr, resp.data(), &len);
    if (rc != SCARD_S_SUCCESS) {
        if (contextBroken(rc))
            context_.invalidate();
        return failure("card communication failed", CardErrorKind::Other, rc);
    }
    resp.resize(len);
    if (len < 2)  // seen when the card or reader goes away mid-exchange
        return failure("card answered fewer than 2 bytes", CardErrorKind::Protocol,
                       SCARD_S_SUCCESS);
    return resp;
}

Result<ResponseApdu> PcscCard::transmit(const CommandApdu& command) {
    // VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER carry PINs: the encoded copy is wiped,
    // and the command is never sent twice (a second VERIFY with a wrong PIN costs a second try).
    const bool secret = command.ins == 0x20 || command.ins == 0x24 || command.ins == 0x2C;
    Bytes wire = command.encode();
    auto raw = transmitRaw(wire);
    if (secret)
        OPENSSL_cleanse(wire.data(), wire.size());
    if (!raw.ok())
        return raw.error();
    auto r = ResponseApdu::parse(raw.value());
    if (!r)
        return cardError(CardErrorKind::Protocol, "card answered fewer than 2 bytes");
    // T=0: 6Cxx says "repeat with Le = xx"; 61xx says "xx more bytes: GET RESPONSE".
    if ((r->sw >> 8) == 0x6C && !secret) {
        CommandApdu again = command;
        again.le = (r->sw & 0xFF) == 0 ? 256 : (r->sw & 0xFF);
        raw = transmitRaw(again.encode());
        if (!raw.ok())
            return raw.error();
        r = ResponseApdu::parse(raw.value());
        if (!r)
            return cardError(CardErrorKind::Protocol, "card answered fewer than 2 bytes");
    }
    Bytes collected = r->data;
    for (int guard = 0; (r->sw >> 8) == 0x61 && guard < 256; ++guard) {
        CommandApdu getResponse{0x00, 0xC0, 0x00,
                                0x00, {},   (r->sw & 0xFF) == 0 ? 256 : (r->sw & 0xFF)};
        raw = transmitRaw(getResponse.encode());
        if (!raw.ok())
            return raw.error();
        r = ResponseApdu::parse(raw.value());
        if (!r)
            return cardError(CardErrorKind::Protocol, "card answered fewer than 2 bytes");
        collected.insert(collected.end(), r->data.begin(), r->data.end());
    }
    r->data = std::move(collected);
    return *r;
}

Result<Done> PcscCard::beginTransaction() {
    const LONG rc = SCardBeginTransaction(handle_);
    if (rc != SCARD_S_SUCCESS)
        return errorFromPcsc(rc, "cannot lock the card");
    return Done{};
}

void PcscCard::endTransaction() {
    SCardEndTransaction(handle_, SCARD_LEAVE_CARD);
}

const char* toString(CardPresence p) {
    switch (p) {
        case CardPresence::NoService:
            return "no PC/SC service";
        case CardPresence::NoReader:
            return "no reader";
        case CardPresence::Absent:
            return "no card";
        case CardPresence::Present:
            return "card present";
    }
    return "?";
}

CardMonitor::CardMonitor(PcscContext& context, std::string readerSubstring)
    : context_(context), substring_(std::move(readerSubstring)) {}

CardMonitor::State CardMonitor::current() {
    State s;
    auto reader = context_.findReader(substring_, false);
    if (!reader.ok()) {
        s.presence = reader.error().kind == CardErrorKind::NoService ? CardPresence::NoService
                                                                     : CardPresence::NoReader;
        return s;
    }
    s.reader = reader.value();
    auto ctx = context_.handle();
    if (!ctx.ok()) {
        s.presence = CardPresence::NoService;
        return s;
    }
    SCARD_READERSTATE st{};
    st.szReader = s.reader.c_str();
    st.dwCurrentState = SCARD_STATE_UNAWARE;
    const LONG rc = SCardGetStatusChange(ctx.value(), 0, &st, 1);
    if (rc != SCARD_S_SUCCESS) {
        if (contextBroken(rc))
            context_.invalidate();
        s.presence = rc == SCARD_E_NO_SERVICE || rc == SCARD_E_SERVICE_STOPPED
                         ? CardPresence::NoService
                         : CardPresence::NoReader;
        return s;
    }
    s.presence =
        (st.dwEventState & SCARD_STATE_PRESENT) ? CardPresence::Present : CardPresence::Absent;
    return s;
}

CardMonitor::State CardMonitor::waitForChange(const State& known,
                                              std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        // A cancel() is consumed by exactly one wait, also when it came before the wait began.
        if (cancelled_.exchange(false)) {
            State now = current();
            now.cancelled = true;
            return now;
        }
        State now = current();
        if (now.presence != known.presence || now.reader != known.reader)
            return now;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return now;
        // Wait on the reader's state and on the PnP pseudo reader (readers added or removed);
        // without a service, poll gently.
        auto ctx = context_.handle();
        const DWORD slice = static_cast<DWORD>(std::min<long long>(left.count(), 1000));
        if (!ctx.ok()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min<DWORD>(slice, 200)));
            continue;
        }
        SCARD_READERSTATE st[2]{};
        DWORD n = 0;
        st[n].szReader = "\\\\?PnP?\\Notification";
        st[n].dwCurrentState = SCARD_STATE_UNAWARE;
        ++n;
        if (!now.reader.empty()) {
            st[n].szReader = now.reader.c_str();
            st[n].dwCurrentState =
                now.presence == CardPresence::Present ? SCARD_STATE_PRESENT : SCARD_STATE_EMPTY;
            ++n;
        }
        // First call learns the PnP counter; the second waits for a change.
        SCardGetStatusChange(ctx.value(), 0, st, n);
        for (DWORD i = 0; i < n; ++i)
            st[i].dwCurrentState = st[i].dwEventState & ~SCARD_STATE_CHANGED;
        if (!now.reader.empty())
            st[1].dwCurrentState =
                now.presence == CardPresence::Present ? SCARD_STATE_PRESENT : SCARD_STATE_EMPTY;
        const LONG rc = SCardGetStatusChange(ctx.value(), slice, st, n);
        if (rc != SCARD_S_SUCCESS && rc != SCARD_E_TIMEOUT && rc != SCARD_E_CANCELLED) {
            if (contextBroken(rc))
                context_.invalidate();
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
}

void CardMonitor::cancel() {
    cancelled_ = true;
    auto ctx = context_.handle();
    if (ctx.ok())
        SCardCancel(ctx.value());
}

}  // namespace demail::smartcard
