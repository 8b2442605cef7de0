// Internal to smtp/: the state of one SMTP conversation.
#pragma once

#include "connection.h"
#include "demail/smtp/command.h"
#include "demail/smtp/server.h"

namespace demail::smtp {

class Session {
  public:
    Session(Server& server, int fd, std::string client);
    void run();

  private:
    bool handle(const Command& c);  // false: close the connection
    bool ehlo(const Command& c, bool extended);
    bool startTls(const Command& c);
    bool auth(const Command& c);
    bool mail(const Command& c);
    bool rcpt(const Command& c);
    bool data(const Command& c);
    bool reply(Reply r, const std::string& detail = {});
    void resetTransaction();
    // One audit line (ServerConfig::audit): "event=<event> client=<ip> <fields>".
    void audit(const std::string& event, const std::string& fields = {});

    Server& server_;
    const ServerConfig& cfg_;
    Connection conn_;
    SessionInfo info_;
    Envelope envelope_;
    bool helloDone_ = false;
    bool inTransaction_ = false;
    bool lineTooLong_ = false;
    int errors_ = 0;
};

}  // namespace demail::smtp
