// The spool as the dispatcher's outbound store: queued messages, their envelopes and bodies, and
// the dispatch state files beside them (gateway/spool.h has the layout).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "demail/gateway/outbound.h"
#include "demail/gateway/spool.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {

class SpoolOutboundStore final : public OutboundStore {
  public:
    explicit SpoolOutboundStore(Spool& spool);
    std::vector<std::string> queued() override;
    std::optional<Envelope> envelope(const std::string& id) override;
    std::unique_ptr<std::istream> body(const std::string& id) override;
    DispatchState state(const std::string& id) override;
    void saveState(const std::string& id, const DispatchState& state) override;
    void finish(const std::string& id) override;
    // The state file's inode and modification time: every write (ours by rename, demailctl's)
    // changes it; 0 when there is no state file yet.
    std::optional<std::uint64_t> stateStamp(const std::string& id) override;

  private:
    Spool& spool_;
    DispatchStateFiles states_;
};

}  // namespace demail::gateway
