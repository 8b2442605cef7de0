#include "demail/certpromote/config.h"

namespace demail::certpromote {

const config::Section<CertPromoteConfig>& certpromoteSection() {
    using C = CertPromoteConfig;
    static const config::Section<CertPromoteConfig> section{
        "certpromote",
        {
            config::absoluteDir("store", &C::store),
            config::text("group", &C::group),
            config::nameList("read_users", &C::readUsers, "user or group names"),
            config::nameList("read_groups", &C::readGroups, "user or group names"),
            config::readableFile("ca_file", &C::caFile),
        }};
    return section;
}

}  // namespace demail::certpromote
