#include "demail/smtp/reply.h"

#include <map>

namespace demail::smtp {

const ReplyText& replyFor(Reply r) {
    static const std::map<Reply, ReplyText> table = {
        {Reply::Ok, {250, "2.0.0", "Ok"}},
        {Reply::SenderOk, {250, "2.1.0", "Sender ok"}},
        {Reply::RecipientOk, {250, "2.1.5", "Recipient ok"}},
        {Reply::StartData, {354, "", "End data with <CR><LF>.<CR><LF>"}},
        {Reply::Queued, {250, "2.0.0", "Ok: queued"}},
        {Reply::Bye, {221, "2.0.0", "Bye"}},
        {Reply::ReadyForTls, {220, "2.0.0", "Ready to start TLS"}},
        {Reply::AuthOk, {235, "2.7.0", "Authentication successful"}},
        {Reply::CannotVerify, {252, "2.5.0", "Cannot VRFY user; send mail and we will try"}},
        {Reply::Help,
         {214, "2.0.0",
          "See RFC 5321; commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT"}},
        {Reply::ShuttingDown, {421, "4.3.2", "Service shutting down, try again later"}},
        {Reply::TooManyConnections, {421, "4.7.0", "Too many connections from your address"}},
        {Reply::TooManyErrors, {421, "4.7.0", "Too many errors, closing connection"}},
        {Reply::Timeout, {421, "4.4.2", "Timeout exceeded, closing connection"}},
        {Reply::LineOverflow, {421, "4.7.0", "Line too long, closing connection"}},
        {Reply::LocalError, {451, "4.3.0", "Local error in processing, try again later"}},
        {Reply::TryLater, {451, "4.7.0", "Cannot decide now, try again later"}},
        {Reply::LimitReached, {451, "4.7.1", "Limit reached, try again later"}},
        {Reply::Unavailable, {451, "4.3.2", "Service unavailable here, try another server"}},
        {Reply::RecipientCheckFailed,
         {451, "4.4.3", "Cannot check the recipient now, try again later"}},
        {Reply::NoSpace, {452, "4.3.1", "Insufficient system storage, try again later"}},
        {Reply::TooManyRecipients, {452, "4.5.3", "Too many recipients"}},
        {Reply::AuthThrottled, {454, "4.7.0", "Too many failed authentications, try again later"}},
        {Reply::LineTooLong, {500, "5.5.2", "Line too long"}},
        {Reply::Unrecognized, {500, "5.5.2", "Command not recognized"}},
        {Reply::SyntaxError, {501, "5.5.4", "Syntax error in parameters or arguments"}},
        {Reply::BadAddress, {501, "5.1.3", "Bad address syntax"}},
        {Reply::NotImplemented, {502, "5.5.1", "Command not implemented"}},
        {Reply::BadSequence, {503, "5.5.1", "Bad sequence of commands"}},
        {Reply::BadParameter, {555, "5.5.4", "Unsupported parameter"}},
        {Reply::TlsRequired, {530, "5.7.0", "Must issue a STARTTLS command first"}},
        {Reply::AuthRequiresTls,
         {538, "5.7.11", "Encryption required for requested authentication mechanism"}},
        {Reply::AuthFailed, {535, "5.7.8", "Authentication credentials invalid"}},
        {Reply::BareLineFeed, {521, "5.5.2", "Bare <CR> or <LF> received; SMTP requires <CR><LF>"}},
        {Reply::RelayDenied, {554, "5.7.1", "Relay access denied"}},
        {Reply::SenderRefused, {553, "5.7.1", "Sender address rejected"}},
        {Reply::RecipientRefused, {550, "5.7.1", "Recipient address rejected"}},
        {Reply::PolicyRefused, {550, "5.7.1", "Refused by the sending policy"}},
        {Reply::UnknownRecipient, {550, "5.1.1", "Recipient address unknown"}},
        {Reply::MessageTooBig, {552, "5.3.4", "Message size exceeds fixed limit"}},
        {Reply::NoValidRecipients, {554, "5.5.1", "No valid recipients"}},
        {Reply::MessageRefused, {554, "5.6.0", "Message refused"}},
    };
    return table.at(r);
}

std::string formatReply(Reply r, const std::string& detail) {
    const ReplyText& t = replyFor(r);
    std::string line = std::to_string(t.code);
    line += ' ';
    if (t.enhanced[0]) {
        line += t.enhanced;
        line += ' ';
    }
    std::string text = detail.empty() ? t.text : detail;
    for (char& c : text)  // no line break or control character from a detail reaches the client
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            c = ' ';
    return line + text + "\r\n";
}

}  // namespace demail::smtp
