// demailctl queue list | show ID | retry ID | delete ID: the queue for a person, like mailq and
// postqueue. Exit codes per DESIGN.md: 0 ok, 1 failed (e.g. no such message), 2 usage.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace demail::gateway {

int runQueueCommand(const std::string& spoolDir, const std::vector<std::string>& args,
                    std::ostream& out, std::ostream& err);

}  // namespace demail::gateway
