#include "demail/gateway/sent_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "demail/gateway/durable_file.h"
#include "demail/gateway/spool.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {
namespace fs = std::filesystem;

namespace {

// 1024 (private-id) + 998 (Message-ID) + recipients and ids, escaped: far below this.
constexpr std::size_t kMaxRecordSize = 256 * 1024;

std::string escape(const std::string& v) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (const char c : v) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '%') {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += c;
        }
    }
    return out;
}

std::string unescape(const std::string& v) {
    const auto val = [](char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    };
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size() && val(v[i + 1]) >= 0 && val(v[i + 2]) >= 0) {
            out += static_cast<char>(val(v[i + 1]) * 16 + val(v[i + 2]));
            i += 2;
        } else {
            out += v[i];
        }
    }
    return out;
}

// One field of a record: "key=value\n", the value escaped; nothing for an empty value.
std::string fieldLine(const char* key, const std::string& v) {
    return v.empty() ? std::string() : std::string(key) + "=" + escape(v) + "\n";
}

}  // namespace

std::string encodeSentRecord(const SentRecord& r) {
    std::string out = escape(r.sender) + "\n";
    const auto line = [&](const char* key, const std::string& v) { out += fieldLine(key, v); };
    line("account", r.account);
    line("private-id", r.privateId);
    line("message-id", r.messageId);
    for (const auto& x : r.recipients)
        line("recipient", x);
    for (const auto& x : r.providerIds)
        line("provider-id", x);
    return out;
}

std::optional<SentRecord> decodeSentRecord(const std::string& text) {
    // Only whole lines: an append cut short by a crash leaves a line without its LF.
    const auto lastLf = text.rfind('\n');
    std::istringstream in(lastLf == std::string::npos ? text : text.substr(0, lastLf + 1));
    SentRecord r;
    std::string line;
    if (!std::getline(in, line) || line.empty())
        return std::nullopt;
    r.sender = unescape(line);
    while (std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos)
            continue;
        const std::string key = line.substr(0, eq), value = unescape(line.substr(eq + 1));
        if (key == "account")
            r.account = value;
        else if (key == "private-id")
            r.privateId = value;
        else if (key == "message-id")
            r.messageId = value;
        else if (key == "recipient")
            r.recipients.push_back(value);
        else if (key == "provider-id")
            r.providerIds.push_back(value);
    }
    return r;
}

SentJournal::SentJournal(std::string dir, std::chrono::seconds keep)
    : dir_(std::move(dir)), keep_(keep) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    prune();
}

std::size_t SentJournal::prune() {
    return pruneOlderThan(dir_, keep_);
}

void SentJournal::record(const std::string& queueId, const std::string& sender) {
    SentRecord r;
    r.sender = sender;
    record(queueId, r);
}

void SentJournal::record(const std::string& queueId, const SentRecord& record) {
    if (Spool::validId(queueId))
        writeFileDurably(dir_ + "/" + queueId, encodeSentRecord(record));
}

void SentJournal::addProviderIds(const std::string& queueId, const std::vector<std::string>& ids) {
    if (!Spool::validId(queueId) || ids.empty())
        return;
    std::string lines;
    for (const auto& id : ids)
        lines += fieldLine("provider-id", id);
    // No record to add to (removed by hand, or a symlink in its place): nothing is written.
    const int fd =
        ::open((dir_ + "/" + queueId).c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    const ssize_t n = ::write(fd, lines.data(), lines.size());
    (void)n;  // a short write leaves a torn last line, which decodeSentRecord ignores
    ::close(fd);
}

std::optional<SentRecord> SentJournal::lookup(const std::string& queueId) const {
    if (!Spool::validId(queueId))
        return std::nullopt;
    const auto text = readSmallFile(dir_ + "/" + queueId, kMaxRecordSize);
    if (!text)
        return std::nullopt;
    return decodeSentRecord(*text);
}

std::optional<std::string> SentJournal::senderOf(const std::string& queueId) const {
    if (auto r = lookup(queueId))
        return r->sender;
    return std::nullopt;
}

}  // namespace demail::gateway
