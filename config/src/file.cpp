#include "demail/config/file.h"

#include <Poco/AutoPtr.h>
#include <Poco/Exception.h>
#include <Poco/Util/IniFileConfiguration.h>

#include <algorithm>
#include <cctype>
#include <fstream>

namespace demail::config {

namespace {

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return std::string(s);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// Poco keeps everything after '=' as the value, so "listen = x ; comment" would include the
// comment. A ';' preceded by whitespace starts a comment; one inside a token (the ';' separators
// of a PKCS#11 URI) does not.
std::string stripInlineComment(const std::string& raw) {
    for (std::size_t i = 1; i < raw.size(); ++i) {
        if (raw[i] == ';' && std::isspace(static_cast<unsigned char>(raw[i - 1]))) {
            return trim(std::string_view(raw).substr(0, i));
        }
    }
    if (!raw.empty() && raw[0] == ';')
        return {};
    return trim(raw);
}

const KnownSection* knownSection(const std::string& name) {
    for (const auto& s : catalogue())
        if (s.name == name)
            return &s;
    return nullptr;
}

}  // namespace

std::string File::unknownKey(const std::string& section, const std::string& key) {
    return "[" + section + "] " + key + ": unknown key (see docs/configuration.md)";
}

std::optional<File> File::read(const std::string& path, std::string& error) {
    {
        std::ifstream probe(path);
        if (!probe) {
            error = "cannot read configuration file '" + path + "'";
            return std::nullopt;
        }
    }
    Poco::AutoPtr<Poco::Util::IniFileConfiguration> ini;
    try {
        ini = new Poco::Util::IniFileConfiguration(path);
    } catch (const Poco::Exception& e) {
        error = "cannot parse configuration file '" + path + "': " + e.displayText();
        return std::nullopt;
    }
    File file;
    file.path_ = path;
    Poco::Util::AbstractConfiguration::Keys sectionNames;
    ini->keys(sectionNames);
    for (const auto& rawSection : sectionNames) {
        const std::string section = lower(rawSection);
        const KnownSection* known = knownSection(section);
        if (!known) {
            std::string names;
            for (const auto& s : catalogue())
                names += (names.empty() ? "" : ", ") + s.name;
            error = "[" + rawSection + "]: unknown section (known: " + names + ")";
            return std::nullopt;
        }
        Poco::Util::AbstractConfiguration::Keys keys;
        ini->keys(rawSection, keys);
        for (const auto& rawKey : keys) {
            const std::string key = lower(rawKey);
            if (std::find(known->keys.begin(), known->keys.end(), key) == known->keys.end()) {
                error = unknownKey(section, key);
                return std::nullopt;
            }
            file.entries_.push_back(
                {section, key, stripInlineComment(ini->getRawString(rawSection + "." + rawKey))});
        }
    }
    return file;
}

std::vector<std::pair<std::string, std::string>> File::entries(const std::string& section) const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : entries_)
        if (e.section == section)
            out.emplace_back(e.key, e.value);
    return out;
}

std::string joinList(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items)
        out += (out.empty() ? "" : ", ") + i;
    return out;
}

std::string sizeText(std::uint64_t bytes) {
    if (bytes != 0 && bytes % (1ULL << 30) == 0)
        return std::to_string(bytes >> 30) + "G";
    if (bytes != 0 && bytes % (1ULL << 20) == 0)
        return std::to_string(bytes >> 20) + "M";
    if (bytes != 0 && bytes % (1ULL << 10) == 0)
        return std::to_string(bytes >> 10) + "K";
    return std::to_string(bytes);
}

}  // namespace demail::config
