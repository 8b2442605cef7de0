// The X-de-mail-* headers of BSI TR-01201 Teil 3.4 (TR_De_Mail_PVD_IO, Tabelle 1), the five
// shipping options, X-de-mail-chosen-recipient, and De-Mail address rules (TR_De_Mail_ACM_FU
// §2.1.2-2.1.4).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace demail::connector {

namespace header {
// Options (Tabelle 1, rows 1-5): "yes" / "no", case-sensitive; absent means "no".
inline constexpr const char* kDispatchConfirmation = "X-de-mail-confirmation-of-dispatch";
inline constexpr const char* kReceiptConfirmation = "X-de-mail-confirmation-of-receipt";
inline constexpr const char* kRetrieveConfirmation = "X-de-mail-confirmation-of-retrieve";
inline constexpr const char* kAuthoritative = "X-de-mail-authoritative";
inline constexpr const char* kPrivate = "X-de-mail-private";
inline constexpr const char* kSender = "X-de-mail-sender";
inline constexpr const char* kChosenRecipient = "X-de-mail-chosen-recipient";
inline constexpr const char* kPrivateId = "X-de-mail-private-id";
inline constexpr const char* kMessageType = "X-de-mail-message-type";
inline constexpr const char* kNotificationType = "X-de-mail-notification-type";
// Our internal marker header (documented in docs/demail-message.md); never leaves the gateway.
inline constexpr const char* kInternalOptions = "X-De-Mail-Options";
}  // namespace header

// Headers the provider sets (TR_De_Mail_PVD_FU step 29) and an internal sender must not forge:
// stripped from every outbound message.
const std::vector<std::string>& providerSetHeaders();

struct ShippingOptions {
    bool personal = false;              // Persönlich (X-de-mail-private)
    bool authoritative = false;         // Absenderbestätigt
    bool dispatchConfirmation = false;  // Versandbestätigung
    bool receiptConfirmation = false;   // Eingangsbestätigung
    bool retrieveConfirmation = false;  // Abholbestätigung (needs Persönlich)
    bool operator==(const ShippingOptions&) const = default;
};

// "yes" -> true, "no" or absent -> false, anything else -> nothing (TR: case-sensitive).
std::optional<bool> parseYesNo(const std::string* value);

// Internal option words (X-De-Mail-Options list or [subject tag]), English and German:
// personal/persoenlich, authoritative/absenderbestaetigt, dispatch-confirmation/
// versandbestaetigung, receipt-confirmation/eingangsbestaetigung, retrieve-confirmation/
// abholbestaetigung. Returns false for an unknown word.
bool applyOptionWord(std::string_view word, ShippingOptions& options);

struct ChosenRecipients {
    std::vector<std::string> to, cc, bcc;
};
// X-de-mail-chosen-recipient: to=list [; cc=list] [; bcc=list], each at most once.
std::optional<ChosenRecipients> parseChosenRecipient(std::string_view value, std::string& error);
std::string formatChosenRecipient(const ChosenRecipients& r);

// The addr-specs of an RFC 5322 address-list ("A <a@b>, c@d, "x, y" <e@f>"), lower-cased
// domains. Groups contribute their members. Nothing if the list is malformed.
std::optional<std::vector<std::string>> parseAddressList(std::string_view list);

// local@domain with the TR limits (local <= 64, domain <= 189, whole <= 253), no spaces or
// control characters.
bool isValidDeMailAddress(std::string_view address);
std::string domainOf(std::string_view address);
// Whether the address's domain is one of `domains` or below one of them (x.firma.de-mail.de is
// below de-mail.de and below firma.de-mail.de).
bool inDomains(std::string_view address, const std::vector<std::string>& domains);

}  // namespace demail::connector
