#include "demail/gateway/spool_quarantine.h"

#include <Poco/Base64Encoder.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/LocalDateTime.h>
#include <Poco/Logger.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "demail/connector/message/inbound_prepare.h"
#include "demail/gateway/durable_file.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {
namespace {
Poco::Logger& log() {
    return Poco::Logger::get("inbound");
}
}  // namespace
namespace fs = std::filesystem;

SpoolQuarantine::SpoolQuarantine(std::string dir, std::string postmaster, InboundDelivery& relay,
                                 std::string gatewayName)
    : dir_(std::move(dir)),
      postmaster_(std::move(postmaster)),
      relay_(relay),
      gatewayName_(std::move(gatewayName)) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
}

std::size_t SpoolQuarantine::size() {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec))
        if (e.path().extension() == ".reason")
            ++n;
    return n;
}

bool SpoolQuarantine::park(const InboxItem& item, const std::string* raw, const std::string& reason,
                           std::string& error) {
    std::string name;  // provider ids are checked by the transport; be strict here as well
    for (char ch : item.id)
        name += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_') ? ch : '_';
    name = name.substr(0, 120);
    const std::string base = dir_ + "/" + name;
    const std::string content = raw ? *raw : "(not fetched) " + reason + "\n";
    error = writeFileDurably(base + (raw ? ".eml" : ".txt"), content);
    if (error.empty())
        error = writeFileDurably(
            base + ".reason",
            "provider_id=" + name + "\naccount=" +
                (connector::isSmtpMailbox(item.account) ? item.account : std::string("invalid")) +
                "\nreason=" + reason + "\n");
    if (!error.empty())
        return false;
    if (!connector::isSmtpMailbox(postmaster_))
        return true;
    // The notice: our own text plus the raw bytes as base64, 76-column lines. Persönlich mail is
    // for its addressee alone: the postmaster is told that it is held, not what it says.
    const bool personal = reason.rfind(kHeldPersonal, 0) == 0;
    std::ostringstream b64;
    {
        Poco::Base64Encoder enc(b64);
        enc.rdbuf()->setLineLength(76);
        enc << (personal
                    ? "(Persönlich: the content is held in " + dir_ + " for its addressee alone)\n"
                    : content);
        enc.close();
    }
    std::string encoded;
    for (char ch : b64.str())  // Poco ends lines with LF; the relay gets CRLF
        encoded += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
    std::string why;
    for (char ch : reason)
        why += (static_cast<unsigned char>(ch) < 32) ? ' ' : ch;
    const std::string boundary = "=_demail_quarantine_" + name;
    const std::string notice =
        "From: De-Mail gateway <postmaster@" + gatewayName_ + ">\r\nTo: <" + postmaster_ +
        ">\r\nSubject: De-Mail inbound item " + name + " quarantined\r\nDate: " +
        Poco::DateTimeFormatter::format(Poco::LocalDateTime(),
                                        Poco::DateTimeFormat::RFC1123_FORMAT) +
        "\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"" +
        boundary + "\"\r\n\r\n--" + boundary +
        "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "An inbound De-Mail item was not delivered because it is unsafe or could not be\r\n"
        "delivered after repeated attempts. It was acknowledged at the provider and is kept\r\n"
        "in " +
        dir_ +
        " (the attachment holds the bytes as received).\r\n\r\n"
        "Provider id: " +
        name + "\r\nReason: " + why.substr(0, 900) + "\r\n--" + boundary +
        "\r\nContent-Type: application/octet-stream; name=\"" + name + (raw ? ".eml" : ".txt") +
        "\"\r\nContent-Disposition: attachment; filename=\"" + name + (raw ? ".eml" : ".txt") +
        "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + encoded + "\r\n--" + boundary +
        "--\r\n";
    const DeliveryResult r = relay_.deliver({"", {postmaster_}, "quarantine", {}, {}, {}}, notice);
    if (!r.delivered())  // the file is kept either way; the health alarm says where
        log().error("event=quarantine_notice_failed provider_id=" + name + " reason=\"" + r.detail +
                    "\"");
    return true;
}

}  // namespace demail::gateway
