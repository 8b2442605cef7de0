// A section's schema: the keys of one [section] of gateway.ini, each with its value form, the
// check of its range and where it is stored in the section's settings struct T. A key that is
// absent keeps T's default (the member initialisers of T); the schema reads that default back
// for the documentation check (tests/config/doc_schema_test.cpp).
//
// The module that reads a section declares its schema next to its own code, e.g.
//
//   const config::Section<CardConfig>& cardSection() {
//       static const config::Section<CardConfig> s{"card", {
//           config::text("reader", &CardConfig::reader, "the first reader with a card"),
//           config::readableFile("pkcs11_module", &CardConfig::pkcs11Module), ...}};
//       return s;
//   }
//
// and loads it with config::File::apply (file.h). The builders below know value forms only;
// what a value means is the declaring module's business. Errors are the part after the key:
// "expected HOST:PORT, got 'localhost'"; File::apply prefixes "[section] key: ".
#pragma once

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "demail/config/value.h"

namespace demail::config {

// The value form, for the documentation check (which compares values, not spellings: 60s = 1m).
enum class Kind { Text, Path, HostPort, Duration, Size, Number, Bool, Choice, List };

template <typename T>
struct Key {
    std::string name;
    Kind kind = Kind::Text;
    // Checks the value and stores it; "" or what is wrong ("expected …, got '…'").
    std::function<std::string(T&, const std::string& value)> set;
    // The stored value as it would be written in the file ("" for empty or unset).
    std::function<std::string(const T&)> show;
    // What an empty value stands for, when it is not simply "empty" (e.g. "the machine's name");
    // the documentation's default column says the same.
    std::string emptyMeans;
};

struct KeyInfo {
    std::string name;
    Kind kind = Kind::Text;
    std::string defaultValue;  // show() of a default T; "" when empty
    std::string emptyMeans;
};

struct SectionInfo {
    std::string name;
    std::vector<KeyInfo> keys;
};

template <typename T>
struct Section {
    std::string name;
    std::vector<Key<T>> keys;

    const Key<T>* find(const std::string& key) const {
        for (const auto& k : keys)
            if (k.name == key)
                return &k;
        return nullptr;
    }
    SectionInfo describe() const {
        const T defaults{};
        SectionInfo info{name, {}};
        for (const auto& k : keys)
            info.keys.push_back({k.name, k.kind, k.show(defaults), k.emptyMeans});
        return info;
    }
};

inline std::string expected(const std::string& what, const std::string& got) {
    return "expected " + what + ", got '" + got + "'";
}

std::string joinList(const std::vector<std::string>& items);  // "a, b, c"
std::string sizeText(std::uint64_t bytes);                    // 1K, 20M, 2G or bytes

// ---- builders, one per value form ----

// Any text, stored as written.
template <typename T>
Key<T> text(std::string name, std::string T::*field, std::string emptyMeans = {}) {
    return {std::move(name), Kind::Text,
            [field](T& t, const std::string& v) {
                t.*field = v;
                return std::string();
            },
            [field](const T& t) { return t.*field; }, std::move(emptyMeans)};
}

// A file this process can read now, or empty.
template <typename T>
Key<T> readableFile(std::string name, std::string T::*field, std::string emptyMeans = {}) {
    return {std::move(name), Kind::Path,
            [field](T& t, const std::string& v) {
                if (!v.empty() && ::access(v.c_str(), R_OK) != 0)
                    return "cannot read file '" + v + "'";
                t.*field = v;
                return std::string();
            },
            [field](const T& t) { return t.*field; }, std::move(emptyMeans)};
}

// An absolute path, or empty (not checked for existence: another process may create it).
template <typename T>
Key<T> absolutePath(std::string name, std::string T::*field, std::string emptyMeans = {}) {
    return {std::move(name), Kind::Path,
            [field](T& t, const std::string& v) {
                if (!v.empty() && v[0] != '/')
                    return expected("an absolute path", v);
                t.*field = v;
                return std::string();
            },
            [field](const T& t) { return t.*field; }, std::move(emptyMeans)};
}

// An absolute directory path; never empty.
template <typename T>
Key<T> absoluteDir(std::string name, std::string T::*field) {
    return {std::move(name),
            Kind::Path,
            [field](T& t, const std::string& v) {
                if (v.empty() || v[0] != '/')
                    return expected("an absolute directory path", v);
                t.*field = v;
                return std::string();
            },
            [field](const T& t) { return t.*field; },
            {}};
}

template <typename T>
Key<T> hostPort(std::string name, HostPort T::*field) {
    return {std::move(name),
            Kind::HostPort,
            [field](T& t, const std::string& v) {
                auto hp = parseHostPort(v);
                if (!hp)
                    return expected("HOST:PORT", v);
                t.*field = *hp;
                return std::string();
            },
            [field](const T& t) { return (t.*field).toString(); },
            {}};
}

// HOST:PORT, or empty for "off".
template <typename T>
Key<T> optionalHostPort(std::string name, std::optional<HostPort> T::*field,
                        std::string emptyMeans = {}) {
    return {std::move(name), Kind::HostPort,
            [field](T& t, const std::string& v) {
                if (v.empty()) {
                    (t.*field).reset();
                    return std::string();
                }
                auto hp = parseHostPort(v);
                if (!hp)
                    return expected("HOST:PORT or empty", v);
                t.*field = *hp;
                return std::string();
            },
            [field](const T& t) { return t.*field ? (t.*field)->toString() : std::string(); },
            std::move(emptyMeans)};
}

template <typename T>
Key<T> boolean(std::string name, bool T::*field) {
    return {std::move(name),
            Kind::Bool,
            [field](T& t, const std::string& v) {
                auto b = parseBool(v);
                if (!b)
                    return expected("true or false", v);
                t.*field = *b;
                return std::string();
            },
            [field](const T& t) { return std::string(t.*field ? "true" : "false"); },
            {}};
}

// A positive duration: 90s, 30m, 24h, 2d (a bare number is seconds).
template <typename T>
Key<T> duration(std::string name, std::chrono::seconds T::*field) {
    return {std::move(name),
            Kind::Duration,
            [field](T& t, const std::string& v) {
                auto d = parseDuration(v);
                if (!d || d->count() <= 0)
                    return expected("a positive duration such as 90s, 30m, 24h, 2d", v);
                t.*field = *d;
                return std::string();
            },
            [field](const T& t) { return formatDuration(t.*field); },
            {}};
}

// A size in bytes (20971520, 20M, 1G) between min and max.
template <typename T>
Key<T> size(std::string name, std::uint64_t T::*field, std::uint64_t min, std::uint64_t max) {
    return {std::move(name),
            Kind::Size,
            [=](T& t, const std::string& v) {
                auto n = parseSize(v);
                if (!n || *n < min || *n > max)
                    return expected("a size between " + sizeText(min) + " and " + sizeText(max), v);
                t.*field = *n;
                return std::string();
            },
            [field](const T& t) { return std::to_string(t.*field); },
            {}};
}

// A whole number between min and max.
template <typename T>
Key<T> count(std::string name, std::size_t T::*field, std::uint64_t min, std::uint64_t max) {
    return {std::move(name),
            Kind::Number,
            [=](T& t, const std::string& v) {
                const auto n = parseUnsigned(v);
                if (!n || *n < min || *n > max)
                    return expected(
                        "a number between " + std::to_string(min) + " and " + std::to_string(max),
                        v);
                t.*field = static_cast<std::size_t>(*n);
                return std::string();
            },
            [field](const T& t) { return std::to_string(t.*field); },
            {}};
}

// One of a fixed set of words, each standing for a value of V.
template <typename T, typename V>
Key<T> choice(std::string name, V T::*field, std::vector<std::pair<std::string, V>> words) {
    std::string wanted;
    for (std::size_t i = 0; i < words.size(); ++i)
        wanted += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i].first;
    return {std::move(name),
            Kind::Choice,
            [=](T& t, const std::string& v) {
                for (const auto& [word, value] : words) {
                    if (v == word) {
                        t.*field = value;
                        return std::string();
                    }
                }
                return expected(wanted, v);
            },
            [=](const T& t) {
                for (const auto& [word, value] : words)
                    if (t.*field == value)
                        return word;
                return std::string();
            },
            {}};
}

// CIDRs (IPv4 or IPv6) separated by commas or spaces.
template <typename T>
Key<T> cidrList(std::string name, std::vector<std::string> T::*field) {
    return {std::move(name),
            Kind::List,
            [field](T& t, const std::string& v) {
                auto items = splitList(v);
                for (const auto& item : items)
                    if (!isValidCidr(item))
                        return expected("CIDRs such as 10.0.0.0/8", item);
                t.*field = std::move(items);
                return std::string();
            },
            [field](const T& t) { return joinList(t.*field); },
            {}};
}

// Names (letters, digits, '-', '_', '.') separated by commas or spaces; `what` says whose, for
// the error ("user or group names").
template <typename T>
Key<T> nameList(std::string name, std::vector<std::string> T::*field, std::string what) {
    return {std::move(name),
            Kind::List,
            [field, what](T& t, const std::string& v) {
                for (unsigned char ch : v)
                    if (!(std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == ',' ||
                          std::isspace(ch)))
                        return expected(what + " separated by commas", v);
                t.*field = splitList(v);
                return std::string();
            },
            [field](const T& t) { return joinList(t.*field); },
            {}};
}

}  // namespace demail::config
