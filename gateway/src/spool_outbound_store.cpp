#include "demail/gateway/spool_outbound_store.h"

#include <sys/stat.h>

#include <Poco/Logger.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "demail/gateway/spool_layout.h"

namespace demail::gateway {

namespace fs = std::filesystem;

SpoolOutboundStore::SpoolOutboundStore(Spool& spool)
    : spool_(spool), states_(spool_layout::path(spool.dir(), spool_layout::kDispatch)) {}

std::vector<std::string> SpoolOutboundStore::queued() {
    return spool_.list();
}

std::optional<Envelope> SpoolOutboundStore::envelope(const std::string& id) {
    const auto e = spool_.envelope(id);
    std::error_code ec;
    if (!e && !fs::exists(spool_layout::path(spool_.dir(), spool_layout::kQueue) + "/" + id, ec))
        return std::nullopt;  // gone (sent or deleted meanwhile): nothing to report
    if (!e) {
        Poco::Logger::get("queue").error("event=unreadable queue_id=" + id + " action=corrupt");
        spool_.moveToCorrupt(id);
        return std::nullopt;
    }
    Envelope o = *e;
    o.queueId = id;
    return o;
}

std::unique_ptr<std::istream> SpoolOutboundStore::body(const std::string& id) {
    return spool_.body(id);
}

DispatchState SpoolOutboundStore::state(const std::string& id) {
    return states_.load(id);
}

void SpoolOutboundStore::saveState(const std::string& id, const DispatchState& s) {
    const std::string e = states_.save(id, s);
    if (!e.empty())
        Poco::Logger::get("queue").error("event=state_not_saved queue_id=" + id + " error=\"" + e +
                                         "\"");
}

std::optional<std::uint64_t> SpoolOutboundStore::stateStamp(const std::string& id) {
    struct stat st {};
    if (::stat(states_.path(id).c_str(), &st) != 0)
        return errno == ENOENT ? std::optional<std::uint64_t>(0) : std::nullopt;
    const auto mtimeNs = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1000000000ULL +
                         static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
    return (static_cast<std::uint64_t>(st.st_ino) << 40) ^ mtimeNs ^ 1;
}

void SpoolOutboundStore::finish(const std::string& id) {
    spool_.remove(id);
    states_.remove(id);
}

}  // namespace demail::gateway
