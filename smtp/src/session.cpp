// One SMTP conversation. The order of checks follows RFC 5321 and Postfix's smtpd: sequence,
// syntax, TLS requirement, relay permission, then the gateway's policy.
#include "session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <strings.h>

#include <ctime>
#include <thread>
#include <vector>

namespace demail::smtp {
namespace {

std::string receivedDate() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000 (UTC)", &tm);
    return buf;
}

// How much of an over-long command line is skipped before the session gives up on the client.
constexpr std::size_t kCommandSkipLimit = 64 * 1024;

// Printable US-ASCII without space: what a HELO name (a domain or an address literal) and the
// decoded ESMTP parameters may hold, so that no client byte can reach a trace header, the spool's
// tab-separated records or an operator's terminal as a control character.
bool isPrintableToken(const std::string& s) {
    for (const char c : s)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            return false;
    return !s.empty();
}

bool hasControlCharacter(const std::string& s) {
    for (const char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return true;
    return false;
}

// RFC 3461 §4.1: NEVER, or a comma-separated list of SUCCESS, FAILURE and DELAY.
bool isValidNotify(std::string v) {
    for (char& c : v)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (v == "NEVER")
        return true;
    std::size_t start = 0;
    while (true) {
        const auto comma = v.find(',', start);
        const std::string item = v.substr(start, comma - start);
        if (item != "SUCCESS" && item != "FAILURE" && item != "DELAY")
            return false;
        if (comma == std::string::npos)
            return true;
        start = comma + 1;
    }
}

std::string base64Decode(const std::string& in, bool& ok) {
    ok = false;
    if (in.empty() || in.size() % 4 != 0)
        return {};
    std::string out(in.size(), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    if (n < 0)
        return {};
    std::size_t len = static_cast<std::size_t>(n);
    for (std::size_t i = in.size(); i > 0 && in[i - 1] == '='; --i)
        --len;
    out.resize(len);
    ok = true;
    return out;
}

}  // namespace

Session::Session(Server& server, int fd, std::string client)
    : server_(server), cfg_(server.config_), conn_(fd, server.config_.commandTimeout) {
    info_.clientAddress = std::move(client);
}

bool Session::reply(Reply r, const std::string& detail) {
    if (r != Reply::Ok && replyFor(r).code >= 500)
        ++errors_;
    return conn_.write(formatReply(r, detail));
}

void Session::audit(const std::string& event, const std::string& fields) {
    if (cfg_.audit)
        cfg_.audit("event=" + event + " client=" + info_.clientAddress +
                   (fields.empty() ? "" : " " + fields));
}

void Session::resetTransaction() {
    envelope_ = Envelope{};
    inTransaction_ = false;
}

void Session::run() {
    if (!conn_.write("220 " + cfg_.hostname + " ESMTP demail-gateway\r\n"))
        return;
    std::string line;
    while (true) {
        if (server_.stopping_) {
            reply(Reply::ShuttingDown);
            return;
        }
        if (errors_ >= cfg_.maxErrors) {
            reply(Reply::TooManyErrors);
            return;
        }
        // Command lines with ESMTP parameters; the whole line must arrive within commandTimeout.
        const auto r = conn_.readLine(line, 512 + 1000, kCommandSkipLimit,
                                      Connection::Clock::now() + cfg_.commandTimeout);
        if (r == Connection::LineResult::Eof)
            return;
        if (r == Connection::LineResult::Overflow) {
            audit("smtp_line_overflow", "phase=command");
            reply(Reply::LineOverflow);
            return;
        }
        if (r == Connection::LineResult::Timeout) {
            audit("smtp_timeout", "phase=command");
            reply(Reply::Timeout);
            return;
        }
        if (r == Connection::LineResult::BareNewline) {
            audit("smtp_bare_newline", "phase=command");
            reply(Reply::BareLineFeed);
            return;
        }
        if (r == Connection::LineResult::TooLong) {
            reply(Reply::LineTooLong);
            continue;
        }
        Command command = parseCommand(line);
        const bool goOn = handle(command);
        if (command.verb == "AUTH") {  // an initial response holds the credentials
            OPENSSL_cleanse(line.data(), line.size());
            OPENSSL_cleanse(command.argument.data(), command.argument.size());
        }
        if (!goOn)
            return;
    }
}

bool Session::handle(const Command& c) {
    const std::string& v = c.verb;
    if (v == "EHLO" || v == "HELO")
        return ehlo(c, v == "EHLO");
    if (v == "STARTTLS")
        return startTls(c);
    if (v == "AUTH")
        return auth(c);
    if (v == "MAIL")
        return mail(c);
    if (v == "RCPT")
        return rcpt(c);
    if (v == "DATA")
        return data(c);
    if (v == "RSET") {
        resetTransaction();
        return reply(Reply::Ok);
    }
    if (v == "NOOP")
        return reply(Reply::Ok);
    if (v == "QUIT") {
        reply(Reply::Bye);
        return false;
    }
    if (v == "VRFY")
        return reply(Reply::CannotVerify);
    if (v == "HELP")
        return reply(Reply::Help);
    if (v == "EXPN" || v == "TURN" || v == "ETRN" || v == "BDAT")
        return reply(Reply::NotImplemented);
    return reply(Reply::Unrecognized);
}

bool Session::ehlo(const Command& c, bool extended) {
    if (c.argument.empty())
        return reply(Reply::SyntaxError,
                     "Syntax: " + std::string(extended ? "EHLO" : "HELO") + " hostname");
    if (c.argument.size() > 255 || !isPrintableToken(c.argument))
        return reply(Reply::SyntaxError, "Invalid " + std::string(extended ? "EHLO" : "HELO") +
                                             " hostname: a domain or address literal is expected");
    info_.helo = c.argument;
    helloDone_ = true;
    resetTransaction();
    if (!extended)
        return conn_.write("250 " + cfg_.hostname + "\r\n");
    std::vector<std::string> ext = {
        cfg_.hostname, "PIPELINING",          "SIZE " + std::to_string(cfg_.maxMessageSize),
        "8BITMIME",    "ENHANCEDSTATUSCODES", "DSN"};
    if (server_.tls_ && !conn_.secure())
        ext.push_back("STARTTLS");
    if (conn_.secure() && server_.users_ && !server_.users_->empty())
        ext.push_back("AUTH PLAIN LOGIN");
    std::string out;
    for (std::size_t i = 0; i < ext.size(); ++i)
        out += "250" + std::string(i + 1 == ext.size() ? " " : "-") + ext[i] + "\r\n";
    return conn_.write(out);
}

bool Session::startTls(const Command& c) {
    if (!server_.tls_)
        return reply(Reply::NotImplemented);
    if (conn_.secure())
        return reply(Reply::BadSequence, "TLS already active");
    if (!c.argument.empty())
        return reply(Reply::SyntaxError, "STARTTLS takes no parameters");
    if (!reply(Reply::ReadyForTls))
        return false;
    std::string description;
    if (!conn_.startTls(server_.tls_, description,
                        Connection::Clock::now() + cfg_.tlsHandshakeTimeout))
        return false;  // handshake failed: nothing sensible can be said any more
    ++server_.counters_.tlsHandshakes;
    info_.tls = description;
    // RFC 3207 §4.2: forget everything learnt before TLS.
    helloDone_ = false;
    info_.helo.clear();
    info_.authUser.clear();
    resetTransaction();
    return true;
}

bool Session::auth(const Command& c) {
    if (!conn_.secure())
        return reply(Reply::AuthRequiresTls);
    if (!server_.users_ || server_.users_->empty())
        return reply(Reply::NotImplemented, "Authentication not enabled");
    if (!helloDone_ || !info_.authUser.empty() || inTransaction_)
        return reply(Reply::BadSequence);
    const auto slowOrBlock = [this](AuthThrottle::Verdict v) {
        if (v == AuthThrottle::Verdict::Slow)
            std::this_thread::sleep_for(std::chrono::seconds(2));
        return v == AuthThrottle::Verdict::Block;
    };
    if (slowOrBlock(server_.throttle_.begin(info_.clientAddress))) {
        audit("auth_throttled");
        reply(Reply::AuthThrottled);
        return false;
    }
    // Every copy of the credentials (base64 and decoded) is wiped when the attempt ends, however
    // it ends; so is what the line reader still holds of them.
    std::string user, password, response, decoded, second;
    bool outcome = true;  // a cancelled or malformed attempt is no failed guess
    struct Wipe {
        std::vector<std::string*> secrets;
        Session& session;
        ~Wipe() {
            for (std::string* s : secrets)
                OPENSSL_cleanse(s->data(), s->size());
            session.conn_.wipeConsumedInput();
        }
    } wipe{{&password, &response, &decoded, &second}, *this};
    struct EndAttempt {
        AuthThrottle& throttle;
        const std::string& client;
        const std::string& user;
        const bool& ok;
        ~EndAttempt() { throttle.end(client, user, ok); }
    } endAttempt{server_.throttle_, info_.clientAddress, user, outcome};

    const auto sp = c.argument.find(' ');
    std::string mech = c.argument.substr(0, sp);
    for (char& ch : mech)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    response = sp == std::string::npos ? "" : c.argument.substr(sp + 1);
    auto readResponse = [this](const std::string& challenge, std::string& out) {
        if (!conn_.write("334 " + challenge + "\r\n"))
            return false;
        return conn_.readLine(out, 12288, 0, Connection::Clock::now() + cfg_.commandTimeout) ==
               Connection::LineResult::Ok;
    };
    bool ok = false;
    if (mech == "PLAIN") {
        if (response.empty() && !readResponse("", response))
            return false;
        if (response == "*")
            return reply(Reply::SyntaxError, "Authentication cancelled");
        decoded = base64Decode(response, ok);
        const auto a = decoded.find('\0');
        const auto b = a == std::string::npos ? a : decoded.find('\0', a + 1);
        if (!ok || b == std::string::npos)
            return reply(Reply::SyntaxError, "Malformed AUTH PLAIN response");
        user = decoded.substr(a + 1, b - a - 1);
        password = decoded.substr(b + 1);
    } else if (mech == "LOGIN") {
        if (response.empty() && !readResponse("VXNlcm5hbWU6", response))
            return false;
        if (response == "*")
            return reply(Reply::SyntaxError, "Authentication cancelled");
        user = base64Decode(response, ok);
        if (!ok)
            return reply(Reply::SyntaxError, "Malformed AUTH LOGIN response");
        if (!readResponse("UGFzc3dvcmQ6", second))
            return false;
        if (second == "*")
            return reply(Reply::SyntaxError, "Authentication cancelled");
        password = base64Decode(second, ok);
        if (!ok)
            return reply(Reply::SyntaxError, "Malformed AUTH LOGIN response");
    } else {
        return reply(Reply::BadParameter, "Unsupported authentication mechanism");
    }
    if (slowOrBlock(server_.throttle_.checkUser(user))) {
        audit("auth_throttled", "user=" + auditValue(user));
        outcome = false;
        reply(Reply::AuthThrottled);
        return false;
    }
    outcome = server_.users_->verify(user, password);
    if (!outcome) {
        audit("auth_failed", "user=" + auditValue(user));
        ++server_.counters_.authFailures;
        return reply(Reply::AuthFailed);
    }
    info_.authUser = user;
    audit("auth_ok", "user=" + auditValue(user));
    return reply(Reply::AuthOk);
}

bool Session::mail(const Command& c) {
    if (!helloDone_)
        return reply(Reply::BadSequence, "Send EHLO first");
    if (inTransaction_)
        return reply(Reply::BadSequence, "Nested MAIL command");
    if (cfg_.requireTls && server_.tls_ && !conn_.secure())
        return reply(Reply::TlsRequired);
    std::string error;
    auto path = parsePath(c.argument, "FROM:", error);
    if (!path)
        return reply(error.find("expected") == 0 ? Reply::SyntaxError : Reply::BadAddress, error);
    for (const auto& [k, val] : path->params) {
        if (k == "SIZE") {
            std::uint64_t n = 0;
            try {
                n = std::stoull(val);
            } catch (const std::exception&) {
                return reply(Reply::SyntaxError, "Bad SIZE value");
            }
            if (n > cfg_.maxMessageSize)
                return reply(Reply::MessageTooBig);
        } else if (k == "BODY") {
            if (val != "7BIT" && val != "8BITMIME")
                return reply(Reply::BadParameter, "BODY must be 7BIT or 8BITMIME");
        } else if (k == "RET") {
            if (val != "FULL" && val != "HDRS")
                return reply(Reply::BadParameter, "RET must be FULL or HDRS");
            envelope_.ret = val;
        } else if (k == "ENVID") {
            auto d = decodeXtext(val);
            if (!d || d->size() > 100 || hasControlCharacter(*d))
                return reply(Reply::BadParameter, "Bad ENVID");
            envelope_.envid = *d;
        } else if (k == "AUTH") {
            // RFC 4954 §5: accepted and ignored.
        } else {
            return reply(Reply::BadParameter, "Unsupported parameter " + k);
        }
    }
    // A client without relay rights learns nothing of which senders are mapped (no enumeration).
    if (!server_.policy_.relayAllowed(info_)) {
        ++server_.counters_.refusedRecipients;
        audit("relay_denied", "from=" + auditValue(path->address));
        return reply(Reply::RelayDenied,
                     "Relay access denied: authenticate or send from a relay network");
    }
    const Decision d = server_.policy_.checkSender(info_, path->address);
    if (!d.accepted) {
        audit("sender_refused",
              "from=" + auditValue(path->address) + " auth=" + auditValue(info_.authUser) +
                  " reply=" + auditValue(formatReply(d.reply, d.detail).substr(0, 9)));
        return reply(d.reply, d.detail);
    }
    envelope_.sender = path->address;
    inTransaction_ = true;
    return reply(Reply::SenderOk);
}

bool Session::rcpt(const Command& c) {
    if (!inTransaction_)
        return reply(Reply::BadSequence, "Need MAIL before RCPT");
    std::string error;
    auto path = parsePath(c.argument, "TO:", error);
    if (!path)
        return reply(error.find("expected") == 0 ? Reply::SyntaxError : Reply::BadAddress, error);
    if (path->address.empty())
        return reply(Reply::BadAddress, "Null recipient not accepted");
    Recipient r{path->address, {}, {}};
    for (const auto& [k, val] : path->params) {
        if (k == "NOTIFY") {
            if (!isValidNotify(val))
                return reply(Reply::BadParameter, "Bad NOTIFY");
            r.notify = val;
        } else if (k == "ORCPT") {
            auto d = decodeXtext(val);
            if (!d || d->size() > 500 || hasControlCharacter(*d))
                return reply(Reply::BadParameter, "Bad ORCPT");
            r.orcpt = *d;
        } else {
            return reply(Reply::BadParameter, "Unsupported parameter " + k);
        }
    }
    if (!server_.policy_.relayAllowed(info_)) {
        ++server_.counters_.refusedRecipients;
        audit("relay_denied", "to=" + auditValue(r.address));
        return reply(Reply::RelayDenied, "<" + r.address + ">: Relay access denied");
    }
    if (envelope_.recipients.size() >= cfg_.maxRecipients)
        return reply(Reply::TooManyRecipients);
    const Decision d = server_.policy_.checkRecipient(info_, envelope_.sender, r.address);
    if (!d.accepted) {
        ++server_.counters_.refusedRecipients;
        return reply(d.reply, d.detail);
    }
    envelope_.recipients.push_back(r);
    return reply(Reply::RecipientOk);
}

bool Session::data(const Command& c) {
    if (!c.argument.empty())
        return reply(Reply::SyntaxError, "DATA takes no parameters");
    if (!inTransaction_)
        return reply(Reply::BadSequence, "Need MAIL command");
    if (envelope_.recipients.empty())
        return reply(Reply::NoValidRecipients);
    // Our turn in the DATA phase (see ServerConfig::maxConcurrentData), until this returns.
    server_.enterData();
    struct DataTurn {
        Server& server;
        ~DataTurn() { server.leaveData(); }
    } turn{server_};
    envelope_.session = info_;
    envelope_.arrival = std::chrono::system_clock::now();
    SinkError sinkError = SinkError::None;
    auto writer = server_.sink_.begin(envelope_, sinkError);
    if (!writer) {
        resetTransaction();
        return reply(sinkError == SinkError::NoSpace ? Reply::NoSpace : Reply::LocalError);
    }
    if (!reply(Reply::StartData))
        return false;

    // The trace header, Postfix style, recording TLS version and cipher.
    std::string received = "Received: from " + info_.helo + " (" + info_.helo + " [" +
                           info_.clientAddress + "])\r\n\tby " + cfg_.hostname +
                           " (demail-gateway) with " +
                           (conn_.secure() ? (info_.authUser.empty() ? "ESMTPS" : "ESMTPSA")
                                           : (info_.authUser.empty() ? "ESMTP" : "ESMTPA")) +
                           " id " + writer->queueId() + "\r\n";
    if (conn_.secure())
        received += "\t(using " + info_.tls + ")\r\n";
    // Like Postfix: name the recipient only when there is exactly one, so that the header, which
    // the provider copies to every recipient, never discloses a Bcc recipient to the others.
    received += envelope_.recipients.size() == 1
                    ? "\tfor <" + envelope_.recipients.front().address + ">; "
                    : std::string("\t");
    received += receivedDate() + "\r\n";
    bool sinkOk = writer->write(received.data(), received.size());

    // One deadline for the whole DATA phase, however the client paces its bytes.
    const auto deadline = Connection::Clock::now() + cfg_.dataTimeout;
    std::string line;
    std::uint64_t size = 0;
    bool tooBig = false;
    bool inHeader = true;   // until the first empty line
    std::string messageId;  // for the audit trail
    while (true) {
        // maxLineLength counts the CRLF; the reader counts the bytes before the LF, CR included.
        const auto r = conn_.readLine(line, cfg_.maxLineLength - 1, cfg_.maxMessageSize, deadline);
        if (r == Connection::LineResult::Eof)
            return false;  // the writer is dropped: nothing is kept
        if (r == Connection::LineResult::Overflow) {
            audit("smtp_line_overflow", "phase=data queue_id=" + writer->queueId());
            reply(Reply::MessageTooBig);
            return false;
        }
        if (r == Connection::LineResult::Timeout) {
            audit("smtp_timeout", "phase=data queue_id=" + writer->queueId());
            reply(Reply::Timeout);
            return false;
        }
        if (r == Connection::LineResult::BareNewline) {
            audit("smtp_bare_newline", "phase=data queue_id=" + writer->queueId());
            reply(Reply::BareLineFeed);
            return false;
        }
        if (r == Connection::LineResult::TooLong) {
            // Keep reading to the end of DATA, then refuse: RFC 5322 lines end at 998.
            sinkOk = false;
            lineTooLong_ = true;
            continue;
        }
        if (line == ".")
            break;
        if (inHeader) {
            if (line.empty())
                inHeader = false;
            else if (messageId.empty() && line.size() > 11 &&
                     strncasecmp(line.c_str(), "Message-ID:", 11) == 0)
                messageId = line.substr(11, 200);
        }
        const char* p = line.data();
        std::size_t n = line.size();
        if (n > 0 && p[0] == '.') {  // dot-unstuffing (RFC 5321 §4.5.2)
            ++p;
            --n;
        }
        size += n + 2;
        if (size > cfg_.maxMessageSize) {
            tooBig = true;
            continue;
        }
        if (sinkOk) {
            sinkOk = writer->write(p, n) && writer->write("\r\n", 2);
        }
    }
    const bool wasLong = lineTooLong_;
    lineTooLong_ = false;
    std::string to;
    for (std::size_t i = 0; i < envelope_.recipients.size() && i < 10; ++i)
        to += (i ? "," : "") + envelope_.recipients[i].address;
    if (envelope_.recipients.size() > 10)
        to += ",+" + std::to_string(envelope_.recipients.size() - 10);
    const auto first = messageId.find_first_not_of(" \t");
    messageId = first == std::string::npos ? "" : messageId.substr(first);
    const std::string who = "queue_id=" + writer->queueId() +
                            " from=" + auditValue(envelope_.sender) + " to=" + auditValue(to) +
                            " message_id=" + auditValue(messageId) +
                            " nrcpt=" + std::to_string(envelope_.recipients.size()) +
                            " auth=" + auditValue(info_.authUser) + " tls=" + auditValue(info_.tls);
    resetTransaction();
    Reply outcome = Reply::Queued;
    std::string detail;
    if (tooBig) {
        outcome = Reply::MessageTooBig;
    } else if (wasLong) {
        outcome = Reply::MessageRefused;
        detail = "Line longer than " + std::to_string(cfg_.maxLineLength - 2) +
                 " characters in the message";
    } else if (const Decision verdict = sinkOk ? writer->beforeCommit() : Decision::accept();
               !verdict.accepted) {
        outcome = verdict.reply;
        detail = verdict.detail;
    } else if (sinkOk && writer->commit()) {
        ++server_.counters_.accepted;
        detail = "Ok: queued as " + writer->queueId();
    } else {
        switch (writer->error()) {
            case SinkError::NoSpace:
                outcome = Reply::NoSpace;
                break;
            case SinkError::TooLarge:
                outcome = Reply::MessageTooBig;
                break;
            case SinkError::Refused:
                outcome = Reply::MessageRefused;
                detail = writer->errorText();
                break;
            default:
                outcome = Reply::LocalError;
        }
    }
    const std::string answer = formatReply(outcome, detail);
    audit(outcome == Reply::Queued ? "accepted" : "refused",
          who + " size=" + std::to_string(size) +
              " reply=" + auditValue(answer.substr(0, answer.size() - 2)));
    return reply(outcome, detail);
}

}  // namespace demail::smtp
