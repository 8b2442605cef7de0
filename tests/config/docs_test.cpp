// docs/configuration.md, the sections' schemas and the catalogue of names agree (like Postfix's
// mantools/check-* against its parameter tables): every key a module declares is in the
// documentation's table of its section, with the default the code really has, every key the
// documentation lists exists, and the names every binary accepts are exactly the declared ones.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "demail/config/file.h"
#include "demail/gateway/config.h"

using namespace demail;

namespace {

struct DocRow {
    std::string defaultCell;
    int line = 0;
};
using DocTables = std::map<std::string, std::map<std::string, DocRow>>;  // section -> key -> row

std::string trim(std::string s) {
    const auto b = s.find_first_not_of(" \t");
    const auto e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The tables under "## [section]" headings: rows "| `key` | default | meaning |".
DocTables readDocTables(const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in) << "cannot read " << path;
    DocTables tables;
    std::string section, line;
    const std::regex heading(R"(^## \[([a-z_]+)\])");
    const std::regex row(R"(^\|\s*`([a-z_0-9]+)`\s*\|([^|]*)\|.*\|\s*$)");
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        std::smatch m;
        if (line.rfind("## ", 0) == 0)
            section = std::regex_search(line, m, heading) ? m[1].str() : "";
        else if (!section.empty() && std::regex_match(line, m, row)) {
            const bool fresh = tables[section].emplace(m[1].str(), DocRow{trim(m[2]), n}).second;
            EXPECT_TRUE(fresh) << "docs line " << n << ": [" << section << "] " << m[1]
                               << " listed twice";
        }
    }
    return tables;
}

// The first `code span` of a cell, or nothing.
std::optional<std::string> firstCode(const std::string& cell) {
    const auto a = cell.find('`');
    const auto b = a == std::string::npos ? a : cell.find('`', a + 1);
    if (b == std::string::npos)
        return std::nullopt;
    return cell.substr(a + 1, b - a - 1);
}

// Same value in the key's form: 60s = 1m, 20971520 = 20M, lists item by item.
bool sameValue(config::Kind kind, const std::string& a, const std::string& b) {
    switch (kind) {
        case config::Kind::Duration:
            return config::parseDuration(a) && config::parseDuration(a) == config::parseDuration(b);
        case config::Kind::Size:
            return config::parseSize(a) && config::parseSize(a) == config::parseSize(b);
        case config::Kind::Bool:
            return config::parseBool(a) && config::parseBool(a) == config::parseBool(b);
        case config::Kind::List:
            return config::splitList(a) == config::splitList(b);
        default:
            return a == b;
    }
}

const std::string kDoc = std::string(DEMAIL_SOURCE_DIR) + "/docs/configuration.md";

TEST(ConfigDocs, EverySchemaKeyIsDocumentedWithItsDefault) {
    const auto doc = readDocTables(kDoc);
    std::size_t checked = 0;
    for (const auto& section : gateway::configSchema()) {
        const auto t = doc.find(section.name);
        ASSERT_NE(t, doc.end()) << "docs/configuration.md has no \"## [" << section.name
                                << "]\" table";
        for (const auto& key : section.keys) {
            const std::string where = "[" + section.name + "] " + key.name;
            const auto r = t->second.find(key.name);
            if (r == t->second.end()) {
                ADD_FAILURE() << where << ": declared in the schema, missing in " << kDoc;
                continue;
            }
            const std::string& cell = r->second.defaultCell;
            const std::string at = " (docs line " + std::to_string(r->second.line) + ")";
            if (!key.defaultValue.empty()) {
                const auto code = firstCode(cell);
                EXPECT_TRUE(code && sameValue(key.kind, *code, key.defaultValue))
                    << where << ": the code's default is `" << key.defaultValue
                    << "`, the documentation says " << cell << at;
            } else if (!key.emptyMeans.empty()) {
                EXPECT_EQ(cell.rfind(key.emptyMeans, 0), 0u)
                    << where << ": empty by default, meaning " << key.emptyMeans
                    << "; the documentation says " << cell << at;
            } else {
                EXPECT_EQ(cell.rfind("empty", 0), 0u)
                    << where << ": empty by default; the documentation says " << cell << at;
            }
            ++checked;
        }
    }
    EXPECT_GE(checked, 46u) << "fewer keys than the gateway had when this test was written";
}

TEST(ConfigDocs, EveryDocumentedKeyExistsInTheSchema) {
    std::map<std::string, std::set<std::string>> declared;
    for (const auto& section : gateway::configSchema())
        for (const auto& key : section.keys)
            declared[section.name].insert(key.name);
    for (const auto& [section, rows] : readDocTables(kDoc)) {
        for (const auto& [key, row] : rows)
            EXPECT_TRUE(declared[section].count(key))
                << "docs line " << row.line << ": [" << section << "] " << key
                << " is documented but no module declares it";
    }
}

// The catalogue is what every binary accepts (demail-card too, which reads [card] only): its
// names must be exactly the declared ones, or a command would refuse a valid key or take a
// misspelt one.
TEST(ConfigDocs, TheCatalogueNamesExactlyTheDeclaredKeys) {
    std::map<std::string, std::set<std::string>> declared, known;
    for (const auto& section : gateway::configSchema())
        for (const auto& key : section.keys)
            EXPECT_TRUE(declared[section.name].insert(key.name).second)
                << "[" << section.name << "] " << key.name << " declared twice";
    for (const auto& section : config::catalogue())
        for (const auto& key : section.keys)
            EXPECT_TRUE(known[section.name].insert(key).second)
                << "[" << section.name << "] " << key << " twice in the catalogue";
    EXPECT_EQ(declared, known);
}

// The parser of this test is not vacuous: it finds the tables, and a wrong default is caught.
TEST(ConfigDocs, TheDocParserFindsTheTables) {
    const auto doc = readDocTables(kDoc);
    ASSERT_TRUE(doc.count("smtp"));
    EXPECT_EQ(doc.at("smtp").at("listen").defaultCell, "`127.0.0.1:2525`");
    EXPECT_TRUE(sameValue(config::Kind::Duration, "60s", "1m"));
    EXPECT_FALSE(sameValue(config::Kind::Duration, "60s", "61s"));
    EXPECT_FALSE(sameValue(config::Kind::Text, "mentana", "telekom"));
    EXPECT_EQ(firstCode("empty (off)"), std::nullopt);
}

}  // namespace
