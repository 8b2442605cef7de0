#include "demail/connector/message/demail_headers.h"

#include <cctype>

#include "demail/connector/message/header_block.h"

namespace demail::connector {

const std::vector<std::string>& providerSetHeaders() {
    // TR_De_Mail_PVD_IO Tabelle 1 rows 11-19, 21-24: set by the provider, never by a client.
    static const std::vector<std::string> names = {
        "X-de-mail-auth-level",
        "X-de-mail-auth-mechanism",
        "X-de-mail-message-id",
        "X-de-mail-originator-provider",
        "X-de-mail-message-type",
        "X-de-mail-integrity",
        "X-de-mail-signature-certificate",
        "X-de-mail-actual-recipient",
        "X-de-mail-version",
        "X-de-mail-account-holder",
        "X-de-mail-notification-type",
        "Envelope-to",
    };
    return names;
}

std::optional<bool> parseYesNo(const std::string* value) {
    if (!value)
        return false;
    if (*value == "yes")
        return true;
    if (*value == "no")
        return false;
    return std::nullopt;
}

bool applyOptionWord(std::string_view raw, ShippingOptions& o) {
    const std::string w = toLower(trim(raw));
    if (w == "personal" || w == "persoenlich" || w == "persönlich" || w == "private")
        o.personal = true;
    else if (w == "authoritative" || w == "absenderbestaetigt" || w == "absenderbestätigt" ||
             w == "sender-confirmed")
        o.authoritative = true;
    else if (w == "dispatch-confirmation" || w == "versandbestaetigung" ||
             w == "versandbestätigung")
        o.dispatchConfirmation = true;
    else if (w == "receipt-confirmation" || w == "eingangsbestaetigung" ||
             w == "eingangsbestätigung")
        o.receiptConfirmation = true;
    else if (w == "retrieve-confirmation" || w == "abholbestaetigung" || w == "abholbestätigung")
        o.retrieveConfirmation = true;
    else
        return false;
    return true;
}

std::optional<std::vector<std::string>> parseAddressList(std::string_view list) {
    std::vector<std::string> out;
    // Split on commas outside quotes, angle brackets and comments; ':' and ';' mark groups.
    std::string item;
    bool quoted = false, angle = false;
    int comment = 0;
    auto flush = [&]() -> bool {
        std::string s = trim(item);
        item.clear();
        if (s.empty())
            return true;
        std::string addr;
        const auto lt = s.rfind('<');
        if (lt != std::string::npos) {
            const auto gt = s.find('>', lt);
            if (gt == std::string::npos)
                return false;
            addr = trim(s.substr(lt + 1, gt - lt - 1));
        } else {
            addr = s;
        }
        if (addr.find('@') == std::string::npos)
            return false;
        const auto at = addr.rfind('@');
        addr = addr.substr(0, at + 1) + toLower(addr.substr(at + 1));
        out.push_back(addr);
        return true;
    };
    for (std::size_t i = 0; i < list.size(); ++i) {
        const char c = list[i];
        if (c == '\0' || c == '\r' || c == '\n')
            return std::nullopt;
        if (quoted) {
            if (c == '\\' && i + 1 < list.size())
                item += list[++i];
            else if (c == '"')
                quoted = false;
            else
                item += c;
            continue;
        }
        if (comment > 0) {
            if (c == '(')
                ++comment;
            else if (c == ')')
                --comment;
            continue;
        }
        if (c == '"') {
            quoted = true;
        } else if (c == '(') {
            comment = 1;
        } else if (c == '<') {
            angle = true;
            item += c;
        } else if (c == '>') {
            angle = false;
            item += c;
        } else if ((c == ',' || c == ';') && !angle) {
            if (!flush())
                return std::nullopt;
        } else if (c == ':' && !angle) {
            item.clear();  // group name
        } else {
            item += c;
        }
    }
    if (quoted || angle || comment > 0 || !flush())
        return std::nullopt;
    return out;
}

std::optional<ChosenRecipients> parseChosenRecipient(std::string_view value, std::string& error) {
    ChosenRecipients r;
    bool seen[3] = {false, false, false};
    // Split at ';' that start a new "to="/"cc="/"bcc=" part (an address list may not hold ';'
    // outside groups, which the TR does not use here).
    std::size_t pos = 0;
    while (pos <= value.size()) {
        std::size_t semi = value.find(';', pos);
        if (semi == std::string_view::npos)
            semi = value.size();
        const std::string part = trim(value.substr(pos, semi - pos));
        pos = semi + 1;
        if (part.empty()) {
            if (semi == value.size())
                break;
            continue;
        }
        const auto eq = part.find('=');
        if (eq == std::string::npos) {
            error = "X-de-mail-chosen-recipient: '" + part + "' lacks to=/cc=/bcc=";
            return std::nullopt;
        }
        const std::string kind = toLower(trim(part.substr(0, eq)));
        const int index = kind == "to" ? 0 : kind == "cc" ? 1 : kind == "bcc" ? 2 : -1;
        if (index < 0) {
            error = "X-de-mail-chosen-recipient: unknown part '" + kind + "'";
            return std::nullopt;
        }
        if (seen[index]) {
            error = "X-de-mail-chosen-recipient: '" + kind + "' given twice";
            return std::nullopt;
        }
        seen[index] = true;
        auto list = parseAddressList(part.substr(eq + 1));
        if (!list) {
            error = "X-de-mail-chosen-recipient: malformed address list in '" + kind + "'";
            return std::nullopt;
        }
        (index == 0 ? r.to : index == 1 ? r.cc : r.bcc) = std::move(*list);
        if (semi == value.size())
            break;
    }
    if (r.to.empty() && r.cc.empty() && r.bcc.empty()) {
        error = "X-de-mail-chosen-recipient names no recipient";
        return std::nullopt;
    }
    return r;
}

std::string formatChosenRecipient(const ChosenRecipients& r) {
    std::string out;
    auto part = [&out](const char* kind, const std::vector<std::string>& list) {
        if (list.empty())
            return;
        if (!out.empty())
            out += "; ";
        out += kind;
        out += '=';
        for (std::size_t i = 0; i < list.size(); ++i)
            out += (i ? ", " : "") + list[i];
    };
    part("to", r.to);
    part("cc", r.cc);
    part("bcc", r.bcc);
    return out;
}

std::string domainOf(std::string_view address) {
    const auto at = address.rfind('@');
    return at == std::string_view::npos ? std::string() : toLower(address.substr(at + 1));
}

bool isValidDeMailAddress(std::string_view a) {
    const auto at = a.rfind('@');
    if (at == std::string_view::npos || at == 0 || at > 64 || a.size() > 253 ||
        a.size() - at - 1 > 189 || a.size() - at - 1 == 0)
        return false;
    for (char c : a) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 32 || u == 127 || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' ||
            c == '(' || c == ')' || c == '\\')
            return false;
    }
    const std::string d = domainOf(a);
    return d.find('.') != std::string::npos && d.front() != '.' && d.back() != '.' &&
           d.find("..") == std::string::npos && a.substr(0, at).find('@') == std::string_view::npos;
}

bool inDomains(std::string_view address, const std::vector<std::string>& domains) {
    const std::string d = domainOf(address);
    if (d.empty())
        return false;
    for (const auto& raw : domains) {
        const std::string dom = toLower(trim(raw));
        if (dom.empty())
            continue;
        if (d == dom ||
            (d.size() > dom.size() && d.compare(d.size() - dom.size(), dom.size(), dom) == 0 &&
             d[d.size() - dom.size() - 1] == '.'))
            return true;
    }
    return false;
}

}  // namespace demail::connector
