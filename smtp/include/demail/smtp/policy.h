// What the intake asks of the rest of the gateway. smtp/ knows SMTP and nothing of De-Mail: the
// gateway implements these (relay networks, De-Mail recipients and senders, the spool).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "demail/smtp/reply.h"

namespace demail::smtp {

struct Decision {
    bool accepted = true;
    Reply reply = Reply::Ok;  // when refused
    std::string detail;       // one line for the reply text
    static Decision accept() { return {}; }
    static Decision refuse(Reply r, std::string d) { return {false, r, std::move(d)}; }
};

struct SessionInfo {
    std::string clientAddress;
    std::string helo;
    std::string authUser;  // empty if not authenticated
    std::string tls;       // "TLSv1.3 TLS_AES_256_GCM_SHA384 256/256" or empty
};

class Policy {
  public:
    virtual ~Policy() = default;
    virtual bool relayAllowed(const SessionInfo& s) = 0;  // relay_networks or AUTH
    virtual Decision checkSender(const SessionInfo& s, const std::string& sender) = 0;
    virtual Decision checkRecipient(const SessionInfo& s, const std::string& sender,
                                    const std::string& recipient) = 0;
};

struct Recipient {
    std::string address;
    std::string notify;  // RFC 3461
    std::string orcpt;
};

struct Envelope {
    std::string sender;
    std::vector<Recipient> recipients;
    std::string ret, envid;
    SessionInfo session;
    std::chrono::system_clock::time_point arrival;
};

enum class SinkError { None, NoSpace, TooLarge, Io, Refused };

class MessageWriter {
  public:
    virtual ~MessageWriter() = default;  // without commit(): discarded
    virtual const std::string& queueId() const = 0;
    virtual bool write(const char* data, std::size_t n) = 0;
    // At the end of DATA, before commit(): the last word on the message as a whole (its header
    // section, say). A refusal is the reply to DATA; the writer is then dropped.
    virtual Decision beforeCommit() { return Decision::accept(); }
    // Durable when it returns true; the 250 follows.
    virtual bool commit() = 0;
    virtual SinkError error() const = 0;
    virtual std::string errorText() const = 0;
};

class MessageSink {
  public:
    virtual ~MessageSink() = default;
    // Nothing if the message cannot be started (error explains).
    virtual std::unique_ptr<MessageWriter> begin(const Envelope& envelope, SinkError& error) = 0;
};

}  // namespace demail::smtp
