// Every answer the intake gives, in one table: outcome -> code, enhanced status code (RFC 3463),
// text. Sessions only name outcomes; the wording lives here.
#pragma once

#include <string>

namespace demail::smtp {

enum class Reply {
    Ok,                    // 250 2.0.0
    SenderOk,              // 250 2.1.0
    RecipientOk,           // 250 2.1.5
    StartData,             // 354
    Queued,                // 250 2.0.0 Ok: queued as ...
    Bye,                   // 221 2.0.0
    ReadyForTls,           // 220 2.0.0
    AuthOk,                // 235 2.7.0
    CannotVerify,          // 252 2.5.0
    Help,                  // 214 2.0.0
    ShuttingDown,          // 421 4.3.2
    TooManyConnections,    // 421 4.7.0
    TooManyErrors,         // 421 4.7.0
    Timeout,               // 421 4.4.2
    LineOverflow,          // 421 4.7.0 (a line far beyond any limit: the connection is closed)
    LocalError,            // 451 4.3.0
    TryLater,              // 451 4.7.0 (the gateway cannot decide now)
    RecipientCheckFailed,  // 451 4.4.3 (the directory that decides cannot be asked now)
    LimitReached,          // 451 4.7.1 (a daily limit that comes back: try again later)
    Unavailable,           // 451 4.3.2 (this server cannot pass mail on now: try another)
    NoSpace,               // 452 4.3.1
    TooManyRecipients,     // 452 4.5.3
    AuthThrottled,         // 454 4.7.0
    LineTooLong,           // 500 5.5.2
    Unrecognized,          // 500 5.5.2
    SyntaxError,           // 501 5.5.4
    BadAddress,            // 501 5.1.3
    NotImplemented,        // 502 5.5.1
    BadSequence,           // 503 5.5.1
    BadParameter,          // 555 5.5.4
    TlsRequired,           // 530 5.7.0
    AuthRequiresTls,       // 538 5.7.11
    AuthFailed,            // 535 5.7.8
    BareLineFeed,          // 521 5.5.2 (and the connection is closed)
    RelayDenied,           // 554 5.7.1
    SenderRefused,         // 553 5.7.1
    RecipientRefused,      // 550 5.7.1
    UnknownRecipient,      // 550 5.1.1 (no such mailbox)
    PolicyRefused,         // 550 5.7.1 (the sending policy: an option, a sender's daily limit)
    MessageTooBig,         // 552 5.3.4
    NoValidRecipients,     // 554 5.5.1
    MessageRefused,        // 554 5.6.0
};

struct ReplyText {
    int code;
    const char* enhanced;  // empty for 220/221-style greetings without one
    const char* text;
};

const ReplyText& replyFor(Reply r);
// "550 5.7.1 <detail or default text>\r\n"
std::string formatReply(Reply r, const std::string& detail = {});

}  // namespace demail::smtp
