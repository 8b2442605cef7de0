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
        std::string internal, account, extra;
        if (!(f >> internal))
            continue;
        if (!(f >> account) || (f >> extra) || !connector::isValidDeMailAddress(account) ||
            (internal[0] != '@' && internal.find('@') == std::string::npos))
            return path + " line " + std::to_string(n) +
                   ": expected '<internal address or @domain> <De-Mail account>'";
        map.entries.push_back({connector::toLower(internal), connector::toLower(account)});
    }
    out = std::move(map);
    return {};
}

}  // namespace demail::gateway
