// What the provider hands us: classified by X-de-mail-message-type (TR_De_Mail_PVD_IO Tabelle 1
// row 16 and §2.16), confirmations parsed from their urn:de-mail XML part (§3.4.1), and
// correlated to the job we submitted through X-de-mail-private-id, which the provider copies
// into every confirmation.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace demail::connector {

enum class InboundKind {
    Normal,
    DispatchConfirmation,  // Versandbestätigung
    ReceiptConfirmation,   // Eingangsbestätigung
    RetrieveConfirmation,  // Abholbestätigung
    MalwareAcknowledge,
    MalwareNotification,
    Notification,  // Meldung; see notificationType
    Identification,
    Unknown,  // missing or unknown message type: delivered, marked as such
};
const char* toString(InboundKind k);
bool isConfirmation(InboundKind k);

struct InboundClassification {
    InboundKind kind = InboundKind::Unknown;
    std::string messageType;       // as written
    std::string notificationType;  // unknown-recipient, closed-account, invalid-format, other
    std::string privateId;         // X-de-mail-private-id, if any
    std::string sender;            // X-de-mail-sender
    std::string subject;
    bool personal = false;              // X-de-mail-private: yes (Persönlich)
    bool retrieveConfirmation = false;  // X-de-mail-confirmation-of-retrieve: yes
    std::string error;                  // set when the message could not be parsed at all
};

InboundClassification classifyInbound(std::string_view message);

// The XML of a confirmation (Acknowledge-Message) or notification (Notification-Message).
struct ConfirmationXml {
    std::string rootElement;  // "Acknowledge-Message" or "Notification-Message"
    std::string sender, subject, text, time, deliveryTime, hash;
    std::vector<std::pair<std::string, std::string>> metadata;  // Metadate Name/Value
    std::string raw;  // the XML as decoded from its MIME part: what its signature covers
    std::optional<std::string> metadataValue(std::string_view name) const;
};

// Parses the XML (namespace urn:de-mail). DTDs and external entities are refused.
std::optional<ConfirmationXml> parseConfirmationXml(std::string_view xml, std::string& error);
// Finds the first text/xml or application/xml part (depth first, nested multiparts up to 8
// levels), undoes its base64 or quoted-printable transfer encoding, and parses it.
std::optional<ConfirmationXml> confirmationXmlOf(std::string_view message, std::string& error);

// The private-id a confirmation carries (the queue id of the job, maybe followed by '.' and the
// sender's own value: queueIdOfPrivateId in outbound.h): the private-id header, else the
// X-de-mail-private-id inside the XML metadata. Nothing if neither is there.
std::optional<std::string> correlate(const InboundClassification& c,
                                     const std::optional<ConfirmationXml>& xml);

}  // namespace demail::connector
