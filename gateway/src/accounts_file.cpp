#include "demail/gateway/accounts_file.h"

#include <fstream>
#include <sstream>

#include "demail/connector/message/header_block.h"

namespace demail::gateway {

std::string loadAccountsFile(const std::string& path, connector::AccountMap& out) {
    std::ifstream in(path);
    if (!in)
        return "cannot read accounts file " + path;
    connector::AccountMap map;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        const auto hash = line.find('#');
        if (hash != std::string::npos)
            line.resize(hash);
        std::istringstream f(line);
        std::string internal, account, flag, extra;
        if (!(f >> internal))
            continue;
        f >> account >> flag;
        const bool personal = flag == "personal";
        if (account.empty() || (!flag.empty() && !personal) || (f >> extra) ||
            !connector::isValidDeMailAddress(account) ||
            (internal[0] != '@' && internal.find('@') == std::string::npos) ||
            (personal && internal[0] == '@'))
            return path + " line " + std::to_string(n) +
                   ": expected '<internal address or @domain> <De-Mail account>' or "
                   "'<person's address> <De-Mail account> personal'";
        if (personal)  // receives the account's Persönlich mail; sends as the account too
            map.persons.push_back({connector::toLower(internal), connector::toLower(account)});
        map.entries.push_back({connector::toLower(internal), connector::toLower(account)});
    }
    out = std::move(map);
    return {};
}

}  // namespace demail::gateway
