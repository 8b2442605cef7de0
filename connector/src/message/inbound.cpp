#include "demail/connector/message/inbound.h"

#include <Poco/Exception.h>
#include <Poco/SAX/Attributes.h>
#include <Poco/SAX/DeclHandler.h>
#include <Poco/SAX/DefaultHandler.h>
#include <Poco/SAX/LexicalHandler.h>
#include <Poco/SAX/SAXException.h>
#include <Poco/SAX/SAXParser.h>
#include <Poco/XML/XMLString.h>

#include <algorithm>
#include <set>

#include "demail/connector/message/demail_headers.h"
#include "demail/connector/message/header_block.h"

namespace demail::connector {

const char* toString(InboundKind k) {
    switch (k) {
        case InboundKind::Normal:
            return "message";
        case InboundKind::DispatchConfirmation:
            return "dispatch-confirmation";
        case InboundKind::ReceiptConfirmation:
            return "receipt-confirmation";
        case InboundKind::RetrieveConfirmation:
            return "retrieve-confirmation";
        case InboundKind::MalwareAcknowledge:
            return "malware-acknowledge";
        case InboundKind::MalwareNotification:
            return "malware-notification";
        case InboundKind::Notification:
            return "notification";
        case InboundKind::Identification:
            return "identification";
        case InboundKind::Unknown:
            return "unknown";
    }
    return "unknown";
}

bool isConfirmation(InboundKind k) {
    return k == InboundKind::DispatchConfirmation || k == InboundKind::ReceiptConfirmation ||
           k == InboundKind::RetrieveConfirmation;
}

InboundClassification classifyInbound(std::string_view message) {
    InboundClassification c;
    std::string error;
    auto h = HeaderBlock::parse(message, error);
    if (!h) {
        c.error = error;
        return c;
    }
    const std::string* type = h->get(header::kMessageType);
    c.messageType = type ? *type : "";
    const std::string t = toLower(c.messageType);
    static const std::pair<const char*, InboundKind> kinds[] = {
        {"normal", InboundKind::Normal},
        {"confirmation of dispatch", InboundKind::DispatchConfirmation},
        {"confirmation of receipt", InboundKind::ReceiptConfirmation},
        {"confirmation of retrieve", InboundKind::RetrieveConfirmation},
        {"malware-acknowledge", InboundKind::MalwareAcknowledge},
        {"malware-notification", InboundKind::MalwareNotification},
        {"notification", InboundKind::Notification},
        {"identification", InboundKind::Identification},
    };
    for (const auto& [name, kind] : kinds)
        if (t == name)
            c.kind = kind;
    if (c.kind == InboundKind::Notification) {
        // TR step 41: a missing or unknown notification type may be treated as "other".
        const std::string* nt = h->get(header::kNotificationType);
        const std::string v = nt ? toLower(*nt) : "";
        c.notificationType = (v == "unknown-recipient" || v == "closed-account" ||
                              v == "invalid-format" || v == "other")
                                 ? v
                                 : "other";
    }
    if (const std::string* id = h->get(header::kPrivateId))
        c.privateId = id->substr(0, 1024);
    if (const std::string* s = h->get(header::kSender))
        c.sender = *s;
    if (const std::string* s = h->get("Subject"))
        c.subject = *s;
    c.personal = parseYesNo(h->get(header::kPrivate)).value_or(false);
    c.retrieveConfirmation = parseYesNo(h->get(header::kRetrieveConfirmation)).value_or(false);
    return c;
}

std::optional<std::string> ConfirmationXml::metadataValue(std::string_view name) const {
    for (const auto& [n, v] : metadata)
        if (equalsIgnoreCase(n, name))
            return v;
    return std::nullopt;
}

namespace {

constexpr int kMaxXmlDepth = 32;  // real confirmations nest 4 deep
constexpr std::size_t kMaxFieldText = 64 * 1024;

// Collects what we read from a confirmation while Expat streams through it: no tree is built, so
// neither parsing nor cleaning up recurses, and nesting deeper than kMaxXmlDepth stops the parse
// (M8: a DOM of 200,000 levels overflowed the stack when it was freed). Any DTD, entity or
// element declaration stops it too, whatever the input's encoding (the old byte search for
// "<!DOCTYPE" missed UTF-16).
class ConfirmationHandler final : public Poco::XML::DefaultHandler,
                                  public Poco::XML::LexicalHandler,
                                  public Poco::XML::DeclHandler {
  public:
    ConfirmationXml result;
    std::string rootNamespace;

    void startElement(const Poco::XML::XMLString& uri, const Poco::XML::XMLString& localName,
                      const Poco::XML::XMLString&, const Poco::XML::Attributes&) override {
        if (++depth_ > kMaxXmlDepth)
            throw Poco::XML::SAXException("XML nested deeper than " + std::to_string(kMaxXmlDepth) +
                                          " levels");
        if (depth_ == 1) {
            result.rootElement = localName;
            rootNamespace = uri;
        } else if (depth_ == 2) {
            inMetadata_ = localName == "Metadata";
            for (std::string* field : {&result.sender, &result.subject, &result.text, &result.time,
                                       &result.deliveryTime, &result.hash})
                if (localName == nameOf(field) && !seen_.count(localName)) {
                    seen_.insert(localName);
                    target_ = field;
                    targetDepth_ = depth_;
                }
        } else if (depth_ == 3 && inMetadata_ && localName == "Metadate") {
            result.metadata.emplace_back();
            metaNameSeen_ = metaValueSeen_ = false;
            inMetadate_ = true;
        } else if (depth_ == 4 && inMetadate_ && !target_) {
            if (localName == "Name" && !metaNameSeen_) {
                metaNameSeen_ = true;
                target_ = &result.metadata.back().first;
                targetDepth_ = depth_;
            } else if (localName == "Value" && !metaValueSeen_) {
                metaValueSeen_ = true;
                target_ = &result.metadata.back().second;
                targetDepth_ = depth_;
            }
        }
    }
    void endElement(const Poco::XML::XMLString&, const Poco::XML::XMLString&,
                    const Poco::XML::XMLString&) override {
        if (target_ && depth_ == targetDepth_) {
            *target_ = trim(*target_);
            target_ = nullptr;
        }
        if (depth_ == 3)
            inMetadate_ = false;
        if (depth_ == 2)
            inMetadata_ = false;
        --depth_;
    }
    void characters(const Poco::XML::XMLChar ch[], int start, int length) override {
        if (target_ && target_->size() < kMaxFieldText)
            target_->append(ch + start, std::min<std::size_t>(static_cast<std::size_t>(length),
                                                              kMaxFieldText - target_->size()));
    }
    // No DTD of any kind: that rules out entity expansion and external entities.
    void startDTD(const Poco::XML::XMLString&, const Poco::XML::XMLString&,
                  const Poco::XML::XMLString&) override {
        throw Poco::XML::SAXException("a DTD is not allowed");
    }
    void endDTD() override {}
    void startEntity(const Poco::XML::XMLString&) override {
        throw Poco::XML::SAXException("entities are not allowed");
    }
    void endEntity(const Poco::XML::XMLString&) override {}
    void startCDATA() override {}
    void endCDATA() override {}
    void comment(const Poco::XML::XMLChar[], int, int) override {}
    void attributeDecl(const Poco::XML::XMLString&, const Poco::XML::XMLString&,
                       const Poco::XML::XMLString*, const Poco::XML::XMLString*) override {
        throw Poco::XML::SAXException("declarations are not allowed");
    }
    void elementDecl(const Poco::XML::XMLString&, const Poco::XML::XMLString&) override {
        throw Poco::XML::SAXException("declarations are not allowed");
    }
    void externalEntityDecl(const Poco::XML::XMLString&, const Poco::XML::XMLString*,
                            const Poco::XML::XMLString&) override {
        throw Poco::XML::SAXException("entity declarations are not allowed");
    }
    void internalEntityDecl(const Poco::XML::XMLString&, const Poco::XML::XMLString&) override {
        throw Poco::XML::SAXException("entity declarations are not allowed");
    }
    void notationDecl(const Poco::XML::XMLString&, const Poco::XML::XMLString*,
                      const Poco::XML::XMLString*) override {
        throw Poco::XML::SAXException("declarations are not allowed");
    }
    void unparsedEntityDecl(const Poco::XML::XMLString&, const Poco::XML::XMLString*,
                            const Poco::XML::XMLString&, const Poco::XML::XMLString&) override {
        throw Poco::XML::SAXException("entity declarations are not allowed");
    }

  private:
    const char* nameOf(const std::string* field) const {
        if (field == &result.sender)
            return "Sender";
        if (field == &result.subject)
            return "Subject";
        if (field == &result.text)
            return "Text";
        if (field == &result.time)
            return "Time";
        if (field == &result.deliveryTime)
            return "DeliveryTime";
        return "Hash";
    }
    int depth_ = 0;
    bool inMetadata_ = false, inMetadate_ = false, metaNameSeen_ = false, metaValueSeen_ = false;
    std::set<std::string> seen_;
    std::string* target_ = nullptr;
    int targetDepth_ = 0;
};

// UTF-8 (optionally with its BOM) whose first non-blank character is '<'. Anything else (UTF-16,
// UTF-32, EBCDIC) is refused before Expat sees it, so no check can be bypassed by an encoding.
bool looksLikeUtf8Xml(std::string_view xml) {
    if (xml.substr(0, 3) == "\xEF\xBB\xBF")
        xml.remove_prefix(3);
    const auto first = xml.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos || xml[first] != '<')
        return false;
    // An XML declaration may name an encoding; only UTF-8 (or its subset US-ASCII) is taken.
    if (xml.substr(first, 5) == "<?xml") {
        const auto end = xml.find("?>", first);
        const std::string decl = toLower(xml.substr(
            first, end == std::string_view::npos ? std::string_view::npos : end - first));
        const auto enc = decl.find("encoding");
        if (enc != std::string::npos && decl.find("utf-8", enc) == std::string::npos &&
            decl.find("us-ascii", enc) == std::string::npos)
            return false;
    }
    return xml.find('\0') == std::string_view::npos;
}

}  // namespace

std::optional<ConfirmationXml> parseConfirmationXml(std::string_view xml, std::string& error) {
    if (xml.size() > (4u << 20)) {
        error = "confirmation XML larger than 4 MiB";
        return std::nullopt;
    }
    if (!looksLikeUtf8Xml(xml)) {
        error = "confirmation XML refused: not UTF-8 text starting with '<'";
        return std::nullopt;
    }
    // Belt and braces: the handler refuses DTDs too, whatever their spelling.
    if (xml.find("<!DOCTYPE") != std::string_view::npos ||
        xml.find("<!ENTITY") != std::string_view::npos) {
        error = "confirmation XML with a DTD or entity declaration refused";
        return std::nullopt;
    }
    try {
        ConfirmationHandler handler;
        Poco::XML::SAXParser parser("UTF-8");
        parser.setFeature(Poco::XML::XMLReader::FEATURE_NAMESPACES, true);
        parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_GENERAL_ENTITIES, false);
        parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_PARAMETER_ENTITIES, false);
        parser.setContentHandler(&handler);
        parser.setErrorHandler(&handler);
        parser.setDTDHandler(&handler);
        parser.setProperty(Poco::XML::XMLReader::PROPERTY_LEXICAL_HANDLER,
                           static_cast<Poco::XML::LexicalHandler*>(&handler));
        parser.setProperty(Poco::XML::XMLReader::PROPERTY_DECLARATION_HANDLER,
                           static_cast<Poco::XML::DeclHandler*>(&handler));
        parser.parseMemoryNP(xml.data(), xml.size());
        ConfirmationXml c = std::move(handler.result);
        if (handler.rootNamespace != "urn:de-mail") {
            error = "the XML is not in the urn:de-mail namespace";
            return std::nullopt;
        }
        if (c.rootElement != "Acknowledge-Message" && c.rootElement != "Notification-Message") {
            error = "unexpected root element " + c.rootElement;
            return std::nullopt;
        }
        return c;
    } catch (const Poco::Exception& e) {
        error = "confirmation XML refused: " + e.displayText();
    } catch (const std::exception& e) {
        error = std::string("confirmation XML refused: ") + e.what();
    }
    return std::nullopt;
}

namespace {

// RFC 2045 §6.8. Characters outside the alphabet (line breaks) are skipped; decoding stops at '='.
std::string decodeBase64(std::string_view in) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (const char ch : in) {
        int v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '+')
            v = 62;
        else if (ch == '/')
            v = 63;
        else if (ch == '=')
            break;
        else
            continue;
        buffer = (buffer << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xff));
        }
    }
    return out;
}

// RFC 2045 §6.7: "=XX" and soft line breaks ("=" at the end of a line); anything malformed is
// kept as written.
std::string decodeQuotedPrintable(std::string_view in) {
    std::string out;
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '=') {
            out.push_back(in[i]);
            continue;
        }
        std::size_t j = i + 1;
        while (j < in.size() && (in[j] == ' ' || in[j] == '\t'))
            ++j;
        if (j < in.size() && (in[j] == '\r' || in[j] == '\n')) {  // soft line break
            i = (in[j] == '\r' && j + 1 < in.size() && in[j + 1] == '\n') ? j + 1 : j;
            continue;
        }
        if (i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
            i += 2;
            continue;
        }
        out.push_back('=');
    }
    return out;
}

// A part's body with its Content-Transfer-Encoding undone (7bit, 8bit, binary: as it is).
std::string decodedBody(const HeaderBlock& h, std::string_view body) {
    const std::string* cte = h.get("Content-Transfer-Encoding");
    const std::string enc = cte ? toLower(trim(*cte)) : "";
    if (enc == "base64")
        return decodeBase64(body);
    if (enc == "quoted-printable")
        return decodeQuotedPrintable(body);
    return std::string(body);
}

std::string boundaryOf(const std::string& contentType) {
    const auto b = toLower(contentType).find("boundary=");
    if (b == std::string::npos)
        return {};
    std::string boundary = contentType.substr(b + 9);  // as written: case matters
    if (!boundary.empty() && boundary[0] == '"')
        return boundary.substr(1, boundary.find('"', 1) - 1);
    return boundary.substr(0, boundary.find_first_of("; \t"));
}

constexpr int kMaxMimeDepth = 8;    // a confirmation nests 1 deep, a forwarded one 2 or 3
constexpr int kMaxMimeParts = 100;  // over the whole message

// Depth first, in order: the first text/xml or application/xml leaf (any nesting up to
// kMaxMimeDepth) is decoded and parsed. Returns nothing and leaves error empty when the entity
// holds no XML part.
std::optional<ConfirmationXml> findXml(std::string_view entity, int depth, int& partsSeen,
                                       std::string& error) {
    std::string headerError;
    auto h = HeaderBlock::parse(entity, headerError);
    if (!h)
        return std::nullopt;
    const std::string* ct = h->get("Content-Type");
    const std::string type = ct ? toLower(*ct) : "";
    const std::string_view body = entity.substr(std::min(h->bodyOffset(), entity.size()));
    if (type.find("multipart/") == std::string::npos) {
        if (type.find("xml") == std::string::npos)
            return std::nullopt;
        std::string decoded = decodedBody(*h, body);
        auto xml = parseConfirmationXml(decoded, error);
        if (!xml && error.empty())
            error = "the XML part cannot be parsed";
        if (xml)
            xml->raw = std::move(decoded);
        return xml;
    }
    if (depth >= kMaxMimeDepth) {
        error = "MIME parts nested deeper than " + std::to_string(kMaxMimeDepth) + " levels";
        return std::nullopt;
    }
    const std::string boundary = boundaryOf(*ct);
    if (boundary.empty())
        return std::nullopt;
    const std::string delim = "--" + boundary;
    std::size_t pos = body.find(delim);
    while (pos != std::string_view::npos && partsSeen < kMaxMimeParts) {
        ++partsSeen;
        std::size_t start = body.find('\n', pos);
        if (start == std::string_view::npos)
            break;
        ++start;
        const std::size_t end = body.find(delim, start);
        if (end == std::string_view::npos)
            break;
        if (auto xml = findXml(body.substr(start, end - start), depth + 1, partsSeen, error))
            return xml;
        if (!error.empty())
            return std::nullopt;  // the first XML part decides; a broken one is not skipped
        pos = end;
        if (body.substr(end + delim.size(), 2) == "--")
            break;
    }
    return std::nullopt;
}

}  // namespace

std::optional<ConfirmationXml> confirmationXmlOf(std::string_view message, std::string& error) {
    error.clear();
    auto h = HeaderBlock::parse(message, error);
    if (!h)
        return std::nullopt;
    int partsSeen = 0;
    auto xml = findXml(message, 0, partsSeen, error);
    if (!xml && error.empty())
        error = "the message has no XML part";
    return xml;
}

std::optional<std::string> correlate(const InboundClassification& c,
                                     const std::optional<ConfirmationXml>& xml) {
    if (!c.privateId.empty())
        return c.privateId;
    if (xml) {
        for (const char* name : {"X-de-mail-private-id", "private-id", "Nachrichtenkennung"})
            if (auto v = xml->metadataValue(name); v && !v->empty())
                return v;
    }
    return std::nullopt;
}

}  // namespace demail::connector
