// The [certpromote] section of gateway.ini (docs/configuration.md): where the machine
// certificate store is and who may read it. Declared here, next to the store; the gateway reads
// it too (the store's certificates are the ones the card's key must match).
#pragma once

#include <string>
#include <vector>

#include "demail/config/schema.h"

namespace demail::certpromote {

struct CertPromoteConfig {
    std::string store = "/var/lib/demail-gateway/certs";
    std::string group = "demail-gateway";  // owning group of the store files
    std::vector<std::string> readUsers;    // extra users granted read by ACL
    std::vector<std::string> readGroups;   // extra groups granted read by ACL
    std::string caFile;                    // chain check; empty: none
};

const config::Section<CertPromoteConfig>& certpromoteSection();

}  // namespace demail::certpromote
