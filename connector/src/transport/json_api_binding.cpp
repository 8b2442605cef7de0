// The HTTPS+JSON binding of docs/provider-api.md: JSON <-> values, error mapping, and the routes
// and headers over TlsClient. To bind another provider's API, write a file like this one and
// register it (provider_binding.cpp); the TLS client and the gateway stay as they are.
#include "demail/connector/transport/json_api_binding.h"

#include <Poco/URI.h>

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

namespace demail::connector {

const char* toString(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Retryable:
            return "retryable";
        case ErrorKind::Permanent:
            return "permanent";
        case ErrorKind::OperatorAction:
            return "operator_action";
    }
    return "unknown";
}

namespace api {
namespace {

TransportError malformed(const std::string& what) {
    return {ErrorKind::Retryable, "malformed_reply", "provider reply malformed: " + what, 0};
}

Poco::JSON::Object::Ptr parseObject(const std::string& body) {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var v = parser.parse(body);
    return v.extract<Poco::JSON::Object::Ptr>();
}

std::string getString(const Poco::JSON::Object::Ptr& o, const std::string& key) {
    if (!o->has(key) || o->isNull(key))
        throw Poco::DataFormatException("missing field " + key);
    return o->getValue<std::string>(key);
}

// Account and address fields become SMTP envelope addresses and log fields: a control character
// (CR, LF, NUL ...), a space or angle bracket in one is a malformed reply, never passed on.
std::string checkedAddress(const std::string& value, const std::string& what) {
    for (char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 32 || u == 127 || c == ' ' || c == '<' || c == '>')
            throw Poco::DataFormatException(what +
                                            " holds a control character, space or angle bracket");
    }
    return value;
}

bool getBool(const Poco::JSON::Object::Ptr& o, const std::string& key, bool dflt) {
    if (!o->has(key) || o->isNull(key))
        return dflt;
    return o->getValue<bool>(key);
}

// Codes in a 401/403 body that need a human (docs/provider-api.md "Errors").
const std::set<std::string>& operatorCodes() {
    static const std::set<std::string> codes = {
        "account_blocked",     "certificate_blocked", "certificate_unknown", "certificate_expired",
        "certificate_revoked", "token_blocked",       "not_authorised"};
    return codes;
}

// The operator codes that concern the one account a request named, not our card or certificate
// (ACM_FU §3.6: an account can be blocked while the others, and the card, are fine).
bool accountLevelCode(const std::string& code) {
    return code == "account_blocked" || code == "not_authorised";
}

}  // namespace

TransportError mapHttpError(int status, const std::string& body) {
    std::string code, message;
    try {
        auto o = parseObject(body);
        auto err = o->getObject("error");
        if (err) {
            code = err->optValue<std::string>("code", "");
            message = err->optValue<std::string>("message", "");
        }
    } catch (const Poco::Exception&) {
    } catch (const std::exception&) {
    }
    const std::string statusCode = "http_" + std::to_string(status);
    if (code.empty())
        code = statusCode;
    std::string reason = "provider answered " + std::to_string(status) + " " + code;
    if (!message.empty())
        reason += ": " + message;
    ErrorKind kind;
    if (status == 401 || status == 403)
        kind = ErrorKind::OperatorAction;
    else if (status == 408 || status == 425 || status == 429 || status >= 500 || status < 400)
        kind = ErrorKind::Retryable;
    else
        kind = ErrorKind::Permanent;  // validation: 400, 404, 409, 413, 415, 422 ...
    if (operatorCodes().count(code))
        kind = ErrorKind::OperatorAction;
    // The inbox lease (docs/provider-api.md "Inbox semantics"): a peer gateway holds the item
    // (409 leased: free again when its lease runs out) or delivered it (410 acknowledged).
    const bool heldElsewhere = code == "leased" || code == "acknowledged";
    if (code == "leased")
        kind = ErrorKind::Retryable;
    return {kind,
            code,
            reason,
            status,
            kind == ErrorKind::OperatorAction && accountLevelCode(code),
            heldElsewhere};
}

namespace {

// A domain from the provider widens what counts as De-Mail (AccountDirectory): only a plain
// domain name with at least two labels, so that neither "de" nor "*.example" nor a value with
// an '@' or a control character ever becomes one.
std::string checkedDomain(std::string value) {
    for (auto& c : value)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool ok = !value.empty() && value.size() <= 253 && value.front() != '.' &&
              value.back() != '.' && value.find("..") == std::string::npos &&
              value.find('.') != std::string::npos;
    for (char c : value)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
    if (!ok)
        throw Poco::DataFormatException("domain '" + value.substr(0, 64) +
                                        "' is not a domain name such as firma.de-mail.de");
    return value;
}

std::string lowerCopy(std::string v) {
    for (auto& c : v)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
}

}  // namespace

Result<AccountListing> parseAccounts(const std::string& body) {
    try {
        auto o = parseObject(body);
        auto arr = o->getArray("accounts");
        if (!arr)
            return malformed("no accounts array");
        AccountListing out;
        for (size_t i = 0; i < arr->size(); ++i) {
            auto a = arr->getObject(static_cast<unsigned>(i));
            if (!a)
                return malformed("account is not an object");
            Account acc;
            acc.address = checkedAddress(getString(a, "address"), "account address");
            acc.domain = checkedAddress(a->optValue<std::string>("domain", ""), "account domain");
            if (acc.domain.empty() && acc.address.find('@') != std::string::npos)
                acc.domain = acc.address.substr(acc.address.find('@') + 1);
            acc.authLevel = a->optValue<std::string>("authLevel", "normal");
            acc.retrieveConfirmationAllowed = getBool(a, "retrieveConfirmation", false);
            acc.blocked = getBool(a, "blocked", false);
            out.accounts.push_back(std::move(acc));
        }
        // Optional: a provider that names no domains leaves the configured ones.
        if (o->has("domains") && !o->isNull("domains")) {
            auto doms = o->getArray("domains");
            if (!doms)
                return malformed("domains is not an array");
            for (size_t i = 0; i < doms->size(); ++i) {
                auto d = checkedDomain(doms->getElement<std::string>(static_cast<unsigned>(i)));
                if (std::find(out.domains.begin(), out.domains.end(), d) == out.domains.end())
                    out.domains.push_back(std::move(d));
            }
        }
        return out;
    } catch (const Poco::Exception& e) {
        return malformed(e.displayText());
    } catch (const std::exception& e) {
        return malformed(e.what());
    }
}

Result<AddressInfo> parseAddress(int status, const std::string& body, const std::string& address) {
    AddressInfo info;
    info.address = address;
    if (status == 404 || status == 405 || status == 501) {
        auto err = mapHttpError(status, body);
        if (status == 404 && (err.code == "address_unknown" || err.code == "address_closed")) {
            info.reason = err.code == "address_closed" ? "closed" : "unknown";
            return info;
        }
        // No such resource: the provider does not offer the look-up. Never "does not exist".
        err.kind = ErrorKind::Permanent;
        err.code = "lookup_not_offered";
        err.reason = "the provider does not offer the address look-up (" + err.reason + ")";
        return err;
    }
    if (status != 200)
        return mapHttpError(status, body);
    try {
        auto o = parseObject(body);
        if (lowerCopy(checkedAddress(getString(o, "address"), "address")) != lowerCopy(address))
            return malformed("look-up answered another address");
        // Strictly a JSON boolean: Poco would read "yes" or 1 as true, and a yes here lets mail
        // through.
        if (!o->has("exists") || o->get("exists").type() != typeid(bool))
            return malformed("exists is not true or false");
        info.exists = o->getValue<bool>("exists");
        if (!info.exists)
            info.reason = o->optValue<std::string>("status", "") == "closed" ? "closed" : "unknown";
        info.authLevel = o->optValue<std::string>("authLevel", "normal");
        if (info.authLevel != "normal" && info.authLevel != "high")
            return malformed("authLevel '" + info.authLevel.substr(0, 16) + "'");
        info.accessOpening = getBool(o, "accessOpening", false);
        return info;
    } catch (const Poco::Exception& e) {
        return malformed(e.displayText());
    } catch (const std::exception& e) {
        return malformed(e.what());
    }
}

Result<SubmitReceipt> parseSubmitReceipt(int status, const std::string& body) {
    try {
        auto o = parseObject(body);
        SubmitReceipt r;
        auto ids = o->getArray("messageIds");
        if (!ids || ids->size() == 0)
            return malformed("no messageIds");
        for (size_t i = 0; i < ids->size(); ++i)
            r.messageIds.push_back(ids->getElement<std::string>(static_cast<unsigned>(i)));
        r.duplicate = getBool(o, "duplicate", status == 200);
        return r;
    } catch (const Poco::Exception& e) {
        return malformed(e.displayText());
    } catch (const std::exception& e) {
        return malformed(e.what());
    }
}

Result<std::vector<InboundRef>> parseInbox(const std::string& body) {
    try {
        auto o = parseObject(body);
        auto arr = o->getArray("messages");
        if (!arr)
            return malformed("no messages array");
        std::vector<InboundRef> out;
        for (size_t i = 0; i < arr->size(); ++i) {
            auto m = arr->getObject(static_cast<unsigned>(i));
            if (!m)
                return malformed("message is not an object");
            InboundRef ref;
            ref.id = getString(m, "id");
            if (ref.id.empty() || ref.id.find_first_of("/?#% ") != std::string::npos ||
                std::any_of(ref.id.begin(), ref.id.end(),
                            [](char c) { return static_cast<unsigned char>(c) < 32 || c == 127; }))
                return malformed("bad message id");
            ref.account =
                checkedAddress(m->optValue<std::string>("account", ""), "message account");
            ref.messageType = m->optValue<std::string>("messageType", "");
            ref.size = m->optValue<Poco::UInt64>("size", 0);
            out.push_back(std::move(ref));
        }
        return out;
    } catch (const Poco::Exception& e) {
        return malformed(e.displayText());
    } catch (const std::exception& e) {
        return malformed(e.what());
    }
}

Result<std::optional<SubmitReceipt>> parseLookup(const std::string& body,
                                                 const std::string& privateId) {
    try {
        auto o = parseObject(body);
        auto arr = o->getArray("submissions");
        if (!arr)
            return malformed("no submissions array");
        if (arr->size() == 0)
            return std::optional<SubmitReceipt>{};
        auto first = arr->getObject(0);
        if (!first)
            return malformed("submission is not an object");
        if (first->optValue<std::string>("privateId", "") != privateId)
            return malformed("look-up answered another private-id");
        SubmitReceipt r;
        auto ids = first->getArray("messageIds");
        if (!ids || ids->size() == 0)
            return malformed("no messageIds");
        for (size_t i = 0; i < ids->size(); ++i)
            r.messageIds.push_back(ids->getElement<std::string>(static_cast<unsigned>(i)));
        r.duplicate = true;  // it was there before this attempt
        return std::optional<SubmitReceipt>{std::move(r)};
    } catch (const Poco::Exception& e) {
        return malformed(e.displayText());
    } catch (const std::exception& e) {
        return malformed(e.what());
    }
}

std::string submitOptionsJson(const SubmitOptions& o) {
    Poco::JSON::Object obj;
    obj.set("personal", o.personal);
    obj.set("authoritative", o.authoritative);
    obj.set("dispatchConfirmation", o.dispatchConfirmation);
    obj.set("receiptConfirmation", o.receiptConfirmation);
    obj.set("retrieveConfirmation", o.retrieveConfirmation);
    std::ostringstream out;
    obj.stringify(out);
    return out.str();
}

}  // namespace api

JsonApiConnection::JsonApiConnection(ProviderEndpoint endpoint, ClientCredentials& credentials,
                                     TransportTimeouts timeouts, Poco::Net::Session::Ptr resume,
                                     OutcomeResolution resolution)
    : client_(std::move(endpoint), credentials, timeouts, std::move(resume)),
      resolution_(resolution) {}

Result<Done> JsonApiConnection::open() {
    auto accounts = listAccounts();
    if (!accounts)
        return accounts.error();
    return Done{};
}

Result<AccountListing> JsonApiConnection::listAccounts() {
    auto r = client_.request("GET", "/v1/accounts", "", "");
    if (!r)
        return r.error();
    if (r.value().status != 200)
        return api::mapHttpError(r.value().status, r.value().body);
    return api::parseAccounts(r.value().body);
}

Result<AddressInfo> JsonApiConnection::lookupAddress(const std::string& address) {
    if (address.empty() || address.size() > 254 || address.find('@') == std::string::npos)
        return TransportError{ErrorKind::Permanent, "bad_address", "not an address to look up", 0};
    std::string encoded;
    Poco::URI::encode(address, "&=+?#/%", encoded);
    auto r = client_.request("GET", "/v1/addresses/" + encoded, "", "");
    if (!r)
        return r.error();
    return api::parseAddress(r.value().status, r.value().body, address);
}

Result<SubmitReceipt> JsonApiConnection::submit(const Submission& s) {
    std::vector<std::pair<std::string, std::string>> headers = {
        {"X-Demail-Account", s.account}, {"X-Demail-Options", api::submitOptionsJson(s.options)}};
    if (resolution_ == OutcomeResolution::IdempotencyKey) {
        if (s.idempotencyKey.empty())
            return TransportError{ErrorKind::Permanent, "no_idempotency_key",
                                  "submission without idempotency key", 0};
        headers.emplace_back("Idempotency-Key", s.idempotencyKey);
    }
    auto r = client_.request("POST", "/v1/messages", "message/rfc822", s.rfc5322, headers,
                             {s.bodyStream, s.bodyStream ? s.bodyLength : 0});
    if (!r)
        return r.error();
    int status = r.value().status;
    if (status != 200 && status != 201)
        return api::mapHttpError(status, r.value().body);
    return api::parseSubmitReceipt(status, r.value().body);
}

Result<std::optional<SubmitReceipt>> JsonApiConnection::findSubmission(
    const std::string& account, const std::string& privateId) {
    std::string a, p;
    Poco::URI::encode(account, "&=+?#/", a);
    Poco::URI::encode(privateId, "&=+?#/", p);
    auto r = client_.request("GET", "/v1/messages?account=" + a + "&privateId=" + p, "", "");
    if (!r)
        return r.error();
    // A 404 is "no such endpoint" at a provider without the look-up, not "not sent": it maps to
    // an error like every other non-200, so the message is never sent on its strength.
    if (r.value().status != 200)
        return api::mapHttpError(r.value().status, r.value().body);
    return api::parseLookup(r.value().body, privateId);
}

Result<std::vector<InboundRef>> JsonApiConnection::listInbound(const std::string& account) {
    std::string encoded;
    Poco::URI::encode(account, "&=+?#/", encoded);
    auto r = client_.request("GET", "/v1/inbox?account=" + encoded, "", "");
    if (!r)
        return r.error();
    if (r.value().status != 200)
        return api::mapHttpError(r.value().status, r.value().body);
    return api::parseInbox(r.value().body);
}

namespace {
bool validId(const std::string& id) {
    return !id.empty() && id.size() <= 200 &&
           id.find_first_not_of(
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
               std::string::npos;
}
TransportError badId(const std::string& id) {
    return {ErrorKind::Permanent, "bad_id", "invalid inbound message id '" + id + "'", 0};
}
}  // namespace

Result<std::string> JsonApiConnection::fetch(const std::string& id) {
    if (!validId(id))
        return badId(id);
    auto r = client_.request("GET", "/v1/inbox/" + id, "", "", {{"Accept", "message/rfc822"}}, {},
                             TlsClient::kMaxFetchReply);
    if (!r)
        return r.error();
    if (r.value().status != 200)
        return api::mapHttpError(r.value().status, r.value().body);
    return r.value().body;
}

Result<Done> JsonApiConnection::acknowledge(const std::string& id) {
    if (!validId(id))
        return badId(id);
    auto r = client_.request("POST", "/v1/inbox/" + id + "/ack", "application/json", "{}");
    if (!r)
        return r.error();
    if (r.value().status != 200 && r.value().status != 204)
        return api::mapHttpError(r.value().status, r.value().body);
    return Done{};
}

}  // namespace demail::connector
