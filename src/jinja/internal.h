// Interfaces shared between the parser, the interpreter and the builtins.
// Not part of the public API.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "jinja/ast.h"
#include "jinja/jinja.h"

namespace glassbox::jinja {

// Parses a template. Throws TemplateError.
Body parse_template(std::string_view source, const Options& options);

// Builtin filter and test tables. lookup returns the id of a supported
// builtin, kUnsupported for names that Jinja2 has but this renderer does
// not implement, and kUnknown otherwise.
inline constexpr int kUnknown = -1;
inline constexpr int kUnsupported = -2;
int lookup_filter(std::string_view name);
int lookup_test(std::string_view name);

}  // namespace glassbox::jinja
