#include "demail/gateway/smtp_delivery.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace demail::gateway {
namespace {

struct CurlGlobal {
    CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

void ensureCurlGlobal() {
    static std::once_flag once;
    static std::unique_ptr<CurlGlobal> global;
    std::call_once(once, [] { global = std::make_unique<CurlGlobal>(); });
}

std::size_t readFromStream(char* buffer, std::size_t size, std::size_t nitems, void* userdata) {
    auto* in = static_cast<std::istream*>(userdata);
    in->read(buffer, static_cast<std::streamsize>(size * nitems));
    return static_cast<std::size_t>(in->gcount());
}

// Collects libcurl's protocol trace so that the relay's last reply text reaches the detail line.
int collectReplies(CURL*, curl_infotype type, char* data, std::size_t size, void* userdata) {
    if (type == CURLINFO_HEADER_IN) {
        auto* last = static_cast<std::string*>(userdata);
        std::string line(data, size);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
            line.pop_back();
        // The reply to QUIT says nothing about the message; keep the one before it.
        if (line.rfind("221", 0) != 0)
            *last = line;
    }
    return 0;
}

std::string angle(const std::string& address) {
    return "<" + address + ">";
}

}  // namespace

DeliveryResult deliverBySmtp(const SmtpRelayTarget& target, const std::string& mailFrom,
                             const std::vector<std::string>& recipients, std::istream& message) {
    ensureCurlGlobal();
    DeliveryResult result;
    const std::string where = target.host + ":" + std::to_string(target.port);
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
    if (!curl) {
        result.detail = "cannot initialise libcurl";
        return result;
    }
    CURL* c = curl.get();
    // smtp:// plus STARTTLS; the path part is the EHLO name.
    // An IPv6 relay ([delivery] relay = [::1]:25) is written in brackets, as URLs want it.
    const bool v6 = target.host.find(':') != std::string::npos;
    const std::string url = "smtp://" + (v6 ? "[" + target.host + "]" : target.host) + ":" +
                            std::to_string(target.port) + "/" +
                            (target.heloName.empty() ? "localhost" : target.heloName);
    curl_slist* rcpt = nullptr;
    for (const auto& r : recipients)
        rcpt = curl_slist_append(rcpt, angle(r).c_str());
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> rcptGuard(rcpt,
                                                                          &curl_slist_free_all);
    std::string lastReply;

    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, angle(mailFrom).c_str());
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &readFromStream);
    curl_easy_setopt(c, CURLOPT_READDATA, &message);
    curl_easy_setopt(
        c, CURLOPT_USE_SSL,
        target.requireTls ? static_cast<long>(CURLUSESSL_ALL) : static_cast<long>(CURLUSESSL_TRY));
    curl_easy_setopt(c, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    if (target.caFile.empty()) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        curl_easy_setopt(c, CURLOPT_CAINFO, target.caFile.c_str());
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(target.connectTimeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(target.totalTimeout.count()));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, &collectReplies);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, &lastReply);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);  // feeds collectReplies; prints nothing itself

    const CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.replyCode);

    if (rc == CURLE_OK) {
        result.outcome = DeliveryOutcome::Delivered;
        result.detail = "relay " + where + " said " + lastReply;
        return result;
    }
    if (rc == CURLE_USE_SSL_FAILED) {
        result.outcome = DeliveryOutcome::Temporary;
        result.detail = "relay " + where +
                        " does not offer STARTTLS and [delivery] tls = required; not delivered";
        return result;
    }
    if (result.replyCode >= 500 && result.replyCode < 600) {
        result.outcome = DeliveryOutcome::Permanent;
        result.detail = "relay " + where + " said " + lastReply;
        return result;
    }
    result.outcome = DeliveryOutcome::Temporary;
    if (result.replyCode >= 400)
        result.detail = "relay " + where + " said " + lastReply;
    else
        result.detail = "relay " + where + ": " + curl_easy_strerror(rc);
    return result;
}

}  // namespace demail::gateway
