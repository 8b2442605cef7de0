// What can go wrong with a reader, a card or a key, in one taxonomy the CLI maps to exit codes
// (DESIGN.md: 3 wrong PIN, 4 blocked, 5 no reader or card) and the gateway to readiness reasons.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace demail::smartcard {

enum class CardErrorKind {
    None,
    NoService,        // pcscd is not running
    NoReader,         // no (matching) reader
    NoCard,           // reader without a card
    CardRemoved,      // the card left during the operation
    UnsupportedCard,  // the ATR is not in the profile table
    WrongPin,         // triesLeft says how many remain
    PinBlocked,
    PinNotInitialised,  // NullPIN: delivered sealed, set a PIN first
    NotAllowed,         // security status or conditions of use not satisfied
    NotFound,           // file, record or reference missing
    Protocol,           // malformed answer, wrong length, unexpected status word
    Other,
};

struct CardError {
    CardErrorKind kind = CardErrorKind::None;
    std::string message;  // one line an operator understands
    int triesLeft = -1;
    unsigned statusWord = 0;  // 0 when the error is not from the card
};

template <typename T>
class Result {
  public:
    Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
    Result(CardError error) : error_(std::move(error)) {}  // NOLINT
    bool ok() const { return value_.has_value(); }
    const T& value() const { return *value_; }
    T& value() { return *value_; }
    const CardError& error() const { return error_; }

  private:
    std::optional<T> value_;
    CardError error_;
};

struct Done {};  // Result<Done>: success without a value

inline CardError cardError(CardErrorKind kind, std::string message, int tries = -1,
                           unsigned sw = 0) {
    return CardError{kind, std::move(message), tries, sw};
}

}  // namespace demail::smartcard
