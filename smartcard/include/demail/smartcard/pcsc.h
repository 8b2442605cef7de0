// PC/SC through pcsc-lite: the context, readers chosen by a substring of their name, a
// connection to the card as a CardChannel, and a monitor of card and reader events.
//
// Recovery: pcscd may restart and a reader may vanish and return (USB-over-IP drops do exactly
// that). Every object here re-establishes what it needs on the next call after
// SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED, SCARD_E_INVALID_HANDLE,
// SCARD_E_READER_UNAVAILABLE, SCARD_W_REMOVED_CARD and friends; none has to be recreated.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "demail/smartcard/card_channel.h"

namespace demail::smartcard {

class PcscContext {
  public:
    PcscContext();
    ~PcscContext();
    PcscContext(const PcscContext&) = delete;
    PcscContext& operator=(const PcscContext&) = delete;

    Result<std::vector<std::string>> readers();
    // The first reader whose name contains `substring` (all readers if it is empty) and, when
    // wantCard is set, that holds a card.
    Result<std::string> findReader(const std::string& substring, bool wantCard);

    // For the classes below: the raw SCARDCONTEXT (established on demand) and a way to say it
    // broke, so that the next call establishes a new one.
    Result<long> handle();
    void invalidate();

  private:
    std::mutex mutex_;
    long context_ = 0;
    bool valid_ = false;
};

class PcscCard final : public CardChannel {
  public:
    // Connects to the card in the reader (shared mode: OpenSC may use it at the same time).
    static Result<std::unique_ptr<PcscCard>> connect(PcscContext& context,
                                                     const std::string& reader);
    ~PcscCard() override;

    Result<ResponseApdu> transmit(const CommandApdu& command) override;
    Result<Done> beginTransaction() override;
    void endTransaction() override;
    const Bytes& atr() const { return atr_; }
    const std::string& reader() const { return reader_; }

  private:
    PcscCard(PcscContext& context, std::string reader, long handle, unsigned long protocol,
             Bytes atr);
    Result<Bytes> transmitRaw(const Bytes& apdu);
    CardError failure(const std::string& otherwise, CardErrorKind kind, long rc);
    PcscContext& context_;
    std::string reader_;
    long handle_;
    unsigned long protocol_;
    Bytes atr_;
};

enum class CardPresence {
    NoService,  // pcscd not reachable
    NoReader,   // no reader matches
    Absent,     // reader without card
    Present,
};
const char* toString(CardPresence p);

// Watches one reader (by substring) for card insertion/removal and the reader itself for
// arrival/departure (through the PnP notification pseudo reader).
class CardMonitor {
  public:
    CardMonitor(PcscContext& context, std::string readerSubstring);
    struct State {
        CardPresence presence = CardPresence::NoService;
        std::string reader;      // the matching reader's full name, if any
        bool cancelled = false;  // waitForChange returned because of cancel()
    };
    State current();
    // Blocks until the state differs from `known` or the timeout passes; returns the new state.
    State waitForChange(const State& known, std::chrono::milliseconds timeout);
    // Makes the running waitForChange (in another thread) return at once, through SCardCancel;
    // if none is running, the next one returns at once. Either way the result has cancelled set.
    void cancel();

  private:
    PcscContext& context_;
    std::string substring_;
    std::atomic<bool> cancelled_{false};
};

}  // namespace demail::smartcard
