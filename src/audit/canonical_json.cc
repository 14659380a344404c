#include "audit/canonical_json.h"

#include <algorithm>
#include <vector>

#include "base/error.h"

namespace glassbox::audit {

std::string canonical_json(const nlohmann::json& value) {
  try {
    // nlohmann::json keeps object members in a std::map: sorted bytewise.
    return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("record is not valid for canonical JSON: ") + e.what());
  }
}

std::string canonical_json(const nlohmann::ordered_json& value) { return canonical_json(nlohmann::json(value)); }

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t valid_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = valid_sequence_length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = valid_sequence_length(text, i);
    if (n) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    out.append("\xEF\xBF\xBD");
    ++i;
  }
  return out;
}

nlohmann::json sanitized(const nlohmann::json& value) {
  // Iterative: a deeply nested value must not exhaust the stack.
  nlohmann::json out = value;
  std::vector<nlohmann::json*> pending = {&out};
  while (!pending.empty()) {
    nlohmann::json* v = pending.back();
    pending.pop_back();
    if (v->is_string()) {
      const std::string& s = v->get_ref<const std::string&>();
      if (!is_valid_utf8(s)) *v = sanitize_utf8(s);
    } else if (v->is_array()) {
      for (auto& item : *v) pending.push_back(&item);
    } else if (v->is_object()) {
      bool keys_valid = true;
      for (const auto& [key, item] : v->items()) keys_valid = keys_valid && is_valid_utf8(key);
      if (!keys_valid) {
        nlohmann::json fixed = nlohmann::json::object();
        for (auto& [key, item] : v->items()) fixed[sanitize_utf8(key)] = std::move(item);
        *v = std::move(fixed);
      }
      for (auto& [key, item] : v->items()) pending.push_back(&item);
    }
  }
  return out;
}

size_t utf8_prefix_length(std::string_view text, size_t max_bytes) {
  size_t end = std::min(max_bytes, text.size());
  // Step back over continuation bytes so that a sequence is not cut.
  while (end > 0 && end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return end;
}

size_t json_nesting_depth(std::string_view text) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace glassbox::audit
