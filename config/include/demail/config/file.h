// gateway.ini as every binary reads it (docs/configuration.md): one INI file, read with Poco's
// IniFileConfiguration. Two steps, so that a command checks in full only the sections it uses:
//
//   std::string error;
//   auto file = config::File::read(path, error);        // syntax, and every section and key
//   if (!file) ...                                       // name known (the catalogue)
//   if (error = file->apply(cardSection(), card); ...)   // values of one section, typed
//
// Both steps fail with one line naming the section and key: "[smtp] listen_port: unknown key
// (see docs/configuration.md)", "[smtp] listen: expected HOST:PORT, got 'localhost'". Unknown
// names are errors in every command, whichever sections it uses: a misspelt key must not fall
// back to a default silently, and a file one command accepts must not be refused by another for
// its names. A ';' after white space starts a comment (the ';' inside a PKCS#11 URI is kept).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "demail/config/schema.h"

namespace demail::config {

inline constexpr const char* kDefaultPath = "/etc/demail-gateway/gateway.ini";

// Every section and key of gateway.ini, by name only. The module that reads a section declares
// its types, defaults and ranges (schema.h); tests/config/doc_schema_test.cpp checks that this
// list, those schemas and docs/configuration.md agree.
struct KnownSection {
    std::string name;
    std::vector<std::string> keys;
};
const std::vector<KnownSection>& catalogue();

class File {
  public:
    // Reads and parses the file and checks every name in it against catalogue(). On failure:
    // nullopt and one line in `error`.
    static std::optional<File> read(const std::string& path, std::string& error);

    const std::string& path() const { return path_; }

    // The keys of one section as written (lower-case names, inline comments removed), in the
    // order Poco gives them (sorted).
    std::vector<std::pair<std::string, std::string>> entries(const std::string& section) const;

    // Checks every key of `section` that the file sets and stores it in `out`; keys the file
    // does not set keep their value in `out`. "" or one line naming the key.
    template <typename T>
    std::string apply(const Section<T>& section, T& out) const {
        for (const auto& [key, value] : entries(section.name)) {
            const Key<T>* k = section.find(key);
            if (!k)  // in the catalogue but not in the schema: still unknown to this program
                return unknownKey(section.name, key);
            if (std::string err = k->set(out, value); !err.empty())
                return "[" + section.name + "] " + key + ": " + err;
        }
        return {};
    }

    static std::string unknownKey(const std::string& section, const std::string& key);

  private:
    struct Entry {
        std::string section;  // lower case
        std::string key;      // lower case
        std::string value;
    };
    std::string path_;
    std::vector<Entry> entries_;
};

}  // namespace demail::config
