// The seam between card operations and the reader: one APDU in, one response out. PC/SC
// implements it (pcsc.h); unit tests implement it with a scripted fake.
#pragma once

#include "demail/smartcard/apdu.h"
#include "demail/smartcard/errors.h"

namespace demail::smartcard {

class CardChannel {
  public:
    virtual ~CardChannel() = default;
    // Sends the command; T=0 61xx (GET RESPONSE) and 6Cxx (repeat with Le) are handled inside.
    virtual Result<ResponseApdu> transmit(const CommandApdu& command) = 0;
    // Brackets a sequence of commands that must not be interleaved with other processes
    // (e.g. OpenSC in the gateway): SELECT then VERIFY, MSE then PSO.
    virtual Result<Done> beginTransaction() { return Done{}; }
    virtual void endTransaction() {}
};

}  // namespace demail::smartcard
