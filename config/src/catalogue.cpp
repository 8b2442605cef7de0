// The names of gateway.ini, one list for every binary, so that each refuses an unknown name
// whichever sections it reads itself. Names only: the module named in each comment declares the
// keys' value forms, defaults and ranges, and docs/configuration.md describes them
// (tests/config/doc_schema_test.cpp checks that the three agree). A new key goes into all three.
#include "demail/config/file.h"

namespace demail::config {

const std::vector<KnownSection>& catalogue() {
    static const std::vector<KnownSection> sections = {
        // gateway/src/config.cpp
        {"smtp",
         {"listen", "submission_listen", "tls_cert", "tls_key", "require_tls", "relay_networks",
          "users_file", "max_message_size", "max_net_size", "max_connections",
          "max_connections_per_client", "max_concurrent_data", "hostname", "when_paused"}},
        // smartcard/src/card_config.cpp
        {"card",
         {"reader", "pkcs11_module", "key_uri", "pin_file", "pin_rejection_file", "opensc_conf"}},
        // gateway/src/config.cpp
        {"provider",
         {"profile",
          "url",
          "ca_file",
          "server_name",
          "client_cert",
          "client_key",
          "accounts_file",
          "signature_ca",
          "signature_crl",
          "private_id_key_file",
          "demail_domains",
          "demail_domains_from_provider",
          "address_check",
          "address_check_timeout",
          "address_cache_ttl",
          "address_cache_negative_ttl",
          "address_cache_size",
          "address_check_unavailable",
          "connections",
          "poll_interval",
          "proxy",
          "proxy_user",
          "proxy_password_file"}},
        {"sending", {"policy_file", "sender_daily_limit", "account_daily_limit"}},
        {"delivery",
         {"relay", "tls", "postmaster", "strip_headers", "inbound_max_attempts", "ca_file"}},
        {"queue",
         {"dir", "max_age", "delay_warning", "retry_min", "retry_max", "sent_retention",
          "inbound_retention"}},
        {"archive", {"dir", "retention", "min_free"}},
        {"health", {"listen"}},
        // certpromote/src/config.cpp
        {"certpromote", {"store", "group", "read_users", "read_groups", "ca_file"}},
    };
    return sections;
}

}  // namespace demail::config
