// demailctl queue list | show ID | retry ID | delete ID: the queue for a person, like mailq and
// postqueue; import DIR: the queue of a peer gateway that stays down (docs/operations.md,
// "Redundancy"). Exit codes per DESIGN.md: 0 ok, 1 failed (e.g. no such
// message), 2 usage.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace demail::gateway {

// A spool or state field as it may go to an operator's terminal. Envelope fields come from SMTP
// clients (HELO, ORCPT, ENVID) and state files from the service: control characters (ESC, C1
// controls, DEL, CR, NUL), invalid UTF-8 and bidirectional overrides become \xNN, a backslash
// becomes \\. TAB and printable UTF-8 stay as they are.
std::string printable(std::string_view text);

int runQueueCommand(const std::string& spoolDir, const std::vector<std::string>& args,
                    std::ostream& out, std::ostream& err);

}  // namespace demail::gateway
