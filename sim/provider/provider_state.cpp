#include "provider_state.h"

#include <Poco/Base64Encoder.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include "mime_util.h"

namespace demail::sim::provider {
namespace {

std::string toJson(const Poco::JSON::Object& o) {
    std::ostringstream out;
    o.stringify(out);
    return out.str();
}

ApiReply error(int status, const std::string& code, const std::string& message) {
    Poco::JSON::Object err;
    err.set("code", code);
    err.set("message", message);
    Poco::JSON::Object o;
    o.set("error", err);
    return {status, "application/json", toJson(o), {}};
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// Headers the provider sets itself (TR step 29); a client's copies are dropped, not trusted.
const std::set<std::string>& providerHeaders() {
    static const std::set<std::string> names = {"date",
                                                "message-id",
                                                "bcc",
                                                "x-de-mail-auth-level",
                                                "x-de-mail-auth-mechanism",
                                                "x-de-mail-originator-provider",
                                                "x-de-mail-actual-recipient",
                                                "x-de-mail-message-type",
                                                "x-de-mail-message-id",
                                                "x-de-mail-version",
                                                "x-de-mail-account-holder",
                                                "x-de-mail-integrity",
                                                "x-de-mail-signature-certificate",
                                                "x-de-mail-chosen-recipient",
                                                "x-de-mail-confirmation-of-dispatch",
                                                "x-de-mail-confirmation-of-receipt",
                                                "x-de-mail-confirmation-of-retrieve",
                                                "x-de-mail-authoritative",
                                                "x-de-mail-private"};
    return names;
}

struct Options {
    bool personal = false, authoritative = false, dispatch = false, receipt = false,
         retrieve = false;
};

std::optional<Options> parseOptions(const std::string& json, const ParsedMessage& m) {
    Options o;
    if (json.empty()) {  // fall back to the option headers in the message
        o.personal = header(m, "X-de-mail-private") == "yes";
        o.authoritative = header(m, "X-de-mail-authoritative") == "yes";
        o.dispatch = header(m, "X-de-mail-confirmation-of-dispatch") == "yes";
        o.receipt = header(m, "X-de-mail-confirmation-of-receipt") == "yes";
        o.retrieve = header(m, "X-de-mail-confirmation-of-retrieve") == "yes";
        return o;
    }
    try {
        Poco::JSON::Parser parser;
        auto obj = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
        o.personal = obj->optValue("personal", false);
        o.authoritative = obj->optValue("authoritative", false);
        o.dispatch = obj->optValue("dispatchConfirmation", false);
        o.receipt = obj->optValue("receiptConfirmation", false);
        o.retrieve = obj->optValue("retrieveConfirmation", false);
        return o;
    } catch (const Poco::Exception&) {
        return std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

const char* yesNo(bool b) {
    return b ? "yes" : "no";
}

// Text inside an XML element of a confirmation or Meldung.
std::string xmlEscape(const std::string& s) {
    std::string o;
    for (char c : s)
        o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
    return o;
}

// UTC time `ahead` from now, as isoTime() writes it: a lease's end in replies and errors.
std::string isoTimeIn(std::chrono::seconds ahead) {
    const std::time_t t = std::time(nullptr) + static_cast<std::time_t>(ahead.count());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

std::optional<std::string> ProviderState::load(const std::string& accountsFile) {
    std::ifstream in(accountsFile);
    if (!in)
        return "cannot read accounts file " + accountsFile;
    std::stringstream text;
    text << in.rdbuf();
    try {
        Poco::JSON::Parser parser;
        auto root = parser.parse(text.str()).extract<Poco::JSON::Object::Ptr>();
        std::lock_guard lock(mutex_);
        if (root->has("providerDomain"))
            providerDomain_ = root->getValue<std::string>("providerDomain");
        if (auto doms = root->getArray("domains"))
            for (size_t i = 0; i < doms->size(); ++i)
                domains_.push_back(lower(doms->getElement<std::string>(static_cast<unsigned>(i))));
        auto certs = root->getArray("certificates");
        if (!certs)
            return "accounts file: no \"certificates\" array";
        for (size_t i = 0; i < certs->size(); ++i) {
            auto c = certs->getObject(static_cast<unsigned>(i));
            CertBinding b;
            b.subject = c->optValue<std::string>("subject", "");
            b.fingerprint = lower(c->optValue<std::string>("fingerprint", ""));
            b.fingerprint.erase(std::remove(b.fingerprint.begin(), b.fingerprint.end(), ':'),
                                b.fingerprint.end());
            auto accs = c->getArray("accounts");
            for (size_t j = 0; accs && j < accs->size(); ++j) {
                auto a = accs->getObject(static_cast<unsigned>(j));
                SimAccount acc;
                acc.address = lower(a->getValue<std::string>("address"));
                acc.domain = domainOf(acc.address);
                acc.authLevel = a->optValue<std::string>("authLevel", "normal");
                acc.retrieveConfirmation = a->optValue("retrieveConfirmation", false);
                acc.blocked = a->optValue("blocked", false);
                acc.accessOpening = a->optValue("accessOpening", false);
                b.accounts.push_back(acc.address);
                if (!contains(domains_, acc.domain))
                    domains_.push_back(acc.domain);
                accounts_[acc.address] = acc;
            }
            bindings_.push_back(std::move(b));
        }
        // Addresses of other users (recipients only), e.g. {"address": "..."}.
        if (auto others = root->getArray("otherAccounts"))
            for (size_t i = 0; i < others->size(); ++i) {
                SimAccount acc;
                acc.address = lower(others->getElement<std::string>(static_cast<unsigned>(i)));
                acc.domain = domainOf(acc.address);
                accounts_.emplace(acc.address, acc);
                if (!contains(domains_, acc.domain))
                    domains_.push_back(acc.domain);
            }
        // The directory beyond our mailboxes: {"address", "authLevel", "accessOpening",
        // "closed"}. A known address does not make its domain a De-Mail domain of this provider.
        if (auto known = root->getArray("knownAddresses"))
            for (size_t i = 0; i < known->size(); ++i) {
                auto k = known->getObject(static_cast<unsigned>(i));
                DirectoryEntry e;
                e.authLevel = k->optValue<std::string>("authLevel", "normal");
                e.accessOpening = k->optValue("accessOpening", false);
                e.closed = k->optValue("closed", false);
                directory_[lower(k->getValue<std::string>("address"))] = e;
            }
    } catch (const Poco::Exception& e) {
        return "accounts file " + accountsFile + ": " + e.displayText();
    } catch (const std::exception& e) {
        return "accounts file " + accountsFile + ": " + e.what();
    }
    return std::nullopt;
}

std::vector<std::string> ProviderState::boundAccounts(const std::string& subject,
                                                      const std::string& fingerprint) const {
    std::lock_guard lock(mutex_);
    for (const auto& b : bindings_)
        if (!b.fingerprint.empty() && b.fingerprint == lower(fingerprint))
            return b.accounts;
    for (const auto& b : bindings_)
        if (!b.subject.empty() && b.subject == subject)
            return b.accounts;
    return {};
}

std::string ProviderState::nextId(const char* prefix) {
    return std::string(prefix) + std::to_string(++counter_);
}

const SimAccount* ProviderState::findAccount(const std::string& address) const {
    auto it = accounts_.find(lower(address));
    return it == accounts_.end() ? nullptr : &it->second;
}

bool ProviderState::knownDomain(const std::string& domain) const {
    // A De-Mail domain covers everything below it (docs/provider-api.md "domains").
    const std::string d = lower(domain);
    for (const auto& known : domains_)
        if (d == known || (d.size() > known.size() + 1 &&
                           d.compare(d.size() - known.size(), known.size(), known) == 0 &&
                           d[d.size() - known.size() - 1] == '.'))
            return true;
    return false;
}

ApiReply ProviderState::listAccounts(const std::vector<std::string>& bound) const {
    std::lock_guard lock(mutex_);
    Poco::JSON::Array arr;
    std::set<std::string> doms;
    for (const auto& address : bound) {
        const SimAccount* a = findAccount(address);
        if (!a)
            continue;
        Poco::JSON::Object o;
        o.set("address", a->address);
        o.set("domain", a->domain);
        o.set("authLevel", a->authLevel);
        o.set("retrieveConfirmation", a->retrieveConfirmation);
        o.set("blocked", a->blocked);
        arr.add(o);
        doms.insert(a->domain);
    }
    // "domains": every De-Mail domain this provider delivers to (docs/provider-api.md), not only
    // those of the listed accounts.
    for (const auto& d : domains_)
        doms.insert(d);
    Poco::JSON::Array domArr;
    for (const auto& d : doms)
        domArr.add(d);
    Poco::JSON::Object root;
    root.set("accounts", arr);
    root.set("domains", domArr);
    return {200, "application/json", toJson(root), {}};
}

ApiReply ProviderState::lookupAddress(const std::vector<std::string>& bound,
                                      const std::string& address) const {
    if (bound.empty())
        return error(403, "certificate_unknown", "no accounts bound to this certificate");
    std::lock_guard lock(mutex_);
    const std::string key = lower(address);
    DirectoryEntry found;
    bool exists = false;
    if (auto d = directory_.find(key); d != directory_.end()) {
        if (d->second.closed)
            return error(404, "address_closed", "this De-Mail address has been closed");
        found = d->second;
        exists = true;
    } else if (const SimAccount* a = findAccount(key)) {
        found.authLevel = a->authLevel;
        found.accessOpening = a->accessOpening;
        exists = true;
    }
    if (!exists)
        return error(404, "address_unknown", "no De-Mail address of this name");
    Poco::JSON::Object o;
    o.set("address", key);
    o.set("exists", true);
    o.set("authLevel", found.authLevel);
    o.set("accessOpening", found.accessOpening);
    return {200, "application/json", toJson(o), {}};
}

void ProviderState::setDirectoryEntry(const std::string& address, const std::string& state,
                                      DirectoryEntry entry) {
    std::lock_guard lock(mutex_);
    const std::string key = lower(address);
    if (state == "unknown") {
        directory_.erase(key);
        return;
    }
    entry.closed = state == "closed";
    directory_[key] = entry;
}

void ProviderState::addDomain(const std::string& domain) {
    std::lock_guard lock(mutex_);
    if (!contains(domains_, lower(domain)))
        domains_.push_back(lower(domain));
}

void ProviderState::deliver(StoredMessage msg) {
    messages_.push_back(std::move(msg));
}

void ProviderState::confirm(const std::string& kind, const std::string& toAccount,
                            const std::string& origSender, const std::string& origSubject,
                            const std::string& privateId, const std::string& deMailMessageId,
                            const std::string& origMessage) {
    // kind: "dispatch" | "receipt" | "retrieve"
    std::string systemSender, subjectTag, type, text;
    if (kind == "dispatch") {
        systemSender = "Versandbestaetigung@" + providerDomain_;
        subjectTag = "*Versandbestätigung*";
        type = "confirmation of dispatch";
        text = "Ihre Nachricht wurde versandt.";
    } else if (kind == "receipt") {
        systemSender = "Eingangsbestaetigung@" + providerDomain_;
        subjectTag = "*Eingangsbestätigung*";
        type = "confirmation of receipt";
        text = "Ihre Nachricht ist im Postfach des Empfängers eingegangen.";
    } else {
        systemSender = "Abholbestaetigung@" + providerDomain_;
        subjectTag = "*Abholbestätigung*";
        type = "confirmation of retrieve";
        text = "Ihre Nachricht wurde vom Empfänger abgeholt.";
    }
    const std::string now = isoTime();
    std::ostringstream xml;
    xml << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
        << "<Acknowledge-Message xmlns=\"urn:de-mail\">\r\n"
        << "  <Sender>" << xmlEscape(systemSender) << "</Sender>\r\n"
        << "  <Metadata>\r\n"
        << "    <Metadate><Name>X-de-mail-message-id</Name><Value>" << xmlEscape(deMailMessageId)
        << "</Value><OriginalHeader>X-de-mail-message-id</OriginalHeader></Metadate>\r\n"
        << "    <Metadate><Name>X-de-mail-sender</Name><Value>" << xmlEscape(origSender)
        << "</Value><OriginalHeader>X-de-mail-sender</OriginalHeader></Metadate>\r\n";
    if (!privateId.empty())
        xml << "    <Metadate><Name>X-de-mail-private-id</Name><Value>" << xmlEscape(privateId)
            << "</Value><OriginalHeader>X-de-mail-private-id</OriginalHeader></Metadate>\r\n";
    xml << "  </Metadata>\r\n"
        << "  <Subject>" << xmlEscape(subjectTag + " " + origSubject) << "</Subject>\r\n"
        << "  <Text>" << xmlEscape(text) << "</Text>\r\n"
        << "  <Hash>" << sha256Base64(origMessage) << "</Hash>\r\n"
        << "  <Time>" << now << "</Time>\r\n";
    if (kind == "retrieve")
        xml << "  <DeliveryTime>" << now << "</DeliveryTime>\r\n";
    xml << "</Acknowledge-Message>\r\n";
    // The qualified signature of the confirmation (PVD_IO §3.5.1), kept when the XML is
    // extracted for automated processing.
    std::string signedXml = signer_ ? signer_->signXml(xml.str()) : xml.str();
    if (signedXml.empty())
        signedXml = xml.str();

    const std::string boundary = "=_demail-sim-" + std::to_string(counter_ + 1);
    std::string body = "--" + boundary +
                       "\r\nContent-Type: application/xml; charset=UTF-8\r\n"
                       "Content-Disposition: attachment; filename=\"bestaetigung.xml\"\r\n\r\n" +
                       signedXml + "--" + boundary +
                       "\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
                       "Content-Disposition: attachment; filename=\"bestaetigung.pdf\"\r\n\r\n"
                       "JVBERi0xLjQKJSBwbGFjZWhvbGRlciAoZGVtYWlsLXNpbSkK\r\n--" +
                       boundary + "--\r\n";
    StoredMessage m;
    m.id = nextId("in-");
    m.account = toAccount;
    m.messageType = type;
    deliverSystemMessage(std::move(m), systemSender, subjectTag + " " + origSubject, boundary, {},
                         privateId, body);
}

bool ProviderState::setMeldung(const std::string& address, const std::string& type) {
    static const std::set<std::string> types = {"unknown-recipient", "closed-account",
                                                "invalid-format", "other", "malware-notification"};
    std::lock_guard lock(mutex_);
    if (type.empty()) {
        meldungFor_.erase(lower(address));
        return true;
    }
    if (!types.count(type))
        return false;
    meldungFor_[lower(address)] = type;
    return true;
}

// A Meldungsnachricht (PVD_IO §3.5): Notification-Message XML (Subject, Text, Time, Sender),
// here base64-encoded as some providers' mailers do; the private-id copied in the header (the TR
// makes that optional for Meldungen, the simulator always copies it).
void ProviderState::meldung(const std::string& type, const std::string& toAccount,
                            const std::string& recipient, const std::string& origSubject,
                            const std::string& privateId) {
    const std::string systemSender = "Meldung@" + providerDomain_;
    const bool malware = type == "malware-notification";
    const std::string text =
        malware ? "In Ihrer Nachricht an " + recipient + " wurde Schadsoftware gefunden."
        : type == "unknown-recipient" ? "Der Empfänger " + recipient + " ist unbekannt."
        : type == "closed-account" ? "Das Postfach des Empfängers " + recipient + " ist aufgelöst."
        : type == "invalid-format"
            ? "Ihre Nachricht an " + recipient + " hat ein ungültiges Format."
            : "Ihre Nachricht an " + recipient + " konnte nicht zugestellt werden.";
    const std::string xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
        "<Notification-Message xmlns=\"urn:de-mail\">\r\n"
        "  <Subject>" +
        xmlEscape(origSubject) + "</Subject>\r\n  <Text>" + xmlEscape(text) +
        "</Text>\r\n  <Time>" + isoTime() + "</Time>\r\n  <Sender>" + xmlEscape(systemSender) +
        "</Sender>\r\n</Notification-Message>\r\n";
    std::ostringstream b64;
    {
        Poco::Base64Encoder enc(b64);
        enc.rdbuf()->setLineLength(76);
        enc << xml;
        enc.close();
    }
    std::string encoded;  // CRLF line ends whatever the encoder writes
    for (char c : b64.str())
        if (c != '\r')
            encoded += c == '\n' ? std::string("\r\n") : std::string(1, c);
    const std::string boundary = "=_demail-sim-meldung-" + std::to_string(counter_ + 1);
    const std::string body = "--" + boundary +
                             "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                             "Content-Transfer-Encoding: 8bit\r\n\r\n" +
                             text + "\r\n--" + boundary +
                             "\r\nContent-Type: application/xml; charset=UTF-8\r\n"
                             "Content-Transfer-Encoding: base64\r\n"
                             "Content-Disposition: attachment; filename=\"meldung.xml\"\r\n\r\n" +
                             encoded + "\r\n--" + boundary + "--\r\n";
    StoredMessage m;
    m.id = nextId("in-");
    m.account = toAccount;
    m.messageType = malware ? "malware-notification" : "notification";
    std::vector<std::pair<std::string, std::string>> extra;
    if (!malware)
        extra.emplace_back("X-de-mail-notification-type", type);
    deliverSystemMessage(std::move(m), systemSender,
                         "Ihre Nachricht konnte nicht zugestellt werden: " + origSubject, boundary,
                         std::move(extra), privateId, body);
}

void ProviderState::deliverSystemMessage(StoredMessage m, const std::string& systemSender,
                                         const std::string& subject, const std::string& boundary,
                                         std::vector<std::pair<std::string, std::string>> extra,
                                         const std::string& privateId, const std::string& body) {
    const std::string msgId = "<" + m.id + "@" + providerDomain_ + ">";
    std::vector<std::pair<std::string, std::string>> h = {
        {"From", systemSender},
        {"To", m.account},
        {"Subject", encodeWord(subject)},
        {"Date", rfc5322Date()},
        {"Message-ID", msgId},
        {"MIME-Version", "1.0"},
        {"Content-Type", "multipart/mixed; boundary=\"" + boundary + "\""},
        {"X-de-mail-sender", systemSender},
        {"X-de-mail-chosen-recipient", "to=" + m.account},
        {"X-de-mail-actual-recipient", m.account},
        {"X-de-mail-message-type", m.messageType},
        {"X-de-mail-message-id", msgId},
        {"X-de-mail-originator-provider", providerDomain_},
        {"X-de-mail-version", "1.8"}};
    for (auto& e : extra)
        h.push_back(std::move(e));
    if (!privateId.empty())
        h.emplace_back("X-de-mail-private-id", privateId);
    // Confirmations and Meldungen are signed by the provider (PVD_IO §3.4.1).
    addIntegrity(h, body, true);
    m.data = serialize(h, body);
    deliver(std::move(m));
}

ApiReply ProviderState::submit(const std::vector<std::string>& bound, const SubmitRequest& req) {
    std::lock_guard lock(mutex_);
    const std::string bodyHash =
        sha256Base64(req.account + "\n" + req.optionsJson + "\n" + req.message);
    if (idempotencyEnabled_ && (req.idempotencyKey.empty() || req.idempotencyKey.size() > 200))
        return error(400, "idempotency_key_missing", "Idempotency-Key header required");
    if (auto it = idempotencyEnabled_ ? idempotency_.find(req.idempotencyKey) : idempotency_.end();
        it != idempotency_.end()) {
        if (it->second.bodyHash != bodyHash)
            return error(409, "idempotency_conflict",
                         "Idempotency-Key reused for a different submission");
        ApiReply again = it->second.reply;
        if (again.status == 201) {  // same result, marked as a replay
            again.status = 200;
            auto pos = again.body.find("\"duplicate\":false");
            if (pos != std::string::npos)
                again.body.replace(pos, 17, "\"duplicate\":true");
        }
        return again;
    }
    auto remember = [&](ApiReply reply) {
        // Only final answers are remembered; a blocked account may be unblocked later.
        if (!idempotencyEnabled_)
            return reply;
        if (reply.status == 201 || reply.status == 400 || reply.status == 413 ||
            reply.status == 422)
            idempotency_[req.idempotencyKey] = {bodyHash, reply};
        return reply;
    };

    const std::string account = lower(req.account);
    // An account not bound to the client certificate is the account's trouble, not the
    // message's (as for its inbox and sent items): 403 not_authorised, not remembered, so that
    // the gateway holds that account's mail instead of bouncing it (docs/provider-api.md).
    if (!contains(bound, account))
        return error(403, "not_authorised",
                     "account " + req.account + " is not bound to this certificate");
    const SimAccount* acc = findAccount(account);
    if (!acc)
        return remember(error(422, "sender_not_owned", "unknown account " + req.account));
    if (acc->blocked)
        return error(403, "account_blocked", "account " + acc->address + " is blocked");
    if (req.message.size() > kMaxMessageSize)
        return remember(error(413, "too_large", "message exceeds 45 MiB"));
    // RFC 5322 §2.1.1: a header line over 998 characters is malformed; a strict provider refuses.
    const std::size_t headerEnd = req.message.find("\r\n\r\n");
    for (std::size_t at = 0, next; at < headerEnd && at < req.message.size(); at = next + 2) {
        next = req.message.find("\r\n", at);
        if (next == std::string::npos)
            break;
        if (next - at > 998)
            return remember(error(400, "syntax", "a header line is longer than 998 characters"));
    }
    ParsedMessage m = parseMessage(req.message);
    if (!m.valid || !hasHeader(m, "From") || !hasHeader(m, "Subject"))
        return remember(error(400, "syntax",
                              "message is not RFC 5322 (header block, From, "
                              "Subject)"));
    // Step 12: the sender must be the account; Reply-To must be a De-Mail address.
    std::string sender = header(m, "X-de-mail-sender");
    auto senders = addresses(sender.empty() ? header(m, "From") : sender);
    if (senders.size() != 1 || senders[0] != account)
        return remember(
            error(422, "sender_not_owned", "sender is not the account " + acc->address));
    for (const auto& r : addresses(header(m, "Reply-To")))
        if (!knownDomain(domainOf(r)))
            return remember(
                error(422, "reply_to_not_demail", "Reply-To " + r + " is not a De-Mail address"));
    // Step 15: every recipient must be a De-Mail address.
    ChosenRecipients rcpt = chosenRecipients(m);
    if (rcpt.to.empty() && rcpt.cc.empty() && rcpt.bcc.empty())
        return remember(error(400, "syntax", "no recipients"));
    for (const auto* list : {&rcpt.to, &rcpt.cc, &rcpt.bcc})
        for (const auto& r : *list)
            if (!knownDomain(domainOf(r)))
                return remember(error(422, "recipient_not_demail",
                                      "recipient " + r + " is not a De-Mail address"));
    // Steps 18-25: options against auth level and permissions.
    auto opt = parseOptions(req.optionsJson, m);
    if (!opt)
        return remember(error(400, "syntax", "X-Demail-Options is not valid JSON"));
    const bool high = acc->authLevel == "high";
    if ((opt->personal || opt->authoritative) && !high)
        return remember(
            error(422, "option_not_allowed", "Persönlich/Absenderbestätigt need auth level high"));
    if (opt->retrieve && (!opt->personal || !high || !acc->retrieveConfirmation))
        return remember(error(422, "option_not_allowed",
                              "Abholbestätigung needs Persönlich, level high and permission"));
    std::string privateId = header(m, "X-de-mail-private-id");
    if (privateId.size() > 1024)
        return remember(error(400, "syntax", "X-de-mail-private-id longer than 1024"));

    // Step 29: provider metadata; one copy for to+cc, one per bcc recipient.
    std::vector<std::pair<std::string, std::string>> userHeaders;
    for (const auto& h : m.headers)
        if (!providerHeaders().count(lower(h.first)))
            userHeaders.push_back(h);
    const std::string subject = header(m, "Subject");
    std::vector<ChosenRecipients> copies;
    if (!rcpt.to.empty() || !rcpt.cc.empty())
        copies.push_back({rcpt.to, rcpt.cc, {}});
    for (const auto& b : rcpt.bcc)
        copies.push_back({{}, {}, {b}});
    ++submissions_;
    Poco::JSON::Array ids;
    std::string firstId;
    for (const auto& copy : copies) {
        std::string mid = nextId("dm-");
        std::string deMailId = "<" + mid + "@" + providerDomain_ + ">";
        if (firstId.empty())
            firstId = deMailId;
        ids.add(deMailId);
        std::vector<std::string> actual = copy.to;
        actual.insert(actual.end(), copy.cc.begin(), copy.cc.end());
        actual.insert(actual.end(), copy.bcc.begin(), copy.bcc.end());
        auto h = userHeaders;
        h.emplace_back("X-de-mail-confirmation-of-dispatch", yesNo(opt->dispatch));
        h.emplace_back("X-de-mail-confirmation-of-receipt", yesNo(opt->receipt));
        h.emplace_back("X-de-mail-confirmation-of-retrieve", yesNo(opt->retrieve));
        h.emplace_back("X-de-mail-authoritative", yesNo(opt->authoritative));
        h.emplace_back("X-de-mail-private", yesNo(opt->personal));
        if (!hasHeader(m, "X-de-mail-sender"))
            h.emplace_back("X-de-mail-sender", acc->address);
        h.emplace_back("X-de-mail-chosen-recipient", formatChosenRecipients(copy));
        h.emplace_back("Date", rfc5322Date());
        h.emplace_back("Message-ID", deMailId);
        h.emplace_back("X-de-mail-auth-level", high ? "high" : "normal");
        h.emplace_back("X-de-mail-auth-mechanism", "certificate");
        h.emplace_back("X-de-mail-originator-provider", providerDomain_);
        h.emplace_back("X-de-mail-message-type", "normal");
        h.emplace_back("X-de-mail-message-id", deMailId);
        h.emplace_back("X-de-mail-version", "1.8");
        h.emplace_back("X-de-mail-account-holder", acc->address);
        bool deliveredAny = false;
        for (const auto& r : actual) {
            if (const auto it = meldungFor_.find(lower(r)); it != meldungFor_.end()) {
                meldung(it->second, acc->address, r, subject, privateId);
                continue;
            }
            deliveredAny = true;
            auto hr = h;
            hr.emplace_back("X-de-mail-actual-recipient", r);
            // Absenderbestätigt messages must be signed; the others carry the hash.
            addIntegrity(hr, m.body, opt->authoritative);
            StoredMessage sm;
            sm.id = nextId("in-");
            sm.account = r;
            sm.messageType = "normal";
            sm.data = serialize(hr, m.body);
            sm.retrieveRequested = opt->retrieve;
            sm.origSender = acc->address;
            sm.origSubject = subject;
            sm.origPrivateId = privateId;
            sm.deMailMessageId = deMailId;
            const SimAccount* local = findAccount(r);
            if (local) {
                deliver(sm);  // same provider mailbox: listable by its owner
            } else {
                outbound_.push_back(sm.id);
                sm.account = "outbound:" + r;  // handed to another provider
                deliver(sm);
            }
        }
        if (opt->receipt && deliveredAny)  // one Eingangsbestätigung per delivered copy
            confirm("receipt", acc->address, acc->address, subject, privateId, deMailId,
                    req.message);
    }
    if (opt->dispatch)  // one Versandbestätigung per submission
        confirm("dispatch", acc->address, acc->address, subject, privateId, firstId, req.message);
    Poco::JSON::Object o;
    o.set("id", firstId);
    o.set("messageIds", ids);
    o.set("duplicate", false);
    Sent sent{acc->address, privateId, firstId, {}};
    for (std::size_t i = 0; i < ids.size(); ++i)
        sent.messageIds.push_back(ids.getElement<std::string>(static_cast<unsigned>(i)));
    sent_.push_back(std::move(sent));
    return remember({201, "application/json", toJson(o), {}});
}

ApiReply ProviderState::findSubmissions(const std::vector<std::string>& bound,
                                        const std::string& account,
                                        const std::string& privateId) const {
    std::lock_guard lock(mutex_);
    const std::string acc = lower(account);
    if (!contains(bound, acc))
        return error(403, "not_authorised", "account " + account + " not bound to certificate");
    if (privateId.empty())
        return error(400, "syntax", "privateId required");
    Poco::JSON::Array list;
    for (const auto& s : sent_) {
        if (s.account != acc || s.privateId != privateId)
            continue;
        Poco::JSON::Object o;
        o.set("id", s.id);
        o.set("privateId", s.privateId);
        Poco::JSON::Array ids;
        for (const auto& m : s.messageIds)
            ids.add(m);
        o.set("messageIds", ids);
        list.add(o);
    }
    Poco::JSON::Object root;
    root.set("submissions", list);
    return {200, "application/json", toJson(root), {}};
}

void ProviderState::setIdempotency(bool enabled) {
    std::lock_guard lock(mutex_);
    idempotencyEnabled_ = enabled;
}

ApiReply ProviderState::listInbox(const std::vector<std::string>& bound, const LeaseClient& client,
                                  const std::string& account) const {
    std::lock_guard lock(mutex_);
    const std::string acc = lower(account);
    if (!contains(bound, acc))
        return error(403, "not_authorised", "account " + account + " not bound to certificate");
    // A blocked account still receives (ACM_FU §3.6.2/§3.6.3: Zugangssperre and
    // Nutzungseinschränkung stop sending, not the retrieval of what arrives); only submissions
    // are refused with 403 account_blocked (docs/provider-api.md).
    Poco::JSON::Array arr;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& m : messages_) {
        if (m.account != acc || m.acked || leasedToOther(m, client, now))
            continue;
        Poco::JSON::Object o;
        o.set("id", m.id);
        o.set("account", m.account);
        o.set("messageType", m.messageType);
        o.set("size", static_cast<Poco::UInt64>(m.data.size()));
        arr.add(o);
    }
    Poco::JSON::Object root;
    root.set("messages", arr);
    return {200, "application/json", toJson(root), {}};
}

ApiReply ProviderState::fetch(const std::vector<std::string>& bound, const LeaseClient& client,
                              const std::string& id) {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    for (auto& m : messages_) {
        if (m.id != id || !contains(bound, m.account))
            continue;
        if (m.acked)  // delivered by whoever acknowledged it: never handed out again
            return error(410, "acknowledged", "message " + id + " has been acknowledged");
        if (leasedToOther(m, client, now)) {
            ++leaseRefusals_;
            return leasedError(m, now);
        }
        // Lease (or renew) for this client: nobody else is offered it until it runs out.
        m.leaseHolder = client.id;
        m.leaseHolderName = client.name;
        m.leaseUntil = now + leaseTime_;
        m.leaseUntilText = isoTimeIn(leaseTime_);
        ++m.fetches;
        std::vector<std::pair<std::string, std::string>> headers = {
            {"X-Demail-Lease-Until", m.leaseUntilText},
            {"X-Demail-Lease-Seconds", std::to_string(leaseTime_.count())}};
        if (m.retrieveRequested && !m.retrieveConfirmed) {
            const SimAccount* a = findAccount(m.account);
            if (a && a->authLevel == "high") {  // TR §7: first retrieval at level "hoch"
                m.retrieveConfirmed = true;
                std::string data = m.data;
                std::string sender = m.origSender, subj = m.origSubject, pid = m.origPrivateId,
                            dmid = m.deMailMessageId;
                confirm("retrieve", sender, sender, subj, pid, dmid, data);
                return {200, "message/rfc822", data, headers};  // m may have moved
            }
        }
        return {200, "message/rfc822", m.data, headers};
    }
    return error(404, "not_found", "no message " + id);
}

ApiReply ProviderState::acknowledge(const std::vector<std::string>& bound,
                                    const LeaseClient& client, const std::string& id) {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    for (auto& m : messages_) {
        if (m.id != id || !contains(bound, m.account))
            continue;
        // Only the holder of a live lease; an item nobody holds (never fetched, or the lease ran
        // out and nobody took it since) may be acknowledged by any client bound to the account,
        // as before leases. Acknowledging twice is harmless.
        if (!m.acked && leasedToOther(m, client, now)) {
            ++leaseRefusals_;
            return leasedError(m, now);
        }
        m.acked = true;
        m.leaseHolder.clear();
        return {204, "application/json", "", {}};
    }
    return error(404, "not_found", "no message " + id);
}

void ProviderState::setLeaseTime(std::chrono::seconds t) {
    std::lock_guard lock(mutex_);
    leaseTime_ = t;
}

bool ProviderState::leasedToOther(const StoredMessage& m, const LeaseClient& client,
                                  std::chrono::steady_clock::time_point now) {
    return !m.leaseHolder.empty() && m.leaseHolder != client.id && now < m.leaseUntil;
}

ApiReply ProviderState::leasedError(const StoredMessage& m,
                                    std::chrono::steady_clock::time_point now) {
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(m.leaseUntil - now);
    return error(409, "leased",
                 "message " + m.id + " is leased to " + m.leaseHolderName + " until " +
                     m.leaseUntilText + " (" + std::to_string(left.count() + 1) + " s left)");
}

std::string ProviderState::inject(const std::string& account, const std::string& message) {
    std::lock_guard lock(mutex_);
    if (!findAccount(account))
        return {};
    ParsedMessage pm = parseMessage(message);
    StoredMessage m;
    m.id = nextId("in-");
    m.account = lower(account);
    m.messageType = pm.valid && hasHeader(pm, "X-de-mail-message-type")
                        ? header(pm, "X-de-mail-message-type")
                        : "normal";
    m.data = message;
    m.injected = true;
    std::string id = m.id;
    deliver(std::move(m));
    return id;
}

void ProviderState::setBlocked(const std::string& account, bool blocked) {
    std::lock_guard lock(mutex_);
    auto it = accounts_.find(lower(account));
    if (it != accounts_.end())
        it->second.blocked = blocked;
}

std::string ProviderState::stateJson() const {
    std::lock_guard lock(mutex_);
    Poco::JSON::Object root;
    root.set("submissions", static_cast<Poco::UInt64>(submissions_));
    root.set("idempotencyKeys", static_cast<Poco::UInt64>(idempotency_.size()));
    root.set("idempotency", idempotencyEnabled_);
    root.set("outbound", static_cast<Poco::UInt64>(outbound_.size()));
    root.set("leaseSeconds", static_cast<Poco::Int64>(leaseTime_.count()));
    root.set("leaseRefusals", static_cast<Poco::UInt64>(leaseRefusals_));
    Poco::JSON::Array msgs;
    for (const auto& m : messages_) {
        Poco::JSON::Object o;
        o.set("id", m.id);
        o.set("account", m.account);
        o.set("messageType", m.messageType);
        o.set("acked", m.acked);
        o.set("injected", m.injected);
        o.set("fetches", static_cast<Poco::UInt64>(m.fetches));
        const bool leased =
            !m.acked && !m.leaseHolder.empty() && std::chrono::steady_clock::now() < m.leaseUntil;
        o.set("leaseHolder", leased ? m.leaseHolderName : std::string());
        o.set("leaseUntil", leased ? m.leaseUntilText : std::string());
        o.set("size", static_cast<Poco::UInt64>(m.data.size()));
        ParsedMessage pm = parseMessage(m.data);
        o.set("subject", header(pm, "Subject"));
        o.set("privateId", header(pm, "X-de-mail-private-id"));
        o.set("deMailMessageId", header(pm, "X-de-mail-message-id"));
        o.set("chosenRecipient", header(pm, "X-de-mail-chosen-recipient"));
        msgs.add(o);
    }
    root.set("messages", msgs);
    return toJson(root);
}

std::string ProviderState::inboxJson(const std::string& account) const {
    std::lock_guard lock(mutex_);
    Poco::JSON::Array arr;
    for (const auto& m : messages_) {
        if (m.account != lower(account))
            continue;
        Poco::JSON::Object o;
        o.set("id", m.id);
        o.set("messageType", m.messageType);
        o.set("acked", m.acked);
        arr.add(o);
    }
    Poco::JSON::Object root;
    root.set("messages", arr);
    return toJson(root);
}

std::string ProviderState::messageData(const std::string& id) const {
    std::lock_guard lock(mutex_);
    for (const auto& m : messages_)
        if (m.id == id)
            return m.data;
    return {};
}

}  // namespace demail::sim::provider
