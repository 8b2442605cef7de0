// The header section of an RFC 5322 message: unfolded fields in their original order,
// case-insensitive lookup where the first occurrence wins (TR-01201 Teil 3.4 §2: "if a header
// occurs twice, the first occurrence counts"), and where the body starts. Built for hostile
// input: bounded sizes, no crash on NUL bytes, bare LF or broken folding; errors are values.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace demail::connector {

struct HeaderField {
    std::string name;   // as written
    std::string value;  // unfolded (CRLF WSP -> WSP), leading white space removed
};

struct HeaderLimits {
    std::size_t maxSectionBytes = 1 << 20;  // 1 MiB of headers
    std::size_t maxFields = 2000;
    std::size_t maxLineBytes = 64 * 1024;
};

class HeaderBlock {
  public:
    // Parses the header section of `message`. On failure returns nothing and sets error.
    static std::optional<HeaderBlock> parse(std::string_view message, std::string& error,
                                            const HeaderLimits& limits = {});

    const std::vector<HeaderField>& fields() const { return fields_; }
    // First field with this name (ASCII case-insensitive), if any.
    const std::string* get(std::string_view name) const;
    std::size_t count(std::string_view name) const;
    std::size_t bodyOffset() const { return bodyOffset_; }  // index of the first body byte

    void remove(std::string_view name);  // every occurrence
    void add(std::string name, std::string value);
    void set(std::string name, std::string value);  // replaces the first, removes the others
    // Header section as text with CRLF line ends (long values are not refolded; our own values
    // stay short), including the empty line that ends it.
    std::string serialize() const;

  private:
    std::vector<HeaderField> fields_;
    std::size_t bodyOffset_ = 0;
};

bool equalsIgnoreCase(std::string_view a, std::string_view b);
std::string toLower(std::string_view s);
std::string trim(std::string_view s);

}  // namespace demail::connector
