// The envelope of a queued message: one type from the spool record the intake writes to the
// dispatcher, the submitter and the DSNs that read it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace demail::gateway {

struct Recipient {
    std::string address;
    std::string notify;  // RFC 3461 NOTIFY as given, empty if none
    std::string orcpt;   // RFC 3461 ORCPT as given, empty if none
};

struct Envelope {
    std::string queueId;  // set when read back from the spool
    std::string sender;   // MAIL FROM; empty for <>
    std::vector<Recipient> recipients;
    std::string ret;                                       // RFC 3461 RET: FULL, HDRS or empty
    std::string envid;                                     // RFC 3461 ENVID or empty
    std::string clientAddress, clientHelo, authUser, tls;  // for logs and the Received trail
    std::chrono::system_clock::time_point arrival;
    std::uint64_t size = 0;  // body bytes; set by the spool
};

}  // namespace demail::gateway
