// Text helpers that reproduce Python's str semantics on UTF-8 strings: code
// point iteration, Unicode whitespace, case mapping, repr() of strings and
// floats, and JSON string escaping as json.dumps does it.
//
// All functions accept arbitrary bytes: an invalid UTF-8 byte is treated as a
// single code point of its own value (never read past the end), so untrusted
// input cannot cause out-of-bounds access.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace glassbox::jinja::text {

// Decodes the code point starting at `pos` and advances `pos` past it.
char32_t next_code_point(std::string_view s, size_t& pos);
void append_utf8(std::string& out, char32_t cp);
std::vector<char32_t> to_code_points(std::string_view s);
std::string from_code_points(const std::vector<char32_t>& cps);
size_t code_point_count(std::string_view s);

// Python str.isspace() for one code point (also what `\s` matches in re).
bool is_space(char32_t cp);
bool is_alpha(char32_t cp);
bool is_digit(char32_t cp);    // str.isdigit (decimal digits and superscripts)
bool is_decimal(char32_t cp);  // str.isdecimal (Nd)
bool is_numeric(char32_t cp);  // str.isnumeric (Nd, Nl, No)
bool is_alnum(char32_t cp);
bool is_word(char32_t cp);   // what `\w` matches in Python's re
bool is_upper(char32_t cp);  // category Lu / Lt
bool is_lower(char32_t cp);  // category Ll
bool is_cased(char32_t cp);
bool is_printable(char32_t cp);  // str.isprintable for one code point

std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);
std::string swap_case(std::string_view s);
// str.capitalize(): first character title-cased, the rest lower-cased.
std::string capitalize(std::string_view s);
// str.title(): title-case after every uncased character.
std::string python_title(std::string_view s);

// Python repr() of a str: quotes chosen like CPython, escapes for
// non-printable characters.
std::string repr_string(std::string_view s);
// Python repr() of a float ("1.0", "1e+20", "inf", "nan").
std::string repr_float(double v);
// json.dumps of a string (with or without ensure_ascii).
void append_json_string(std::string& out, std::string_view s, bool ensure_ascii);

// Python str.strip/lstrip/rstrip: `chars` empty-optional means whitespace.
std::string strip(std::string_view s, const std::u32string* chars, bool left, bool right);

// Python str.splitlines(keepends=False).
std::vector<std::string> split_lines(std::string_view s);

// Escapes &, <, >, ', " the way markupsafe.escape does.
std::string html_escape(std::string_view s);

// True when every byte sequence in `s` is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

}  // namespace glassbox::jinja::text
