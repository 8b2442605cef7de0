#include "demail/connector/message/inbound.h"

#include <Poco/AutoPtr.h>
#include <Poco/DOM/DOMParser.h>
#include <Poco/DOM/Document.h>
#include <Poco/DOM/Element.h>
#include <Poco/DOM/NodeList.h>
#include <Poco/Exception.h>
#include <Poco/SAX/InputSource.h>
#include <Poco/XML/XMLString.h>

#include <sstream>

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
    return c;
}

std::optional<std::string> ConfirmationXml::metadataValue(std::string_view name) const {
    for (const auto& [n, v] : metadata)
        if (equalsIgnoreCase(n, name))
            return v;
    return std::nullopt;
}

namespace {

std::string childText(Poco::XML::Element* parent, const std::string& localName) {
    if (!parent)
        return {};
    for (Poco::XML::Node* n = parent->firstChild(); n; n = n->nextSibling())
        if (n->nodeType() == Poco::XML::Node::ELEMENT_NODE && n->localName() == localName)
            return trim(n->innerText());
    return {};
}

}  // namespace

std::optional<ConfirmationXml> parseConfirmationXml(std::string_view xml, std::string& error) {
    if (xml.size() > (4u << 20)) {
        error = "confirmation XML larger than 4 MiB";
        return std::nullopt;
    }
    // No DTDs at all: that rules out entity expansion (billion laughs) and external entities.
    if (xml.find("<!DOCTYPE") != std::string_view::npos ||
        xml.find("<!ENTITY") != std::string_view::npos) {
        error = "confirmation XML with a DTD or entity declaration refused";
        return std::nullopt;
    }
    try {
        Poco::XML::DOMParser parser;
        parser.setFeature(Poco::XML::XMLReader::FEATURE_NAMESPACES, true);
        parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_GENERAL_ENTITIES, false);
        parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_PARAMETER_ENTITIES, false);
        Poco::AutoPtr<Poco::XML::Document> doc = parser.parseMemory(xml.data(), xml.size());
        Poco::XML::Element* root = doc->documentElement();
        if (!root || root->namespaceURI() != "urn:de-mail") {
            error = "the XML is not in the urn:de-mail namespace";
            return std::nullopt;
        }
        ConfirmationXml c;
        c.rootElement = root->localName();
        if (c.rootElement != "Acknowledge-Message" && c.rootElement != "Notification-Message") {
            error = "unexpected root element " + c.rootElement;
            return std::nullopt;
        }
        c.sender = childText(root, "Sender");
        c.subject = childText(root, "Subject");
        c.text = childText(root, "Text");
        c.time = childText(root, "Time");
        c.deliveryTime = childText(root, "DeliveryTime");
        c.hash = childText(root, "Hash");
        for (Poco::XML::Node* n = root->firstChild(); n; n = n->nextSibling()) {
            if (n->nodeType() != Poco::XML::Node::ELEMENT_NODE || n->localName() != "Metadata")
                continue;
            for (Poco::XML::Node* m = n->firstChild(); m; m = m->nextSibling())
                if (m->nodeType() == Poco::XML::Node::ELEMENT_NODE && m->localName() == "Metadate")
                    c.metadata.emplace_back(
                        childText(static_cast<Poco::XML::Element*>(m), "Name"),
                        childText(static_cast<Poco::XML::Element*>(m), "Value"));
        }
        return c;
    } catch (const Poco::Exception& e) {
        error = "confirmation XML: " + e.displayText();
    } catch (const std::exception& e) {
        error = std::string("confirmation XML: ") + e.what();
    }
    return std::nullopt;
}

std::optional<ConfirmationXml> confirmationXmlOf(std::string_view message, std::string& error) {
    auto h = HeaderBlock::parse(message, error);
    if (!h)
        return std::nullopt;
    const std::string* ct = h->get("Content-Type");
    const std::string type = ct ? toLower(*ct) : "";
    std::string_view body = message.substr(std::min(h->bodyOffset(), message.size()));
    if (type.find("xml") != std::string::npos && type.find("multipart") == std::string::npos)
        return parseConfirmationXml(body, error);
    const auto b = type.find("boundary=");
    if (type.find("multipart/") == std::string::npos || b == std::string::npos) {
        error = "the message has no XML part";
        return std::nullopt;
    }
    // The boundary as written (case matters), quoted or not.
    const auto bOrig = toLower(*ct).find("boundary=");
    std::string boundary = ct->substr(bOrig + 9);
    if (!boundary.empty() && boundary[0] == '"')
        boundary = boundary.substr(1, boundary.find('"', 1) - 1);
    else
        boundary = boundary.substr(0, boundary.find_first_of("; \t"));
    if (boundary.empty()) {
        error = "empty MIME boundary";
        return std::nullopt;
    }
    const std::string delim = "--" + boundary;
    std::size_t pos = body.find(delim);
    for (int parts = 0; pos != std::string_view::npos && parts < 100; ++parts) {
        std::size_t start = body.find('\n', pos);
        if (start == std::string_view::npos)
            break;
        ++start;
        std::size_t end = body.find(delim, start);
        if (end == std::string_view::npos)
            break;
        std::string_view part = body.substr(start, end - start);
        std::string partError;
        auto ph = HeaderBlock::parse(part, partError);
        if (ph) {
            const std::string* pct = ph->get("Content-Type");
            if (pct && toLower(*pct).find("xml") != std::string::npos)
                return parseConfirmationXml(part.substr(ph->bodyOffset()), error);
        }
        pos = end;
        if (body.substr(end + delim.size(), 2) == "--")
            break;
    }
    error = "the message has no XML part";
    return std::nullopt;
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
