// `demailctl archive list|show|export|verify`: the evidence archive for the operator and the
// auditor (docs/operations.md "The evidence archive"). Reads only; never changes a record.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace demail::gateway {

// Exit codes: 0 ok (verify: the chain and every record's bytes check out), 1 verify found a
// problem or a record is missing, 2 usage.
int runArchiveCommand(const std::string& dir, const std::vector<std::string>& args,
                      std::ostream& out, std::ostream& err);

}  // namespace demail::gateway
