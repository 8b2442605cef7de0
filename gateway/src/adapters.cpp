#include "demail/gateway/adapters.h"

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <Poco/Base64Encoder.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/LocalDateTime.h>
#include <Poco/Logger.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "demail/connector/message/demail_headers.h"
#include "demail/connector/message/header_block.h"
#include "demail/connector/message/inbound.h"
#include "demail/gateway/durable_file.h"

namespace demail::gateway {
namespace {
Poco::Logger& log() {
    return Poco::Logger::get("inbound");
}
}  // namespace
namespace fs = std::filesystem;

ProviderConnectionPool::ProviderConnectionPool(Factory factory, std::size_t connections)
    : factory_(std::move(factory)), slots_(std::max<std::size_t>(connections, 1)) {}

template <typename Call>
auto ProviderConnectionPool::withConnection(Call call) {
    Slot* slot = nullptr;
    {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] {
            if (resetting_)
                return false;
            // A connection already open first: kept alive, it costs no card signature.
            for (auto& s : slots_)
                if (!s.busy && s.transport)
                    return (slot = &s), true;
            for (auto& s : slots_)
                if (!s.busy)
                    return (slot = &s), true;
            return false;
        });
        if (!slot->transport) {
            std::string why;
            slot->transport = factory_(why, lastSession_);  // no I/O until the first call
            if (!slot->transport)
                return decltype(call(*slot->transport))(connector::TransportError{
                    connector::ErrorKind::OperatorAction, "client_credentials",
                    why.empty() ? "the client key is not ready" : why, 0});
        }
        slot->busy = true;
    }
    auto result = call(*slot->transport);
    auto session = slot->transport->tlsSession();
    {
        std::lock_guard lock(mutex_);
        slot->busy = false;
        if (session && SSL_SESSION_is_resumable(session->sslSession()) == 1)
            lastSession_ = session;
    }
    changed_.notify_all();
    return result;
}

void ProviderConnectionPool::retire(Slot& slot) {
    if (!slot.transport)
        return;
    retired_.cardSignatures += slot.transport->counters().cardSignatures;
    retired_.fullHandshakes += slot.transport->counters().fullHandshakes;
    retired_.resumedHandshakes += slot.transport->counters().resumedHandshakes;
    slot.transport.reset();
}

void ProviderConnectionPool::reset() {
    std::unique_lock lock(mutex_);
    // No new call starts; the ones in flight finish with the old key first (the card reload
    // frees it right after this returns).
    changed_.wait(lock, [&] { return !resetting_; });
    resetting_ = true;
    changed_.wait(lock, [&] {
        for (const auto& s : slots_)
            if (s.busy)
                return false;
        return true;
    });
    for (auto& s : slots_)
        retire(s);
    lastSession_ = nullptr;  // established with the old key (or card): never resumed again
    resetting_ = false;
    lock.unlock();
    changed_.notify_all();
}

ProviderConnectionPool::Totals ProviderConnectionPool::totals() {
    std::lock_guard lock(mutex_);
    Totals t = retired_;
    for (const auto& s : slots_)
        if (s.transport) {  // counters are atomics: safe to read while a call runs
            t.cardSignatures += s.transport->counters().cardSignatures;
            t.fullHandshakes += s.transport->counters().fullHandshakes;
            t.resumedHandshakes += s.transport->counters().resumedHandshakes;
        }
    return t;
}

connector::Result<connector::Done> ProviderConnectionPool::open() {
    return withConnection([](connector::HttpsProviderTransport& t) { return t.open(); });
}
connector::Result<std::vector<connector::Account>> ProviderConnectionPool::listAccounts() {
    return withConnection([](connector::HttpsProviderTransport& t) { return t.listAccounts(); });
}
connector::Result<connector::SubmitReceipt> ProviderConnectionPool::submit(
    const connector::Submission& s) {
    return withConnection([&](connector::HttpsProviderTransport& t) { return t.submit(s); });
}
connector::Result<std::vector<connector::InboundRef>> ProviderConnectionPool::listInbound(
    const std::string& account) {
    return withConnection(
        [&](connector::HttpsProviderTransport& t) { return t.listInbound(account); });
}
connector::Result<std::string> ProviderConnectionPool::fetch(const std::string& id) {
    return withConnection([&](connector::HttpsProviderTransport& t) { return t.fetch(id); });
}
connector::Result<connector::Done> ProviderConnectionPool::acknowledge(const std::string& id) {
    return withConnection([&](connector::HttpsProviderTransport& t) { return t.acknowledge(id); });
}

std::string loadAccountsFile(const std::string& path, connector::AccountMap& out) {
    std::ifstream in(path);
    if (!in)
        return "cannot read accounts file " + path;
    connector::AccountMap map;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        const auto hash = line.find('#');
        if (hash != std::string::npos)
            line.resize(hash);
        std::istringstream f(line);
        std::string internal, account, extra;
        if (!(f >> internal))
            continue;
        if (!(f >> account) || (f >> extra) || !connector::isValidDeMailAddress(account) ||
            (internal[0] != '@' && internal.find('@') == std::string::npos))
            return path + " line " + std::to_string(n) +
                   ": expected '<internal address or @domain> <De-Mail account>'";
        map.entries.push_back({connector::toLower(internal), connector::toLower(account)});
    }
    out = std::move(map);
    return {};
}

SpoolOutboundStore::SpoolOutboundStore(Spool& spool)
    : spool_(spool), states_(spool.dir() + "/dispatch") {}

std::vector<std::string> SpoolOutboundStore::queued() {
    return spool_.list();
}

std::optional<OutboundEnvelope> SpoolOutboundStore::envelope(const std::string& id) {
    const auto e = spool_.envelope(id);
    std::error_code ec;
    if (!e && !fs::exists(spool_.dir() + "/queue/" + id, ec))
        return std::nullopt;  // gone (sent or deleted meanwhile): nothing to report
    if (!e) {
        Poco::Logger::get("queue").error("event=unreadable queue_id=" + id + " action=corrupt");
        spool_.moveToCorrupt(id);
        return std::nullopt;
    }
    OutboundEnvelope o;
    o.queueId = id;
    o.sender = e->sender;
    for (const auto& r : e->recipients)
        o.recipients.push_back({r.address, r.orcpt, r.notify});
    o.ret = e->ret;
    o.envid = e->envid;
    o.arrival = e->arrival;
    o.size = e->size;
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
    if (Spool::validId(queueId))
        writeFileDurably(dir_ + "/" + queueId, sender + "\n");
}

std::optional<std::string> SentJournal::senderOf(const std::string& queueId) const {
    if (!Spool::validId(queueId))
        return std::nullopt;
    std::ifstream in(dir_ + "/" + queueId);
    std::string s;
    if (!in || !std::getline(in, s) || s.empty())
        return std::nullopt;
    return s;
}

ProviderSubmitter::ProviderSubmitter(connector::ProviderTransport& transport, SentJournal& journal,
                                     std::string providerHost)
    : transport_(transport), journal_(journal), host_(std::move(providerHost)) {}

void ProviderSubmitter::update(SubmitterSettings s) {
    std::lock_guard lock(mutex_);
    settings_ = std::move(s);
}

SubmitterSettings ProviderSubmitter::settings() const {
    std::lock_guard lock(mutex_);
    return settings_;
}

namespace {

// The header section with its blank line (all of a message without body), or nullopt when it is
// longer than `limit`: such a message is refused, never cut (the cut-off rest would reach the
// provider unchecked).
std::optional<std::string> readHeaderSection(std::istream& in, std::size_t limit) {
    std::string head;
    std::streambuf* sb = in.rdbuf();
    std::size_t lineStart = 0;
    for (int c; (c = sb->sbumpc()) != std::char_traits<char>::eof();) {
        head.push_back(static_cast<char>(c));
        if (c == '\n') {
            const std::string_view line(head.data() + lineStart, head.size() - lineStart);
            if (line == "\n" || line == "\r\n")
                return head;
            lineStart = head.size();
        }
        if (head.size() > limit)
            return std::nullopt;
    }
    return head;
}

}  // namespace

// Only the header section is held in memory: the body goes from the spool file to the provider
// in 64 KiB pieces, so a lane needs the same memory for 1 KB and for 20 MB.
SubmitOutcome ProviderSubmitter::submit(const OutboundEnvelope& env, std::istream& body) {
    const std::size_t limit = connector::HeaderLimits{}.maxSectionBytes;
    const auto head = readHeaderSection(body, limit);
    if (!head || head->size() > env.size)
        return {SubmitOutcome::Kind::Permanent,
                head ? "the queued message is shorter than its header section"
                     : "header section larger than " + std::to_string(limit) + " bytes",
                "5.6.0", ""};
    const std::string& message = *head;
    connector::OutboundContext ctx;
    ctx.queueId = env.queueId;
    ctx.envelopeSender = env.sender;
    for (const auto& r : env.recipients)
        ctx.envelopeRecipients.push_back(r.address);
    {
        std::lock_guard lock(mutex_);
        ctx.deMailDomains = settings_.deMailDomains;
        ctx.accounts = settings_.accounts;
    }
    const auto prep = connector::prepareOutbound(message, ctx);
    if (!prep.ok()) {
        const char* status = prep.refusal == connector::RefusalKind::RecipientNotDeMail ||
                                     prep.refusal == connector::RefusalKind::SenderNotMapped
                                 ? "5.7.1"
                                 : "5.6.0";
        return {SubmitOutcome::Kind::Permanent, prep.reason, status, ""};
    }
    connector::Submission sub;
    sub.idempotencyKey = env.queueId;
    sub.account = prep.account;
    sub.rfc5322 = prep.headers + message.substr(prep.bodyOffset);
    sub.bodyStream = &body;
    sub.bodyLength = env.size - head->size();
    sub.options = {prep.options.personal, prep.options.authoritative,
                   prep.options.dispatchConfirmation, prep.options.receiptConfirmation,
                   prep.options.retrieveConfirmation};
    const auto r = transport_.submit(sub);
    if (r.ok()) {
        journal_.record(env.queueId, env.sender);
        return {SubmitOutcome::Kind::Accepted,
                r.value().duplicate ? "already at the provider" : "accepted by the provider", "",
                host_};
    }
    const auto& e = r.error();
    if (e.code == "idempotency_conflict") {
        // The provider holds a submission under this queue id, which no other message uses: it
        // can only be an earlier attempt of this one, accepted in another form (the account map
        // or the De-Mail domains changed by a reload in between, or a provider that kept a body
        // cut short by our crash). That message went out; bouncing it would make the sender send
        // it again. Recorded as sent, and said loudly (docs/provider-api.md, "the same
        // submission").
        journal_.record(env.queueId, env.sender);
        return {SubmitOutcome::Kind::Accepted,
                "already at the provider as an earlier attempt in another form (409 "
                "idempotency_conflict): not sent again",
                "", host_};
    }
    const std::string detail = "provider: " + e.reason;
    switch (e.kind) {
        case connector::ErrorKind::Permanent:
            return {SubmitOutcome::Kind::Permanent, detail,
                    e.code == "recipient_not_demail" ? "5.1.1" : "5.7.0", host_};
        case connector::ErrorKind::OperatorAction:
            return {SubmitOutcome::Kind::OperatorAction, detail, "4.7.0", host_};
        case connector::ErrorKind::Retryable:
            if (cardProblem) {
                if (auto why = cardProblem())
                    return {SubmitOutcome::Kind::OperatorAction, *why, "4.7.0", host_};
            }
            return {SubmitOutcome::Kind::Retryable, detail, "4.4.1", host_};
    }
    return {SubmitOutcome::Kind::Retryable, detail, "4.4.1", host_};
}

DeliveryResult RelayNotifier::send(const DsnMessage& dsn) {
    std::istringstream in(dsn.data);
    return deliverBySmtp(target_, "", {dsn.envelopeTo}, in);
}

ProviderInbox::ProviderInbox(connector::ProviderTransport& transport,
                             std::vector<std::string> accounts)
    : transport_(transport), accounts_(std::move(accounts)) {}

void ProviderInbox::setAccounts(std::vector<std::string> accounts) {
    std::lock_guard lock(mutex_);
    accounts_ = std::move(accounts);
}

std::optional<std::vector<InboxItem>> ProviderInbox::list(std::string& error) {
    std::vector<std::string> accounts;
    {
        std::lock_guard lock(mutex_);
        accounts = accounts_;
    }
    std::vector<InboxItem> items;
    for (const auto& a : accounts) {
        auto r = transport_.listInbound(a);
        if (!r.ok()) {
            error = r.error().reason;
            return std::nullopt;
        }
        for (const auto& ref : r.value())
            items.push_back({ref.id, ref.account.empty() ? a : ref.account});
    }
    return items;
}

std::optional<std::string> ProviderInbox::fetch(const InboxItem& item, std::string& error,
                                                bool& permanent) {
    auto r = transport_.fetch(item.id);
    if (!r.ok()) {
        error = r.error().reason;
        permanent = r.error().kind == connector::ErrorKind::Permanent;
        return std::nullopt;
    }
    return r.value();
}

bool ProviderInbox::acknowledge(const InboxItem& item, std::string& error) {
    auto r = transport_.acknowledge(item.id);
    if (!r.ok())
        error = r.error().reason;
    return r.ok();
}

DeMailRouter::DeMailRouter(const SentJournal& journal,
                           std::function<connector::AccountMap()> accounts, std::string postmaster,
                           InboundHygiene hygiene)
    : journal_(journal),
      accounts_(std::move(accounts)),
      postmaster_(std::move(postmaster)),
      hygiene_(std::move(hygiene)) {}

InboundRoute DeMailRouter::route(const InboxItem& item, const std::string& raw) {
    // Classified on the normalised text, so that what we route by is what the relay will read.
    const std::string message = connector::normalizeLineEnds(raw);
    const auto c = connector::classifyInbound(message);
    InboundRoute r;
    r.kind = connector::toString(c.kind);
    r.mailFrom = connector::isSmtpMailbox(c.sender) ? c.sender : "";
    if (!c.sender.empty() && r.mailFrom.empty())
        log().warning("event=inbound_sender_invalid provider_id=" + item.id +
                      " action=null_sender");
    const auto choose = [&]() -> std::vector<std::string> {
        if (connector::isConfirmation(c.kind) || c.kind == connector::InboundKind::Notification) {
            std::string err;
            std::optional<connector::ConfirmationXml> xml;
            if (connector::isConfirmation(c.kind)) {
                xml = connector::confirmationXmlOf(message, err);
                if (!xml && err.find("refused") != std::string::npos) {
                    r.park = "confirmation " + err;
                    return {};
                }
            }
            if (const auto job = connector::correlate(c, xml))
                if (const auto sender = journal_.senderOf(*job))
                    return {*sender};
        }
        if (const auto inbox = accounts_().inboxFor(item.account))
            return {*inbox};
        if (!postmaster_.empty())
            return {postmaster_};
        return {item.account};  // the account address itself; the relay decides
    };
    for (auto& rcpt : choose()) {
        if (connector::isSmtpMailbox(rcpt)) {
            r.recipients.push_back(rcpt);
        } else if (connector::isSmtpMailbox(postmaster_)) {
            log().warning("event=inbound_recipient_invalid provider_id=" + item.id +
                          " action=postmaster");
            r.recipients.push_back(postmaster_);
        }
    }
    if (r.park.empty() && r.recipients.empty())
        r.park = "no valid internal recipient (the account address is invalid and no postmaster)";
    if (!r.park.empty())
        return r;
    auto p = connector::prepareInbound(
        raw, hygiene_.stripHeaders,  // from the raw bytes, so that the verdict names the repairs
        {r.kind, connector::isSmtpMailbox(item.account) ? item.account : "invalid", r.mailFrom,
         item.id, hygiene_.gatewayName,
         Poco::DateTimeFormatter::format(Poco::LocalDateTime(),
                                         Poco::DateTimeFormat::RFC1123_FORMAT)});
    if (!p.ok()) {
        r.park = "cannot be made safe for the relay: " + p.refusal;
        return r;
    }
    if (p.repairs() != "none" || p.duplicatesDisagree)
        log().notice("event=inbound_prepared provider_id=" + item.id + " repaired=" + p.repairs() +
                     (p.duplicatesDisagree ? " suspicious=conflicting-x-de-mail-headers" : ""));
    r.message = std::move(p.message);
    return r;
}

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
    // The notice: our own text plus the raw bytes as base64, 76-column lines.
    std::ostringstream b64;
    {
        Poco::Base64Encoder enc(b64);
        enc.rdbuf()->setLineLength(76);
        enc << content;
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
    const DeliveryResult r = relay_.deliver({"", {postmaster_}, "quarantine", {}, {}}, notice);
    if (!r.delivered())  // the file is kept either way; the health alarm says where
        log().error("event=quarantine_notice_failed provider_id=" + name + " reason=\"" + r.detail +
                    "\"");
    return true;
}

DeliveryResult RelayInboundDelivery::deliver(const InboundRoute& route,
                                             const std::string& message) {
    std::istringstream in(message);
    return deliverBySmtp(target_, route.mailFrom, route.recipients, in);
}

}  // namespace demail::gateway
