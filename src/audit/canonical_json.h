// The canonical JSON text a record is hashed as, and UTF-8 helpers for
// putting model output (which may hold invalid UTF-8) into JSON.
//
// Canonical form: object keys sorted by their UTF-8 bytes, no whitespace
// outside strings, strings as UTF-8 with only '"', '\\' and control characters
// escaped, integers in decimal, other numbers in the shortest form that reads
// back to the same double (nlohmann::json's printer; non-finite numbers are
// null). Parsing a canonical text and printing it again gives the same text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace glassbox::audit {

// Throws glassbox::Error if a string in `value` is not valid UTF-8.
std::string canonical_json(const nlohmann::json& value);
std::string canonical_json(const nlohmann::ordered_json& value);

bool is_valid_utf8(std::string_view text);
// Replaces each byte that does not begin a valid UTF-8 sequence with U+FFFD.
std::string sanitize_utf8(std::string_view text);
// A copy of `value` whose strings (keys included) are valid UTF-8
// (sanitize_utf8), for JSON built from model output.
nlohmann::json sanitized(const nlohmann::json& value);

// Length of the longest prefix of `text` (at most max_bytes) that does not
// cut a UTF-8 sequence in half.
size_t utf8_prefix_length(std::string_view text, size_t max_bytes);

// JSON nesting depth of a JSON text (arrays and objects), without parsing it:
// a guard against documents nested deeply enough to exhaust the stack.
size_t json_nesting_depth(std::string_view text);

}  // namespace glassbox::audit
