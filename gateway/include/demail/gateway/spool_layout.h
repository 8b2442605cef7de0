// The spool directory ([queue] dir), in one place, like Postfix's mail_queue.h. Everything the
// gateway keeps on disk lives here; each directory has one writer (the service named) and every
// write is crash-safe (gateway/durable_file.h: temporary file, fsync, rename, directory fsync).
//
//   tmp/<id>                  a message being received; left by a crash: removed at start (intake)
//   queue/<id>                a message answered 250, until submitted or bounced (intake, outbound)
//   corrupt/<id>              a queue file that cannot be read, kept for the operator (outbound)
//   free/<old id>             an emptied file of a removed message, reused by the next one
//                             (spool_free_pool.h; outbound and demailctl put, intake takes)
//   dispatch/<id>             its dispatch state: attempts, next try, last error (outbound)
//   sent/<id>                 who sent it, after submission, for its confirmations; pruned after
//                             [queue] sent_retention (outbound, inbound reads, housekeeping)
//   inbound-delivered/<h>     inbound items delivered to the relay, h = SHA-256 of the provider
//                             id; pruned after [queue] inbound_retention (inbound, housekeeping)
//   inbound-attempts/<h>      failed attempts per inbound item, and `inflight`, the item in hand
//                             (a crash counts against it) (inbound)
//   inbound-quarantine/<id>.eml|.txt + .reason   parked inbound items, until the operator
//                             removes them (inbound)
//   sending-counts/<date>     today's accepted messages per sender and account, one line each,
//                             for the daily limits of [sending] (intake)
//   card-pin-rejected(.key)   the PIN rejection record, the default of [card]
//                             pin_rejection_file (card supervisor, demailctl provider probe)
#pragma once

#include <string>

namespace demail::gateway::spool_layout {

inline constexpr const char* kTmp = "tmp";
inline constexpr const char* kQueue = "queue";
inline constexpr const char* kCorrupt = "corrupt";
inline constexpr const char* kFree = "free";
inline constexpr const char* kDispatch = "dispatch";
inline constexpr const char* kSent = "sent";
inline constexpr const char* kInboundDelivered = "inbound-delivered";
inline constexpr const char* kInboundAttempts = "inbound-attempts";
inline constexpr const char* kInboundQuarantine = "inbound-quarantine";
inline constexpr const char* kSendingCounts = "sending-counts";
inline constexpr const char* kPinRejection = "card-pin-rejected";

inline std::string path(const std::string& spoolDir, const char* entry) {
    return spoolDir + "/" + entry;
}

}  // namespace demail::gateway::spool_layout
