#include "demail/gateway/archive_evidence.h"

#include <Poco/Logger.h>

#include "demail/gateway/inbound.h"

namespace demail::gateway {

std::string ArchiveEvidence::submitting(const Envelope& envelope, const std::string& account,
                                        std::string_view head, std::istream* body,
                                        std::uint64_t bodyLength) {
    {
        std::lock_guard lock(mutex_);
        if (kept_.count(envelope.queueId))
            return {};
    }
    std::string recipients;
    for (const auto& r : envelope.recipients)
        recipients += (recipients.empty() ? "" : ",") + r.address;
    // The body is read for the archive and then again for the provider: back to where it was.
    const auto start = body ? body->tellg() : std::streampos(-1);
    if (body && start == std::streampos(-1))
        return "the queued body cannot be re-read";
    const auto e = archive_.append("submitted",
                                   {{"queue_id", envelope.queueId},
                                    {"account", account},
                                    {"sender", envelope.sender},
                                    {"recipients", recipients}},
                                   {head, body, bodyLength});
    if (body) {
        body->clear();
        body->seekg(start);
    }
    if (e.empty()) {
        std::lock_guard lock(mutex_);
        kept_.insert(envelope.queueId);
    }
    return e;
}

void ArchiveEvidence::answered(const Envelope& envelope, const std::string& account, bool accepted,
                               const std::vector<std::string>& providerIds,
                               const std::string& detail) {
    {
        std::lock_guard lock(mutex_);
        kept_.erase(envelope.queueId);
    }
    std::string ids;
    for (const auto& id : providerIds)
        ids += (ids.empty() ? "" : ",") + id;
    archive::Fields f{{"queue_id", envelope.queueId}, {"account", account}, {"detail", detail}};
    if (accepted)
        f["provider_message_ids"] = ids;
    if (const auto e = archive_.append(accepted ? "accepted" : "refused", f, {}); !e.empty())
        Poco::Logger::get("archive").error("event=archive_failed queue_id=" + envelope.queueId +
                                           " reason=\"" + e + "\"");
}

std::string ArchiveEvidence::retrieved(const InboxItem& item, const std::string& bytes,
                                       const std::string& verification, std::string& record) {
    archive::Record r;
    archive::Fields fields = {{"account", item.account}, {"provider_id", item.id}};
    if (!verification.empty())
        fields["verification"] = verification;
    auto e = archive_.append("retrieved", fields, {bytes, nullptr, 0}, &r);
    if (e.empty())
        record = r.time + "; archive=" + std::to_string(r.seq) +
                 (r.clockSynchronized ? "" : "; clock=unsynchronised");
    return e;
}

}  // namespace demail::gateway
