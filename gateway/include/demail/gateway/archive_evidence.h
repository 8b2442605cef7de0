// The gateway's evidence kept in the archive module (archive/README.md): one record per
// submission ("submitted", the bytes), per provider answer ("accepted"/"refused", no bytes) and
// per retrieval ("retrieved", the bytes as the provider handed them over). A message retried after
// an outage is archived once per process, not once per attempt.
#pragma once

#include <mutex>
#include <set>

#include "demail/archive/archive.h"
#include "demail/gateway/evidence.h"

namespace demail::gateway {

class ArchiveEvidence final : public Evidence {
  public:
    explicit ArchiveEvidence(archive::Archive& archive) : archive_(archive) {}
    std::string submitting(const Envelope& envelope, const std::string& account,
                           std::string_view head, std::istream* body,
                           std::uint64_t bodyLength) override;
    void answered(const Envelope& envelope, const std::string& account, bool accepted,
                  const std::vector<std::string>& providerIds, const std::string& detail) override;
    std::string retrieved(const InboxItem& item, const std::string& bytes,
                          const std::string& verification, std::string& record) override;

  private:
    archive::Archive& archive_;
    std::mutex mutex_;
    std::set<std::string> kept_;  // queue ids whose bytes are archived, until answered
};

}  // namespace demail::gateway
