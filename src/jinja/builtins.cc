// Builtin filters, tests, str/list/dict methods and global functions, each
// following the Jinja2 3.1 / Python 3 implementation it stands for.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "jinja/interpreter.h"
#include "jinja/text.h"

namespace glassbox::jinja {

namespace {

using FilterFn = Value (*)(Interpreter&, const Value&, Args&);
using TestFn = bool (*)(Interpreter&, const Value&, Args&);

// ------------------------------------------------------------------ helpers

int64_t to_int_arg(const Value& v, std::string_view what) {
  if (v.is_int()) return v.as_int();
  if (v.is_bool()) return v.as_bool() ? 1 : 0;
  throw Failure(std::string(what) + ": '" + v.type_name() + "' object cannot be interpreted as an integer");
}

// soft_str(): str() that keeps Markup.
Value soft_str(const Value& v) {
  if (v.is_string()) return v;
  return Value(to_str(v));
}

Value with_safety(std::string s, bool safe) {
  Value v(std::move(s));
  v.set_safe(safe);
  return v;
}

Value generator(std::vector<Value> items) { return Value::list(std::move(items), SeqKind::kGenerator); }

// The attribute path of make_attrgetter: "a.b.0" → getitem chain.
Value lookup_attribute_path(Interpreter& interp, Value item, const Value& attribute) {
  if (attribute.is_none() || attribute.is_undefined()) return item;
  if (!attribute.is_string()) return interp.getitem(item, attribute);
  const std::string& path = attribute.as_string();
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool digits =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits && part.size() < 18) {
      item = interp.getitem(item, Value(static_cast<int64_t>(std::stoll(part))));
    } else {
      item = interp.getitem(item, Value(part));
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return item;
}

// Key for sort/unique/min/max: lower-cased when case-insensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(text::to_lower(v.as_string()));
  return v;
}

std::u32string to_u32(std::string_view s) {
  std::u32string out;
  size_t pos = 0;
  while (pos < s.size()) out.push_back(text::next_code_point(s, pos));
  return out;
}

std::string from_u32(const std::u32string& s, size_t begin = 0, size_t end = std::u32string::npos) {
  std::string out;
  end = std::min(end, s.size());
  for (size_t i = begin; i < end; ++i) text::append_utf8(out, s[i]);
  return out;
}

// ------------------------------------------------------------------ Python str algorithms

std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (!sep) {
    const std::u32string u = to_u32(s);
    size_t i = 0;
    const size_t n = u.size();
    while (true) {
      while (i < n && text::is_space(u[i])) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        out.push_back(from_u32(u, i, n));  // the remainder keeps its trailing whitespace
        break;
      }
      size_t j = i;
      while (j < n && !text::is_space(u[j])) ++j;
      out.push_back(from_u32(u, i, j));
      i = j;
    }
    return out;
  }
  if (sep->empty()) throw Failure("empty separator");
  size_t start = 0;
  while (true) {
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) break;
    const size_t found = s.find(*sep, start);
    if (found == std::string::npos) break;
    out.push_back(s.substr(start, found - start));
    start = found + sep->size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::vector<std::string> py_rsplit(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit) {
  if (maxsplit < 0) return py_split(s, sep, maxsplit);
  std::vector<std::string> out;
  if (!sep) {
    const std::u32string u = to_u32(s);
    size_t i = u.size();
    while (true) {
      while (i > 0 && text::is_space(u[i - 1])) --i;
      if (i == 0) break;
      if (static_cast<int64_t>(out.size()) >= maxsplit) {
        out.push_back(from_u32(u, 0, i));  // the remainder keeps its leading whitespace
        break;
      }
      size_t j = i;
      while (j > 0 && !text::is_space(u[j - 1])) --j;
      out.push_back(from_u32(u, j, i));
      i = j;
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  if (sep->empty()) throw Failure("empty separator");
  size_t end = s.size();
  while (static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep->size()) break;
    const size_t found = s.rfind(*sep, end - sep->size());
    if (found == std::string::npos) break;
    out.push_back(s.substr(found + sep->size(), end - found - sep->size()));
    end = found;
  }
  out.push_back(s.substr(0, end));
  std::reverse(out.begin(), out.end());
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count,
                       size_t max_bytes) {
  std::string out;
  int64_t done = 0;
  if (old.empty()) {
    // Python inserts the replacement before every character and at the end.
    size_t pos = 0;
    while (pos <= s.size()) {
      if (count >= 0 && done >= count) {
        out += s.substr(pos);
        break;
      }
      out += repl;
      ++done;
      if (pos == s.size()) break;
      const size_t start = pos;
      text::next_code_point(s, pos);
      out += s.substr(start, pos - start);
      if (out.size() > max_bytes) throw Failure("string too large");
    }
    return out;
  }
  size_t start = 0;
  while (true) {
    if (count >= 0 && done >= count) break;
    const size_t found = s.find(old, start);
    if (found == std::string::npos) break;
    out.append(s, start, found - start);
    out += repl;
    if (out.size() > max_bytes) throw Failure("string too large");
    start = found + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

// Python slice-index normalisation for find/count/startswith start/end.
std::pair<size_t, size_t> span_bounds(size_t len, const std::optional<Value>& start, const std::optional<Value>& end) {
  const auto norm = [&](const std::optional<Value>& v, int64_t dflt) -> int64_t {
    if (!v || v->is_none()) return dflt;
    int64_t x = to_int_arg(*v, "slice index");
    if (x < 0) x += static_cast<int64_t>(len);
    return std::clamp<int64_t>(x, 0, static_cast<int64_t>(len));
  };
  const int64_t b = norm(start, 0);
  const int64_t e = norm(end, static_cast<int64_t>(len));
  return {static_cast<size_t>(b), static_cast<size_t>(std::max(b, e))};
}

std::string pad_to(const std::string& s, int64_t width, char32_t fill, char align) {
  const int64_t len = static_cast<int64_t>(text::code_point_count(s));
  if (width <= len) return s;
  const int64_t marg = width - len;
  int64_t left = 0;
  if (align == '>') left = marg;
  if (align == '^') left = marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) text::append_utf8(out, fill);
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) text::append_utf8(out, fill);
  return out;
}

char32_t fill_char_arg(const std::optional<Value>& v) {
  if (!v) return U' ';
  if (!v->is_string() || text::code_point_count(v->as_string()) != 1) {
    throw Failure("The fill character must be exactly one character long");
  }
  size_t pos = 0;
  return text::next_code_point(v->as_string(), pos);
}

// ------------------------------------------------------------------ str.format

std::string format_with_spec(const Value& v, const std::string& spec) {
  // [[fill]align][sign][#][0][width][,|_][.precision][type]
  size_t i = 0;
  char32_t fill = U' ';
  char align = 0;
  const std::u32string u = to_u32(spec);
  const auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (u.size() >= 2 && is_align(u[1])) {
    fill = u[0];
    align = static_cast<char>(u[1]);
    i = 2;
  } else if (!u.empty() && is_align(u[0])) {
    align = static_cast<char>(u[0]);
    i = 1;
  }
  char sign = '-';
  if (i < u.size() && (u[i] == '+' || u[i] == '-' || u[i] == ' ')) sign = static_cast<char>(u[i++]);
  bool alt = false;
  if (i < u.size() && u[i] == '#') {
    alt = true;
    ++i;
  }
  if (i < u.size() && u[i] == '0') {
    if (!align) {
      fill = U'0';
      align = '=';
    }
    ++i;
  }
  int64_t width = -1;
  while (i < u.size() && u[i] >= '0' && u[i] <= '9')
    width = std::min<int64_t>((width < 0 ? 0 : width) * 10 + (u[i++] - '0'), 100000);
  char grouping = 0;
  if (i < u.size() && (u[i] == ',' || u[i] == '_')) grouping = static_cast<char>(u[i++]);
  int64_t precision = -1;
  if (i < u.size() && u[i] == '.') {
    ++i;
    precision = 0;
    while (i < u.size() && u[i] >= '0' && u[i] <= '9')
      precision = std::min<int64_t>(precision * 10 + (u[i++] - '0'), 300);
  }
  char type = 0;
  if (i < u.size()) type = static_cast<char>(u[i++]);
  if (i != u.size()) throw Failure("Invalid format specifier '" + spec + "'");

  std::string body;
  bool numeric = false;
  if (v.is_string() || (!v.is_number() && type == 0)) {
    if (type != 0 && type != 's')
      throw Failure(std::string("Unknown format code '") + type + "' for object of type 'str'");
    body = to_str(v);
    if (precision >= 0) body = from_u32(to_u32(body), 0, static_cast<size_t>(precision));
    if (!align) align = '<';
  } else if (v.is_number()) {
    numeric = true;
    if (!align) align = '>';
    const bool is_integer = !v.is_float();
    char t = type;
    if (t == 0) t = is_integer ? 'd' : 'r';
    std::string digits;
    bool negative = false;
    if (t == 'd' || t == 'x' || t == 'X' || t == 'o' || t == 'b' || t == 'c' || t == 'n') {
      if (!is_integer) throw Failure(std::string("Unknown format code '") + t + "' for object of type 'float'");
      int64_t n = v.is_bool() ? (v.as_bool() ? 1 : 0) : v.as_int();
      if (t == 'c') {
        text::append_utf8(digits, static_cast<char32_t>(n));
      } else {
        negative = n < 0;
        uint64_t mag = negative ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
        const int base = (t == 'x' || t == 'X') ? 16 : t == 'o' ? 8 : t == 'b' ? 2 : 10;
        do {
          const int d = static_cast<int>(mag % static_cast<uint64_t>(base));
          digits.insert(digits.begin(), static_cast<char>(d < 10 ? '0' + d : (t == 'X' ? 'A' : 'a') + d - 10));
          mag /= static_cast<uint64_t>(base);
        } while (mag);
        if (grouping) {
          const size_t group = base == 10 ? 3 : 4;
          std::string grouped;
          for (size_t k = 0; k < digits.size(); ++k) {
            if (k && (digits.size() - k) % group == 0) grouped.push_back(grouping);
            grouped.push_back(digits[k]);
          }
          digits = grouped;
        }
        if (alt && base != 10) digits = std::string("0") + (t == 'o' ? 'o' : t == 'b' ? 'b' : t) + digits;
      }
    } else {
      double d = v.to_double();
      negative = std::signbit(d) && !std::isnan(d);
      d = std::fabs(d);
      char buf[512];
      if (t == 'r' && precision < 0) {
        digits = text::repr_float(d);
      } else if (t == 'e' || t == 'E' || t == 'f' || t == 'F' || t == 'g' || t == 'G' || t == '%' || t == 'r') {
        const int p = static_cast<int>(precision < 0 ? 6 : precision);
        if (d > 1e300) throw Failure("float format too large");
        if (t == '%') {
          std::snprintf(buf, sizeof buf, alt ? "%#.*f" : "%.*f", p, d * 100);
          digits = std::string(buf) + "%";
        } else {
          const char conv = t == 'r' ? 'g' : t;
          const std::string f = std::string("%") + (alt ? "#" : "") + ".*" + conv;
          std::snprintf(buf, sizeof buf, f.c_str(), p, d);
          digits = buf;
        }
      } else {
        throw Failure(std::string("Unknown format code '") + t + "' for object of type 'float'");
      }
      if (grouping) {
        const size_t dot = digits.find_first_not_of("0123456789");
        const std::string int_part = digits.substr(0, dot);
        std::string grouped;
        for (size_t k = 0; k < int_part.size(); ++k) {
          if (k && (int_part.size() - k) % 3 == 0) grouped.push_back(grouping);
          grouped.push_back(int_part[k]);
        }
        digits = grouped + (dot == std::string::npos ? "" : digits.substr(dot));
      }
    }
    const std::string sign_str = negative ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : "";
    if (align == '=') {
      const int64_t len = static_cast<int64_t>(text::code_point_count(sign_str + digits));
      std::string padding;
      for (int64_t k = len; k < width; ++k) text::append_utf8(padding, fill);
      return sign_str + padding + digits;
    }
    body = sign_str + digits;
  } else {
    body = to_str(v);
    if (!align) align = '<';
  }
  (void)numeric;
  if (align == '=') align = '>';
  return pad_to(body, width, fill, align);
}

std::string str_format(Interpreter& interp, const std::string& fmt, const Args& args, bool escape) {
  std::string out;
  size_t auto_index = 0;
  bool used_manual = false, used_auto = false;
  size_t i = 0;
  while (i < fmt.size()) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        i += 2;
        continue;
      }
      throw Failure("Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      i += 2;
      continue;
    }
    // Replacement field up to the matching '}' (one nesting level for specs).
    size_t j = i + 1;
    int depth = 1;
    while (j < fmt.size() && depth > 0) {
      if (fmt[j] == '{') ++depth;
      if (fmt[j] == '}') --depth;
      if (depth > 0) ++j;
    }
    if (j >= fmt.size()) throw Failure("expected '}' before end of string");
    std::string field = fmt.substr(i + 1, j - i - 1);
    i = j + 1;
    std::string spec;
    char conversion = 0;
    const size_t colon = field.find(':');
    if (colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    const size_t bang = field.find('!');
    if (bang != std::string::npos) {
      if (bang + 2 != field.size()) throw Failure("expected ':' after conversion specifier");
      conversion = field[bang + 1];
      field = field.substr(0, bang);
    }
    if (spec.find('{') != std::string::npos) spec = str_format(interp, spec, args, false);
    size_t name_end = field.find_first_of(".[");
    const std::string head = field.substr(0, name_end);
    Value value;
    if (head.empty()) {
      if (used_manual) throw Failure("cannot switch from manual field specification to automatic field numbering");
      used_auto = true;
      if (auto_index >= args.positional.size())
        throw Failure("Replacement index " + std::to_string(auto_index) + " out of range for positional args tuple");
      value = args.positional[auto_index++];
    } else if (std::all_of(head.begin(), head.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      if (used_auto) throw Failure("cannot switch from automatic field numbering to manual field specification");
      used_manual = true;
      const size_t idx = head.size() < 9 ? std::stoul(head) : std::numeric_limits<size_t>::max();
      if (idx >= args.positional.size())
        throw Failure("Replacement index " + head + " out of range for positional args tuple");
      value = args.positional[idx];
    } else {
      bool found = false;
      for (const auto& [k, v] : args.keyword) {
        if (k == head) {
          value = v;
          found = true;
        }
      }
      if (!found) throw Failure("KeyError: '" + head + "'");
    }
    while (name_end != std::string::npos && name_end < field.size()) {
      if (field[name_end] == '.') {
        const size_t next = field.find_first_of(".[", name_end + 1);
        value = interp.getattr(
            value, field.substr(name_end + 1, next == std::string::npos ? std::string::npos : next - name_end - 1));
        name_end = next;
      } else {
        const size_t close = field.find(']', name_end);
        if (close == std::string::npos) throw Failure("Missing ']' in format string");
        const std::string key = field.substr(name_end + 1, close - name_end - 1);
        const bool digits =
            !key.empty() && std::all_of(key.begin(), key.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
        value = interp.getitem(value,
                               digits && key.size() < 18 ? Value(static_cast<int64_t>(std::stoll(key))) : Value(key));
        name_end = close + 1;
      }
    }
    if (conversion == 'r' || conversion == 'a') {
      value = Value(repr(value));
    } else if (conversion == 's') {
      value = Value(to_str(value));
    } else if (conversion != 0) {
      throw Failure(std::string("Unknown conversion specifier ") + conversion);
    }
    std::string field_text = spec.empty() ? to_str(value) : format_with_spec(value, spec);
    if (escape && !(value.is_string() && value.is_safe())) field_text = text::html_escape(field_text);
    out += field_text;
    interp.check_output_size(out.size());
  }
  return out;
}

// ------------------------------------------------------------------ filters

Value f_abs(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "abs");
  if (v.is_int()) {
    if (v.as_int() == std::numeric_limits<int64_t>::min()) throw Failure("integer overflow");
    return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  if (v.is_bool()) return Value(static_cast<int64_t>(v.as_bool()));
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  throw Failure("bad operand type for abs(): '" + v.type_name() + "'");
}

Value f_attr(Interpreter& interp, const Value& v, Args& args) {
  const auto b = bind_args(args, {"name"}, "attr()");
  if (!b[0]) throw Failure("attr() missing required argument 'name'");
  const std::string name = to_str(*b[0]);
  if (v.is_undefined()) throw Failure(v.undefined_message());
  // Attribute only: dict keys are not attributes.
  if (v.is_dict() && !is_dict_method(name)) {
    return Value::undefined(undefined_attr_message(v, Value(name)));
  }
  return interp.getattr(v, name);
}

Value f_batch(Interpreter& interp, const Value& v, Args& args) {
  const auto b = bind_args(args, {"linecount", "fill_with"}, "batch()");
  if (!b[0]) throw Failure("batch() missing required argument 'linecount'");
  // Same loop as Jinja2, including its behaviour for linecount <= 0.
  const int64_t n = to_int_arg(*b[0], "batch()");
  std::vector<Value> out;
  std::vector<Value> tmp;
  for (auto& item : interp.iterate(v)) {
    if (static_cast<int64_t>(tmp.size()) == n) {
      out.push_back(Value::list(std::move(tmp)));
      tmp.clear();
    }
    tmp.push_back(std::move(item));
  }
  if (!tmp.empty()) {
    if (b[1] && !b[1]->is_none()) {
      while (static_cast<int64_t>(tmp.size()) < n) tmp.push_back(*b[1]);
    }
    out.push_back(Value::list(std::move(tmp)));
  }
  return generator(std::move(out));
}

Value f_capitalize(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "capitalize");
  const Value s = soft_str(v);
  return with_safety(text::capitalize(s.as_string()), s.is_safe());
}

Value f_center(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"width"}, "center()");
  const int64_t width = b[0] ? to_int_arg(*b[0], "center()") : 80;
  return Value(pad_to(to_str(v), std::min<int64_t>(width, 1 << 20), U' ', '^'));
}

Value f_length(Interpreter& interp, const Value& v, Args& args) {
  bind_args(args, {}, "length");
  return Value(interp.length(v));
}

Value f_default(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"default_value", "boolean"}, "default()");
  const Value fallback = b[0] ? *b[0] : Value(std::string());
  const bool boolean = b[1] && b[1]->truthy();
  if (v.is_undefined() || (boolean && !v.truthy())) return fallback;
  return v;
}

Value f_dictsort(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"case_sensitive", "by", "reverse"}, "dictsort()");
  if (v.is_undefined()) throw Failure(v.undefined_message());
  if (!v.is_dict()) throw Failure("'" + v.type_name() + "' object has no attribute 'items'");
  const bool case_sensitive = b[0] && b[0]->truthy();
  int pos = 0;
  if (b[1]) {
    const std::string by = to_str(*b[1]);
    if (by == "value") {
      pos = 1;
    } else if (by != "key") {
      throw Failure("You can only sort by either \"key\" or \"value\"");
    }
  }
  const bool reverse = b[2] && b[2]->truthy();
  std::vector<std::pair<Value, Value>> entries = v.dict_data().entries;
  std::stable_sort(entries.begin(), entries.end(), [&](const auto& x, const auto& y) {
    const Value& a = pos == 0 ? x.first : x.second;
    const Value& c = pos == 0 ? y.first : y.second;
    return reverse ? less_than(sort_key(c, case_sensitive), sort_key(a, case_sensitive))
                   : less_than(sort_key(a, case_sensitive), sort_key(c, case_sensitive));
  });
  std::vector<Value> out;
  for (auto& [k, val] : entries) out.push_back(Value::tuple({k, val}));
  return Value::list(std::move(out));
}

Value f_escape(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "escape");
  if (v.is_string() && v.is_safe()) return v;
  return Value::safe_string(text::html_escape(to_str(v)));
}

Value f_forceescape(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "forceescape");
  return Value::safe_string(text::html_escape(to_str(v)));
}

Value f_first(Interpreter& interp, const Value& v, Args& args) {
  bind_args(args, {}, "first");
  const auto items = interp.iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(Interpreter& interp, const Value& v, Args& args) {
  bind_args(args, {}, "last");
  if (v.is_list() && v.seq_kind() == SeqKind::kGenerator) throw Failure("'generator' object is not reversible");
  const auto items = interp.iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

// Python float(str): surrounding whitespace allowed, inf/nan spelled out.
std::optional<double> parse_python_float(const std::string& raw) {
  const std::string s = text::strip(raw, nullptr, true, true);
  if (s.empty()) return std::nullopt;
  std::string cleaned;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        return std::nullopt;
      }
      continue;
    }
    cleaned.push_back(s[i]);
  }
  const std::string lower = text::to_lower(cleaned);
  std::string body = lower;
  double sign = 1;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    sign = body[0] == '-' ? -1 : 1;
    body = body.substr(1);
  }
  if (body == "inf" || body == "infinity") return sign * std::numeric_limits<double>::infinity();
  if (body == "nan") return std::numeric_limits<double>::quiet_NaN();
  for (char c : body) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' || c == '-')) {
      return std::nullopt;
    }
  }
  char* end = nullptr;
  const double d = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size()) return std::nullopt;
  return d;
}

// Python int(str, base).
std::optional<int64_t> parse_python_int(const std::string& raw, int64_t base) {
  std::string s = text::strip(raw, nullptr, true, true);
  if (s.empty()) return std::nullopt;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s = s.substr(1);
  }
  const std::string lower = text::to_lower(s);
  const auto has_prefix = [&](char p) { return lower.size() > 2 && lower[0] == '0' && lower[1] == p; };
  if (base == 0) {
    base = has_prefix('x') ? 16 : has_prefix('o') ? 8 : has_prefix('b') ? 2 : 10;
    if (base == 10 && lower.size() > 1 && lower[0] == '0' && lower.find_first_not_of("0_") != std::string::npos) {
      return std::nullopt;
    }
  }
  if ((base == 16 && has_prefix('x')) || (base == 8 && has_prefix('o')) || (base == 2 && has_prefix('b'))) {
    s = s.substr(2);
    if (!s.empty() && s[0] == '_') s = s.substr(1);
  }
  if (base < 2 || base > 36 || s.empty()) return std::nullopt;
  uint64_t value = 0;
  bool prev_underscore = true;
  for (char c : s) {
    if (c == '_') {
      if (prev_underscore) return std::nullopt;
      prev_underscore = true;
      continue;
    }
    prev_underscore = false;
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
      d = (c | 0x20) - 'a' + 10;
    } else {
      return std::nullopt;
    }
    if (d >= base) return std::nullopt;
    if (value > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - static_cast<uint64_t>(d)) /
                    static_cast<uint64_t>(base)) {
      throw Failure("integer too large (integers are 64-bit here)");
    }
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  if (prev_underscore) return std::nullopt;
  return negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
}

int64_t float_to_int(double d) {
  if (std::isnan(d)) throw Failure("cannot convert float NaN to integer");
  if (std::isinf(d)) throw Failure("cannot convert float infinity to integer");
  const double t = std::trunc(d);
  if (!(std::fabs(t) < 9.2e18)) throw Failure("integer too large (integers are 64-bit here)");
  return static_cast<int64_t>(t);
}

Value f_float(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"default"}, "float()");
  const Value fallback = b[0] ? *b[0] : Value(0.0);
  if (v.is_undefined()) throw Failure(v.undefined_message());
  if (v.is_float()) return v;
  if (v.is_int() || v.is_bool()) return Value(v.to_double());
  if (v.is_string()) {
    if (auto d = parse_python_float(v.as_string())) return Value(*d);
  }
  return fallback;
}

Value f_int(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"default", "base"}, "int()");
  const Value fallback = b[0] ? *b[0] : Value(int64_t{0});
  const int64_t base = b[1] ? to_int_arg(*b[1], "int()") : 10;
  if (v.is_undefined()) throw Failure(v.undefined_message());
  if (v.is_int()) return v;
  if (v.is_bool()) return Value(static_cast<int64_t>(v.as_bool()));
  if (v.is_float()) return Value(float_to_int(v.as_float()));
  if (v.is_string()) {
    if (auto i = parse_python_int(v.as_string(), base)) return Value(*i);
    if (auto d = parse_python_float(v.as_string())) return Value(float_to_int(*d));
  }
  return fallback;
}

Value f_format(Interpreter&, const Value& v, Args& args) {
  if (!args.positional.empty() && !args.keyword.empty()) {
    throw Failure("can't handle positional and keyword arguments at the same time");
  }
  Value format_args;
  if (!args.keyword.empty()) {
    format_args = Value::dict();
    for (auto& [k, val] : args.keyword) format_args.dict_data().set(Value(k), val);
  } else {
    format_args = Value::tuple(args.positional);
  }
  const Value s = soft_str(v);
  return with_safety(percent_format(s.as_string(), format_args, s.is_safe()), s.is_safe());
}

Value f_indent(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"width", "first", "blank"}, "indent()");
  if (v.is_undefined()) throw Failure(v.undefined_message());
  std::string indention;
  if (b[0] && b[0]->is_string()) {
    indention = b[0]->as_string();
  } else {
    const int64_t width = b[0] ? to_int_arg(*b[0], "indent()") : 4;
    indention = std::string(static_cast<size_t>(std::clamp<int64_t>(width, 0, 1 << 16)), ' ');
  }
  const bool first = b[1] && b[1]->truthy();
  const bool blank = b[2] && b[2]->truthy();
  const std::string s = to_str(v) + "\n";
  const std::vector<std::string> lines = text::split_lines(s);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + indention;
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n";
      if (!lines[i].empty()) rv += indention;
      rv += lines[i];
    }
  }
  if (first) rv = indention + rv;
  return Value(rv);
}

Value f_items(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "items");
  if (v.is_undefined()) return generator({});
  if (!v.is_dict()) throw Failure("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, val] : v.dict_data().entries) out.push_back(Value::tuple({k, val}));
  return generator(std::move(out));
}

Value f_join(Interpreter& interp, const Value& v, Args& args) {
  const auto b = bind_args(args, {"d", "attribute"}, "join()");
  const std::string sep = b[0] ? to_str(*b[0]) : "";
  std::string out;
  bool first = true;
  for (auto& item : interp.iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += to_str(b[1] ? lookup_attribute_path(interp, item, *b[1]) : item);
    interp.check_output_size(out.size());
  }
  return Value(std::move(out));
}

Value f_list(Interpreter& interp, const Value& v, Args& args) {
  bind_args(args, {}, "list");
  return Value::list(interp.iterate(v));
}

Value f_lower(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "lower");
  const Value s = soft_str(v);
  return with_safety(text::to_lower(s.as_string()), s.is_safe());
}

Value f_upper(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "upper");
  const Value s = soft_str(v);
  return with_safety(text::to_upper(s.as_string()), s.is_safe());
}

Value f_map(Interpreter& interp, const Value& v, Args& args) {
  std::vector<Value> out;
  if (!v.truthy()) return generator({});  // Jinja2 checks `if value:` first
  const auto items = interp.iterate(v);
  if (args.positional.empty()) {
    Value attribute, fallback = Value::none();
    bool has_attribute = false;
    for (auto& [k, val] : args.keyword) {
      if (k == "attribute") {
        attribute = val;
        has_attribute = true;
      } else if (k == "default") {
        fallback = val;
      } else {
        throw Failure("Unexpected keyword argument '" + k + "'");
      }
    }
    if (!has_attribute) throw Failure("map requires a filter argument");
    for (const auto& item : items) {
      Value r = lookup_attribute_path(interp, item, attribute);
      if (!fallback.is_none() && r.is_undefined()) r = fallback;
      out.push_back(std::move(r));
    }
    return generator(std::move(out));
  }
  const std::string name = to_str(args.positional[0]);
  const int id = lookup_filter(name);
  if (id < 0) throw Failure("No filter named '" + name + "'.");
  Args rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const auto& item : items) {
    Args copy = rest;
    out.push_back(interp.apply_filter(id, name, item, copy));
  }
  return generator(std::move(out));
}

Value min_max(Interpreter& interp, const Value& v, Args& args, bool want_max, const char* name) {
  const auto b = bind_args(args, {"case_sensitive", "attribute"}, name);
  const bool case_sensitive = b[0] && b[0]->truthy();
  const auto items = interp.iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const auto key = [&](const Value& item) {
    return sort_key(b[1] ? lookup_attribute_path(interp, item, *b[1]) : item, case_sensitive);
  };
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    if (want_max ? less_than(best_key, k) : less_than(k, best_key)) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}

Value f_max(Interpreter& interp, const Value& v, Args& args) { return min_max(interp, v, args, true, "max()"); }
Value f_min(Interpreter& interp, const Value& v, Args& args) { return min_max(interp, v, args, false, "min()"); }

Value select_or_reject(Interpreter& interp, const Value& v, Args& args, bool lookup_attr, bool select) {
  if (!v.truthy()) return generator({});  // Jinja2 checks `if value:` first
  size_t off = 0;
  Value attribute;
  if (lookup_attr) {
    if (args.positional.empty()) throw Failure("Missing parameter for attribute name");
    attribute = args.positional[0];
    off = 1;
  }
  int test_id = -1;
  std::string test_name;
  Args test_args;
  if (args.positional.size() > off) {
    test_name = to_str(args.positional[off]);
    test_id = lookup_test(test_name);
    if (test_id < 0) throw Failure("No test named '" + test_name + "'.");
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(off + 1), args.positional.end());
    test_args.keyword = args.keyword;
  }
  std::vector<Value> out;
  for (auto& item : interp.iterate(v)) {
    const Value probe = lookup_attr ? lookup_attribute_path(interp, item, attribute) : item;
    bool ok;
    if (test_id >= 0) {
      Args copy = test_args;
      ok = interp.apply_test(test_id, test_name, probe, copy);
    } else {
      ok = probe.truthy();
    }
    if (ok == select) out.push_back(std::move(item));
  }
  return generator(std::move(out));
}

Value f_select(Interpreter& i, const Value& v, Args& a) { return select_or_reject(i, v, a, false, true); }
Value f_reject(Interpreter& i, const Value& v, Args& a) { return select_or_reject(i, v, a, false, false); }
Value f_selectattr(Interpreter& i, const Value& v, Args& a) { return select_or_reject(i, v, a, true, true); }
Value f_rejectattr(Interpreter& i, const Value& v, Args& a) { return select_or_reject(i, v, a, true, false); }

Value f_replace(Interpreter& interp, const Value& v, Args& args) {
  const auto b = bind_args(args, {"old", "new", "count"}, "replace()");
  if (!b[0] || !b[1]) throw Failure("replace() missing required arguments");
  const int64_t count = (b[2] && !b[2]->is_none()) ? to_int_arg(*b[2], "replace()") : -1;
  return Value(py_replace(to_str(v), to_str(*b[0]), to_str(*b[1]), count, interp.options().max_output_bytes));
}

Value f_reverse(Interpreter& interp, const Value& v, Args& args) {
  bind_args(args, {}, "reverse");
  if (v.is_string()) {
    std::u32string u = to_u32(v.as_string());
    std::reverse(u.begin(), u.end());
    return Value(from_u32(u));
  }
  if (v.is_list() && v.seq_kind() == SeqKind::kGenerator) {
    // Not reversible: Jinja2 lists it first.
    auto items = interp.iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  auto items = interp.iterate(v);
  std::reverse(items.begin(), items.end());
  return generator(std::move(items));  // Python's reversed() iterator
}

// Python round(x, n): correctly rounded, ties to even on the exact value.
double python_round(double x, int64_t ndigits) {
  if (std::isnan(x) || std::isinf(x) || x == 0) return x;
  if (ndigits > 22) return x;
  if (ndigits >= 0) {
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::min<int64_t>(ndigits, 330)), x);
    return std::strtod(buf, nullptr);
  }
  if (ndigits < -308) return std::copysign(0.0, x);
  const double pow10 = std::pow(10.0, static_cast<double>(-ndigits));
  const double y = x / pow10;
  double z = std::nearbyint(y);
  return std::copysign(z * pow10, x);
}

Value f_round(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"precision", "method"}, "round()");
  const int64_t precision = b[0] ? to_int_arg(*b[0], "round()") : 0;
  const std::string method = b[1] ? to_str(*b[1]) : "common";
  if (method != "common" && method != "ceil" && method != "floor") {
    throw Failure("method must be common, ceil or floor");
  }
  if (v.is_undefined()) throw Failure("type Undefined doesn't define __round__ method");
  if (!v.is_number()) throw Failure("type " + v.type_name() + " doesn't define __round__ method");
  if (method == "common") {
    if (!v.is_float()) return v.is_bool() ? Value(static_cast<int64_t>(v.as_bool())) : v;
    return Value(python_round(v.as_float(), precision));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.to_double() * scale;
  return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value f_safe(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "safe");
  return Value::safe_string(to_str(v));
}

Value f_slice(Interpreter& interp, const Value& v, Args& args) {
  const auto b = bind_args(args, {"slices", "fill_with"}, "slice()");
  if (!b[0]) throw Failure("slice() missing required argument 'slices'");
  const int64_t slices = to_int_arg(*b[0], "slice()");
  if (slices <= 0) throw Failure("slice() slices must be positive");
  const auto seq = interp.iterate(v);
  const int64_t length = static_cast<int64_t>(seq.size());
  const int64_t items_per_slice = length / slices;
  const int64_t slices_with_extra = length % slices;
  int64_t offset = 0;
  std::vector<Value> out;
  for (int64_t n = 0; n < slices; ++n) {
    const int64_t start = offset + n * items_per_slice;
    if (n < slices_with_extra) offset += 1;
    const int64_t end = offset + (n + 1) * items_per_slice;
    std::vector<Value> tmp(seq.begin() + start, seq.begin() + end);
    if (b[1] && !b[1]->is_none() && n >= slices_with_extra) tmp.push_back(*b[1]);
    out.push_back(Value::list(std::move(tmp)));
  }
  return generator(std::move(out));
}

Value f_sort(Interpreter& interp, const Value& v, Args& args) {
  const auto b = bind_args(args, {"reverse", "case_sensitive", "attribute"}, "sort()");
  const bool reverse = b[0] && b[0]->truthy();
  const bool case_sensitive = b[1] && b[1]->truthy();
  std::vector<Value> items = interp.iterate(v);
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t i = 0; i < items.size(); ++i) {
    std::vector<Value> keys;
    if (b[2] && b[2]->is_string() && b[2]->as_string().find(',') != std::string::npos) {
      // Several comma-separated attributes sort as a tuple.
      for (const auto& part : py_split(b[2]->as_string(), std::string(","), -1)) {
        keys.push_back(sort_key(lookup_attribute_path(interp, items[i], Value(part)), case_sensitive));
      }
      keyed.emplace_back(Value::tuple(std::move(keys)), i);
    } else {
      keyed.emplace_back(sort_key(b[2] ? lookup_attribute_path(interp, items[i], *b[2]) : items[i], case_sensitive), i);
    }
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less_than(y.first, x.first) : less_than(x.first, y.first);
  });
  std::vector<Value> out;
  for (const auto& [k, i] : keyed) out.push_back(items[i]);
  return Value::list(std::move(out));
}

Value f_string(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "string");
  return soft_str(v);
}

Value f_striptags(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "striptags");
  std::string s = to_str(v);
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t end = s.find("-->", i + 4);
      if (end == std::string::npos) {
        out += s.substr(i);
        break;
      }
      i = end + 3;
    } else if (s[i] == '<') {
      const size_t end = s.find('>', i + 1);
      if (end == std::string::npos) {
        out += s.substr(i);
        break;
      }
      i = end + 1;
    } else {
      out.push_back(s[i++]);
    }
  }
  std::string joined;
  for (const auto& word : py_split(out, std::nullopt, -1)) {
    if (!joined.empty()) joined += " ";
    joined += word;
  }
  // Unescape the entities markupsafe.escape produces.
  static const std::pair<const char*, const char*> kEntities[] = {{"&lt;", "<"},   {"&gt;", ">"},    {"&#39;", "'"},
                                                                  {"&#34;", "\""}, {"&quot;", "\""}, {"&amp;", "&"}};
  for (const auto& [entity, ch] : kEntities) joined = py_replace(joined, entity, ch, -1, std::string::npos);
  return Value(joined);
}

Value f_sum(Interpreter& interp, const Value& v, Args& args) {
  const auto b = bind_args(args, {"attribute", "start"}, "sum()");
  Value total = b[1] ? *b[1] : Value(int64_t{0});
  for (auto& item : interp.iterate(v)) {
    total = binary_op(BinaryOp::kAdd, total, b[0] ? lookup_attribute_path(interp, item, *b[0]) : item,
                      interp.options().max_output_bytes);
  }
  return total;
}

Value f_title(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "title");
  // Jinja2 splits on runs of [-\s({\[<] and capitalises each piece.
  const Value s = soft_str(v);
  const std::u32string u = to_u32(s.as_string());
  const auto is_sep = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || text::is_space(c);
  };
  std::string out;
  size_t i = 0;
  while (i < u.size()) {
    size_t j = i;
    const bool sep = is_sep(u[i]);
    while (j < u.size() && is_sep(u[j]) == sep) ++j;
    const std::string piece = from_u32(u, i, j);
    if (sep) {
      out += piece;
    } else {
      std::string first;
      text::append_utf8(first, u[i]);
      out += text::to_upper(first) + text::to_lower(from_u32(u, i + 1, j));
    }
    i = j;
  }
  return Value(out);  // Jinja2 joins the pieces into a plain str
}

Value f_tojson(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"ensure_ascii", "indent", "separators", "sort_keys"}, "tojson()");
  JsonOptions opt;
  opt.ensure_ascii = b[0] && b[0]->truthy();
  if (b[1] && !b[1]->is_none()) {
    if (b[1]->is_string()) {
      opt.indent = b[1]->as_string();
    } else {
      const int64_t n = to_int_arg(*b[1], "tojson()");
      opt.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 1 << 12)), ' ');
    }
    opt.item_separator = ",";
  }
  if (b[2] && !b[2]->is_none()) {
    if (!b[2]->is_list() || b[2]->items().size() != 2 || !b[2]->items()[0].is_string() ||
        !b[2]->items()[1].is_string()) {
      throw Failure("tojson(): separators must be a pair of strings");
    }
    opt.item_separator = b[2]->items()[0].as_string();
    opt.key_separator = b[2]->items()[1].as_string();
  }
  opt.sort_keys = b[3] && b[3]->truthy();
  return Value(to_json_string(v, opt));
}

Value f_trim(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"chars"}, "trim()");
  const Value s = soft_str(v);
  if (b[0] && !b[0]->is_none()) {
    const std::u32string chars = to_u32(to_str(*b[0]));
    return with_safety(text::strip(s.as_string(), &chars, true, true), s.is_safe());
  }
  return with_safety(text::strip(s.as_string(), nullptr, true, true), s.is_safe());
}

Value f_truncate(Interpreter&, const Value& v, Args& args) {
  const auto b = bind_args(args, {"length", "killwords", "end", "leeway"}, "truncate()");
  const int64_t length = b[0] ? to_int_arg(*b[0], "truncate()") : 255;
  const bool killwords = b[1] && b[1]->truthy();
  const std::string end = b[2] ? to_str(*b[2]) : "...";
  const int64_t leeway = (b[3] && !b[3]->is_none()) ? to_int_arg(*b[3], "truncate()") : 5;
  const int64_t end_len = static_cast<int64_t>(text::code_point_count(end));
  if (length < end_len)
    throw Failure("expected length >= " + std::to_string(end_len) + ", got " + std::to_string(length));
  if (leeway < 0) throw Failure("expected leeway >= 0, got " + std::to_string(leeway));
  const std::u32string u = to_u32(to_str(v));
  if (static_cast<int64_t>(u.size()) <= length + leeway) return Value(to_str(v));
  const std::string head = from_u32(u, 0, static_cast<size_t>(length - end_len));
  if (killwords) return Value(head + end);
  const auto parts = py_rsplit(head, std::string(" "), 1);
  return Value(parts[0] + end);
}

Value f_unique(Interpreter& interp, const Value& v, Args& args) {
  const auto b = bind_args(args, {"case_sensitive", "attribute"}, "unique()");
  const bool case_sensitive = b[0] && b[0]->truthy();
  std::vector<Value> seen;
  std::vector<Value> out;
  for (auto& item : interp.iterate(v)) {
    Value key = sort_key(b[1] ? lookup_attribute_path(interp, item, *b[1]) : item, case_sensitive);
    if (key.is_list() && !key.is_tuple()) throw Failure("unhashable type: '" + key.type_name() + "'");
    if (key.is_dict()) throw Failure("unhashable type: 'dict'");
    bool dup = false;
    for (const auto& s : seen) {
      if (equals(s, key)) {
        dup = true;
        break;
      }
    }
    if (!dup) {
      seen.push_back(std::move(key));
      out.push_back(std::move(item));
    }
  }
  return generator(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "wordcount");
  const std::u32string u = to_u32(to_str(v));
  int64_t count = 0;
  bool in_word = false;
  for (char32_t c : u) {
    const bool w = text::is_word(c);
    if (w && !in_word) ++count;
    in_word = w;
  }
  return Value(count);
}

struct FilterEntry {
  const char* name;
  FilterFn fn;
};

const FilterEntry kFilters[] = {
    {"abs", f_abs},           {"attr", f_attr},
    {"batch", f_batch},       {"capitalize", f_capitalize},
    {"center", f_center},     {"count", f_length},
    {"d", f_default},         {"default", f_default},
    {"dictsort", f_dictsort}, {"e", f_escape},
    {"escape", f_escape},     {"first", f_first},
    {"float", f_float},       {"forceescape", f_forceescape},
    {"format", f_format},     {"indent", f_indent},
    {"int", f_int},           {"items", f_items},
    {"join", f_join},         {"last", f_last},
    {"length", f_length},     {"list", f_list},
    {"lower", f_lower},       {"map", f_map},
    {"max", f_max},           {"min", f_min},
    {"reject", f_reject},     {"rejectattr", f_rejectattr},
    {"replace", f_replace},   {"reverse", f_reverse},
    {"round", f_round},       {"safe", f_safe},
    {"select", f_select},     {"selectattr", f_selectattr},
    {"slice", f_slice},       {"sort", f_sort},
    {"string", f_string},     {"striptags", f_striptags},
    {"sum", f_sum},           {"title", f_title},
    {"tojson", f_tojson},     {"trim", f_trim},
    {"truncate", f_truncate}, {"unique", f_unique},
    {"upper", f_upper},       {"wordcount", f_wordcount},
};

// Jinja2 builtins this renderer leaves out (rarely used in chat templates).
const char* const kUnsupportedFilters[] = {"filesizeformat", "groupby", "pprint",   "random",
                                           "urlencode",      "urlize",  "wordwrap", "xmlattr"};

// ------------------------------------------------------------------ tests

Value test_arg(Args& args, const char* name) {
  const auto b = bind_args(args, {"other"}, name);
  if (!b[0]) throw Failure(std::string(name) + "() missing required argument");
  return *b[0];
}

bool t_boolean(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "boolean");
  return v.is_bool();
}
bool t_callable(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "callable");
  return v.is_undefined() || (v.is_object() && v.object().is_callable());
}
bool t_defined(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "defined");
  return !v.is_undefined();
}
bool t_undefined(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "undefined");
  return v.is_undefined();
}
bool t_divisibleby(Interpreter& interp, const Value& v, Args& args) {
  const Value num = test_arg(args, "divisibleby");
  return equals(binary_op(BinaryOp::kMod, v, num, interp.options().max_output_bytes), Value(int64_t{0}));
}
bool t_eq(Interpreter&, const Value& v, Args& args) { return equals(v, test_arg(args, "eq")); }
bool t_ne(Interpreter&, const Value& v, Args& args) { return !equals(v, test_arg(args, "ne")); }
bool t_lt(Interpreter&, const Value& v, Args& args) { return compare_op(CompareOp::kLt, v, test_arg(args, "lt")); }
bool t_le(Interpreter&, const Value& v, Args& args) { return compare_op(CompareOp::kLe, v, test_arg(args, "le")); }
bool t_gt(Interpreter&, const Value& v, Args& args) { return compare_op(CompareOp::kGt, v, test_arg(args, "gt")); }
bool t_ge(Interpreter&, const Value& v, Args& args) { return compare_op(CompareOp::kGe, v, test_arg(args, "ge")); }
bool t_escaped(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "escaped");
  return v.is_string() && v.is_safe();
}
bool t_even(Interpreter& interp, const Value& v, Args& args) {
  bind_args(args, {}, "even");
  if (v.is_string()) throw Failure("not all arguments converted during string formatting");
  return equals(binary_op(BinaryOp::kMod, v, Value(int64_t{2}), interp.options().max_output_bytes), Value(int64_t{0}));
}
bool t_odd(Interpreter& interp, const Value& v, Args& args) {
  bind_args(args, {}, "odd");
  if (v.is_string()) throw Failure("not all arguments converted during string formatting");
  return equals(binary_op(BinaryOp::kMod, v, Value(int64_t{2}), interp.options().max_output_bytes), Value(int64_t{1}));
}
bool t_false(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "false");
  return v.is_bool() && !v.as_bool();
}
bool t_true(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "true");
  return v.is_bool() && v.as_bool();
}
bool t_filter(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "filter");
  return v.is_string() && lookup_filter(v.as_string()) >= 0;
}
bool t_test(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "test");
  return v.is_string() && lookup_test(v.as_string()) >= 0;
}
bool t_float(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "float");
  return v.is_float();
}
bool t_integer(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "integer");
  return v.is_int();
}
bool t_in(Interpreter& interp, const Value& v, Args& args) { return contains(interp, test_arg(args, "in"), v); }
bool t_iterable(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "iterable");
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_lower(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "lower");
  bool cased = false;
  for (char32_t c : to_u32(to_str(v))) {
    if (text::is_upper(c)) return false;
    if (text::is_lower(c)) cased = true;
  }
  return cased;
}
bool t_upper(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "upper");
  bool cased = false;
  for (char32_t c : to_u32(to_str(v))) {
    if (text::is_lower(c)) return false;
    if (text::is_upper(c)) cased = true;
  }
  return cased;
}
bool t_mapping(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "mapping");
  return v.is_dict();
}
bool t_none(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "none");
  return v.is_none();
}
bool t_number(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "number");
  return v.is_number();
}
bool t_sameas(Interpreter&, const Value& v, Args& args) {
  const Value other = test_arg(args, "sameas");
  if (v.type() != other.type()) return false;
  switch (v.type()) {
    case Type::kList:
      return v.list_ptr() == other.list_ptr();
    case Type::kDict:
      return v.dict_ptr() == other.dict_ptr();
    case Type::kObject:
      return v.object_ptr() == other.object_ptr();
    default:
      return equals(v, other);
  }
}
bool t_sequence(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "sequence");
  if (v.is_list()) {
    const SeqKind k = v.seq_kind();
    return k == SeqKind::kList || k == SeqKind::kTuple || k == SeqKind::kRange;
  }
  return v.is_undefined() || v.is_string() || v.is_dict();
}
bool t_string(Interpreter&, const Value& v, Args& args) {
  bind_args(args, {}, "string");
  return v.is_string();
}

struct TestEntry {
  const char* name;
  TestFn fn;
};

const TestEntry kTests[] = {
    {"boolean", t_boolean},
    {"callable", t_callable},
    {"defined", t_defined},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"escaped", t_escaped},
    {"even", t_even},
    {"false", t_false},
    {"filter", t_filter},
    {"float", t_float},
    {"ge", t_ge},
    {">=", t_ge},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"in", t_in},
    {"integer", t_integer},
    {"iterable", t_iterable},
    {"le", t_le},
    {"<=", t_le},
    {"lower", t_lower},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"mapping", t_mapping},
    {"ne", t_ne},
    {"!=", t_ne},
    {"none", t_none},
    {"number", t_number},
    {"odd", t_odd},
    {"sameas", t_sameas},
    {"sequence", t_sequence},
    {"string", t_string},
    {"test", t_test},
    {"true", t_true},
    {"undefined", t_undefined},
    {"upper", t_upper},
};

// ------------------------------------------------------------------ methods

const char* const kStringMethods[] = {
    "capitalize",   "casefold",   "center",     "count",     "endswith", "find",       "format",    "index",
    "isalnum",      "isalpha",    "isascii",    "isdecimal", "isdigit",  "islower",    "isnumeric", "isspace",
    "istitle",      "isupper",    "join",       "ljust",     "lower",    "lstrip",     "partition", "removeprefix",
    "removesuffix", "replace",    "rfind",      "rindex",    "rjust",    "rpartition", "rsplit",    "rstrip",
    "split",        "splitlines", "startswith", "strip",     "swapcase", "title",      "upper",     "zfill"};
const char* const kListMethods[] = {"append", "clear", "copy",   "count",   "extend", "index",
                                    "insert", "pop",   "remove", "reverse", "sort"};
const char* const kDictMethods[] = {"clear", "copy",    "get",        "items",  "keys",
                                    "pop",   "popitem", "setdefault", "update", "values"};

template <size_t N>
bool in_table(const char* const (&table)[N], const std::string& name) {
  for (const char* entry : table) {
    if (name == entry) return true;
  }
  return false;
}

std::string str_arg(const std::optional<Value>& v, const char* method) {
  if (!v || !v->is_string()) {
    throw Failure(std::string(method) + "() argument must be str, not " + (v ? v->type_name() : "nothing"));
  }
  return v->as_string();
}

std::optional<std::string> optional_str_arg(const std::optional<Value>& v, const char* method) {
  if (!v || v->is_none()) return std::nullopt;
  return str_arg(v, method);
}

Value string_list(const std::vector<std::string>& parts, bool safe) {
  std::vector<Value> out;
  for (const auto& p : parts) out.push_back(with_safety(p, safe));
  return Value::list(std::move(out));
}

// Index of `sub` in code-point space, searching [begin, end).
int64_t find_in(const std::u32string& hay, const std::u32string& sub, size_t begin, size_t end, bool reverse) {
  if (end < begin || end - begin < sub.size()) return -1;
  if (!reverse) {
    for (size_t i = begin; i + sub.size() <= end; ++i) {
      if (hay.compare(i, sub.size(), sub) == 0) return static_cast<int64_t>(i);
    }
  } else {
    for (size_t i = end - sub.size() + 1; i-- > begin;) {
      if (hay.compare(i, sub.size(), sub) == 0) return static_cast<int64_t>(i);
    }
  }
  return -1;
}

}  // namespace

Value string_method(Interpreter& interp, const Value& self, const std::string& name, Args& args) {
  const std::string& s = self.as_string();
  const bool safe = self.is_safe();
  // Markup methods return Markup; replace() escapes its replacement,
  // join() its items and format() its fields (markupsafe 3).
  const auto result = [&](std::string r) { return with_safety(std::move(r), safe); };
  const size_t max_bytes = interp.options().max_output_bytes;

  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const auto b = bind_args(args, {"chars"}, name);
    const auto chars = optional_str_arg(b[0], name.c_str());
    const bool left = name != "rstrip", right = name != "lstrip";
    if (chars) {
      const std::u32string set = to_u32(*chars);
      return result(text::strip(s, &set, left, right));
    }
    return result(text::strip(s, nullptr, left, right));
  }
  if (name == "split" || name == "rsplit") {
    const auto b = bind_args(args, {"sep", "maxsplit"}, name);
    const auto sep = optional_str_arg(b[0], name.c_str());
    const int64_t maxsplit = b[1] ? to_int_arg(*b[1], name) : -1;
    return string_list(name == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit), safe);
  }
  if (name == "splitlines") {
    const auto b = bind_args(args, {"keepends"}, name);
    if (b[0] && b[0]->truthy()) throw Failure("splitlines(keepends=True) is not supported");
    return string_list(text::split_lines(s), safe);
  }
  if (name == "startswith" || name == "endswith") {
    const auto b = bind_args(args, {"prefix", "start", "end"}, name);
    if (!b[0]) throw Failure(name + "() takes at least 1 argument (0 given)");
    std::vector<std::string> candidates;
    if (b[0]->is_tuple()) {
      for (const auto& c : b[0]->items()) {
        if (!c.is_string()) throw Failure("tuple for " + name + " must only contain str, not " + c.type_name());
        candidates.push_back(c.as_string());
      }
    } else if (b[0]->is_string()) {
      candidates.push_back(b[0]->as_string());
    } else {
      throw Failure(name + " first arg must be str or a tuple of str, not " + b[0]->type_name());
    }
    const std::u32string u = to_u32(s);
    const auto [begin, end] = span_bounds(u.size(), b[1], b[2]);
    for (const auto& c : candidates) {
      const std::u32string cu = to_u32(c);
      if (end - begin < cu.size()) {
        continue;
      }
      const size_t at = name == "startswith" ? begin : end - cu.size();
      if (u.compare(at, cu.size(), cu) == 0) return Value(true);
    }
    return Value(false);
  }
  if (name == "replace") {
    const auto b = bind_args(args, {"old", "new", "count"}, name);
    const int64_t count = b[2] ? to_int_arg(*b[2], name) : -1;
    std::string repl = str_arg(b[1], "replace");
    if (safe && !b[1]->is_safe()) repl = text::html_escape(repl);
    return result(py_replace(s, str_arg(b[0], "replace"), repl, count, max_bytes));
  }
  if (name == "upper") {
    bind_args(args, {}, name);
    return result(text::to_upper(s));
  }
  if (name == "lower" || name == "casefold") {
    bind_args(args, {}, name);
    return result(text::to_lower(s));
  }
  if (name == "title") {
    bind_args(args, {}, name);
    return result(text::python_title(s));
  }
  if (name == "capitalize") {
    bind_args(args, {}, name);
    return result(text::capitalize(s));
  }
  if (name == "swapcase") {
    bind_args(args, {}, name);
    return result(text::swap_case(s));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    const auto b = bind_args(args, {"sub", "start", "end"}, name);
    const std::u32string u = to_u32(s);
    const std::u32string sub = to_u32(str_arg(b[0], name.c_str()));
    const auto [begin, end] = span_bounds(u.size(), b[1], b[2]);
    if (name == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(end - begin + 1));
      int64_t n = 0;
      size_t i = begin;
      while (true) {
        const int64_t at = find_in(u, sub, i, end, false);
        if (at < 0) break;
        ++n;
        i = static_cast<size_t>(at) + sub.size();
      }
      return Value(n);
    }
    const int64_t at = find_in(u, sub, begin, end, name[0] == 'r');
    if (at < 0 && (name == "index" || name == "rindex")) throw Failure("substring not found");
    return Value(at);
  }
  if (name == "join") {
    const auto b = bind_args(args, {"iterable"}, name);
    if (!b[0]) throw Failure("join() takes exactly one argument (0 given)");
    std::string out;
    size_t i = 0;
    for (auto& item : interp.iterate(*b[0])) {
      if (!item.is_string()) {
        throw Failure("sequence item " + std::to_string(i) + ": expected str instance, " + item.type_name() + " found");
      }
      if (i++) out += s;
      out += (safe && !item.is_safe()) ? text::html_escape(item.as_string()) : item.as_string();
      interp.check_output_size(out.size());
    }
    return result(out);
  }
  if (name == "format") return result(str_format(interp, s, args, safe));
  if (name == "center" || name == "ljust" || name == "rjust") {
    const auto b = bind_args(args, {"width", "fillchar"}, name);
    if (!b[0]) throw Failure(name + "() takes at least 1 argument (0 given)");
    const int64_t width = std::min<int64_t>(to_int_arg(*b[0], name), 1 << 20);
    return result(pad_to(s, width, fill_char_arg(b[1]), name == "center" ? '^' : name == "ljust" ? '<' : '>'));
  }
  if (name == "zfill") {
    const auto b = bind_args(args, {"width"}, name);
    if (!b[0]) throw Failure("zfill() takes exactly one argument (0 given)");
    const int64_t width = std::min<int64_t>(to_int_arg(*b[0], name), 1 << 20);
    const int64_t len = static_cast<int64_t>(text::code_point_count(s));
    if (width <= len) return result(s);
    const size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return result(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') + s.substr(sign));
  }
  if (name == "partition" || name == "rpartition") {
    const auto b = bind_args(args, {"sep"}, name);
    const std::string sep = str_arg(b[0], name.c_str());
    if (sep.empty()) throw Failure("empty separator");
    const size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (at == std::string::npos) {
      return name == "partition" ? Value::tuple({result(s), result(""), result("")})
                                 : Value::tuple({result(""), result(""), result(s)});
    }
    return Value::tuple({result(s.substr(0, at)), result(sep), result(s.substr(at + sep.size()))});
  }
  if (name == "removeprefix" || name == "removesuffix") {
    const auto b = bind_args(args, {"affix"}, name);
    const std::string affix = str_arg(b[0], name.c_str());
    if (name == "removeprefix") {
      return result(s.compare(0, affix.size(), affix) == 0 ? s.substr(affix.size()) : s);
    }
    return result(s.size() >= affix.size() && s.compare(s.size() - affix.size(), affix.size(), affix) == 0
                      ? s.substr(0, s.size() - affix.size())
                      : s);
  }
  // Predicates.
  bind_args(args, {}, name);
  const std::u32string u = to_u32(s);
  const auto all = [&](auto pred) { return !u.empty() && std::all_of(u.begin(), u.end(), pred); };
  if (name == "isalnum") return Value(all(text::is_alnum));
  if (name == "isalpha") return Value(all(text::is_alpha));
  if (name == "isascii") return Value(std::all_of(u.begin(), u.end(), [](char32_t c) { return c < 0x80; }));
  if (name == "isdecimal") return Value(all(text::is_decimal));
  if (name == "isdigit") return Value(all(text::is_digit));
  if (name == "isnumeric") return Value(all(text::is_numeric));
  if (name == "isspace") return Value(all(text::is_space));
  if (name == "islower" || name == "isupper") {
    bool cased = false;
    for (char32_t c : u) {
      if (name == "islower" ? text::is_upper(c) : text::is_lower(c)) return Value(false);
      if (name == "islower" ? text::is_lower(c) : text::is_upper(c)) cased = true;
    }
    return Value(cased);
  }
  if (name == "istitle") {
    bool cased = false, previous_cased = false;
    for (char32_t c : u) {
      if (text::is_upper(c)) {
        if (previous_cased) return Value(false);
        previous_cased = cased = true;
      } else if (text::is_lower(c)) {
        if (!previous_cased) return Value(false);
        previous_cased = cased = true;
      } else {
        previous_cased = false;
      }
    }
    return Value(cased);
  }
  throw Failure("'str' object has no attribute '" + name + "'");
}

Value list_method(Interpreter& interp, const Value& self, const std::string& name, Args& args) {
  std::vector<Value>& items = self.list_data().items;
  if (name == "count") {
    const auto b = bind_args(args, {"value"}, name);
    if (!b[0]) throw Failure("count() takes exactly one argument (0 given)");
    return Value(static_cast<int64_t>(
        std::count_if(items.begin(), items.end(), [&](const Value& v) { return equals(v, *b[0]); })));
  }
  if (name == "index") {
    const auto b = bind_args(args, {"value", "start", "stop"}, name);
    if (!b[0]) throw Failure("index expected at least 1 argument, got 0");
    const auto [begin, end] = span_bounds(items.size(), b[1], b[2]);
    for (size_t i = begin; i < end; ++i) {
      if (equals(items[i], *b[0])) return Value(static_cast<int64_t>(i));
    }
    throw Failure(repr(*b[0]) + " is not in list");
  }
  if (name == "copy") {
    bind_args(args, {}, name);
    return Value::list(items);
  }
  // Mutating methods (only reachable with Options::allow_mutation).
  if (is_mutating_method(self, name)) interp.note_mutated(self);
  if (name == "append") {
    const auto b = bind_args(args, {"object"}, name);
    if (!b[0]) throw Failure("append() takes exactly one argument (0 given)");
    items.push_back(*b[0]);
    return Value::none();
  }
  if (name == "extend") {
    const auto b = bind_args(args, {"iterable"}, name);
    if (!b[0]) throw Failure("extend() takes exactly one argument (0 given)");
    for (auto& v : interp.iterate(*b[0])) items.push_back(std::move(v));
    return Value::none();
  }
  if (name == "insert") {
    const auto b = bind_args(args, {"index", "object"}, name);
    if (!b[0] || !b[1]) throw Failure("insert expected 2 arguments");
    int64_t i = to_int_arg(*b[0], name);
    const int64_t n = static_cast<int64_t>(items.size());
    if (i < 0) i = std::max<int64_t>(0, i + n);
    i = std::min(i, n);
    items.insert(items.begin() + i, *b[1]);
    return Value::none();
  }
  if (name == "pop") {
    const auto b = bind_args(args, {"index"}, name);
    if (items.empty()) throw Failure("pop from empty list");
    int64_t i = b[0] ? to_int_arg(*b[0], name) : -1;
    const int64_t n = static_cast<int64_t>(items.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw Failure("pop index out of range");
    Value v = items[static_cast<size_t>(i)];
    items.erase(items.begin() + i);
    return v;
  }
  if (name == "remove") {
    const auto b = bind_args(args, {"value"}, name);
    if (!b[0]) throw Failure("remove() takes exactly one argument (0 given)");
    for (auto it = items.begin(); it != items.end(); ++it) {
      if (equals(*it, *b[0])) {
        items.erase(it);
        return Value::none();
      }
    }
    throw Failure("list.remove(x): x not in list");
  }
  if (name == "reverse") {
    bind_args(args, {}, name);
    std::reverse(items.begin(), items.end());
    return Value::none();
  }
  if (name == "sort") {
    const auto b = bind_args(args, {"reverse"}, name);
    const bool reverse = b[0] && b[0]->truthy();
    std::stable_sort(items.begin(), items.end(),
                     [&](const Value& x, const Value& y) { return reverse ? less_than(y, x) : less_than(x, y); });
    return Value::none();
  }
  if (name == "clear") {
    bind_args(args, {}, name);
    items.clear();
    return Value::none();
  }
  throw Failure("'list' object has no attribute '" + name + "'");
}

Value dict_method(Interpreter& interp, const Value& self, const std::string& name, Args& args) {
  DictData& d = self.dict_data();
  if (is_mutating_method(self, name)) interp.note_mutated(self);
  if (name == "get") {
    const auto b = bind_args(args, {"key", "default"}, name);
    if (!b[0]) throw Failure("get expected at least 1 argument, got 0");
    if (const Value* v = d.find(*b[0])) return *v;
    return b[1] ? *b[1] : Value::none();
  }
  if (name == "items" || name == "keys" || name == "values") {
    bind_args(args, {}, name);
    std::vector<Value> out;
    for (const auto& [k, v] : d.entries) {
      out.push_back(name == "items" ? Value::tuple({k, v}) : name == "keys" ? k : v);
    }
    return Value::list(std::move(out), name == "items"  ? SeqKind::kDictItems
                                       : name == "keys" ? SeqKind::kDictKeys
                                                        : SeqKind::kDictValues);
  }
  if (name == "copy") {
    bind_args(args, {}, name);
    Value c = Value::dict();
    c.dict_data() = d;
    return c;
  }
  if (name == "pop") {
    const auto b = bind_args(args, {"key", "default"}, name);
    if (!b[0]) throw Failure("pop expected at least 1 argument, got 0");
    if (const Value* v = d.find(*b[0])) {
      Value out = *v;
      d.erase(*b[0]);
      return out;
    }
    if (b[1]) return *b[1];
    throw Failure("KeyError: " + repr(*b[0]));
  }
  if (name == "popitem") {
    bind_args(args, {}, name);
    if (d.entries.empty()) throw Failure("popitem(): dictionary is empty");
    auto last = d.entries.back();
    d.entries.pop_back();
    return Value::tuple({last.first, last.second});
  }
  if (name == "setdefault") {
    const auto b = bind_args(args, {"key", "default"}, name);
    if (!b[0]) throw Failure("setdefault expected at least 1 argument, got 0");
    if (const Value* v = d.find(*b[0])) return *v;
    const Value dflt = b[1] ? *b[1] : Value::none();
    d.set(*b[0], dflt);
    return dflt;
  }
  if (name == "update") {
    if (args.positional.size() > 1) throw Failure("update expected at most 1 argument");
    if (!args.positional.empty()) {
      const Value& other = args.positional[0];
      if (other.is_dict()) {
        for (const auto& [k, v] : other.dict_data().entries) d.set(k, v);
      } else {
        for (auto& pair : interp.iterate(other)) {
          const auto kv = interp.iterate(pair);
          if (kv.size() != 2) throw Failure("dictionary update sequence element has wrong length");
          d.set(kv[0], kv[1]);
        }
      }
    }
    for (const auto& [k, v] : args.keyword) d.set(Value(k), v);
    return Value::none();
  }
  if (name == "clear") {
    bind_args(args, {}, name);
    d.entries.clear();
    return Value::none();
  }
  throw Failure("'dict' object has no attribute '" + name + "'");
}

bool is_string_method(const std::string& name) { return in_table(kStringMethods, name); }
bool is_list_method(const std::string& name, bool tuple) {
  if (tuple) return name == "count" || name == "index";
  return in_table(kListMethods, name);
}
bool is_dict_method(const std::string& name) { return in_table(kDictMethods, name); }

bool is_mutating_method(const Value& self, const std::string& name) {
  if (self.is_list()) {
    return name == "append" || name == "clear" || name == "extend" || name == "insert" || name == "pop" ||
           name == "remove" || name == "reverse" || name == "sort";
  }
  if (self.is_dict()) {
    return name == "clear" || name == "pop" || name == "popitem" || name == "setdefault" || name == "update";
  }
  return false;
}

int lookup_filter(std::string_view name) {
  for (size_t i = 0; i < std::size(kFilters); ++i) {
    if (name == kFilters[i].name) return static_cast<int>(i);
  }
  for (const char* n : kUnsupportedFilters) {
    if (name == n) return kUnsupported;
  }
  return kUnknown;
}

int lookup_test(std::string_view name) {
  for (size_t i = 0; i < std::size(kTests); ++i) {
    if (name == kTests[i].name) return static_cast<int>(i);
  }
  return kUnknown;
}

Value Interpreter::apply_filter(int id, const std::string& name, const Value& input, Args& args) {
  if (id == kUnsupported) throw Failure("filter '" + name + "' is not supported by this renderer");
  if (id < 0 || static_cast<size_t>(id) >= std::size(kFilters)) throw Failure("No filter named '" + name + "' found.");
  return kFilters[id].fn(*this, input, args);
}

bool Interpreter::apply_test(int id, const std::string& name, const Value& input, Args& args) {
  if (id < 0 || static_cast<size_t>(id) >= std::size(kTests)) throw Failure("No test named '" + name + "' found.");
  return kTests[id].fn(*this, input, args);
}

// ------------------------------------------------------------------ globals

namespace {

// jinja2.utils.Cycler
class Cycler : public Object, public std::enable_shared_from_this<Cycler> {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
  std::string type_name() const override { return "Cycler"; }
  std::optional<Value> get_attr(const std::string& name) const override {
    // Bound methods keep the cycler alive.
    std::shared_ptr<Cycler> self = std::const_pointer_cast<Cycler>(shared_from_this());
    if (name == "current") return items_[pos_];
    if (name == "next") {
      return Value(std::make_shared<Function>("next", [self](Args&) {
        Value v = self->items_[self->pos_];
        self->pos_ = (self->pos_ + 1) % self->items_.size();
        return v;
      }));
    }
    if (name == "reset") {
      return Value(std::make_shared<Function>("reset", [self](Args&) {
        self->pos_ = 0;
        return Value::none();
      }));
    }
    return std::nullopt;
  }

 private:
  std::vector<Value> items_;
  size_t pos_ = 0;
};

}  // namespace

Value make_dict(Args& args, const char* what) {
  Value d = Value::dict();
  if (args.positional.size() > 1) throw Failure(std::string(what) + " expected at most 1 argument");
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_dict()) {
      d.dict_data() = src.dict_data();
    } else if (src.is_list()) {
      for (const auto& pair : src.items()) {
        if (!pair.is_list() || pair.items().size() != 2) {
          throw Failure("dictionary update sequence element has wrong length");
        }
        d.dict_data().set(pair.items()[0], pair.items()[1]);
      }
    } else {
      throw Failure("'" + src.type_name() + "' object is not iterable");
    }
  }
  for (auto& [k, v] : args.keyword) d.dict_data().set(Value(k), v);
  return d;
}

void install_globals(Scope& globals) {
  globals.set("range", Value(std::make_shared<Function>("range", [](Args& args) -> Value {
                if (!args.keyword.empty()) throw Failure("range() takes no keyword arguments");
                const size_t n = args.positional.size();
                if (n < 1 || n > 3) throw Failure("range expected 1 to 3 arguments, got " + std::to_string(n));
                int64_t start = 0, stop, step = 1;
                if (n == 1) {
                  stop = to_int_arg(args.positional[0], "range()");
                } else {
                  start = to_int_arg(args.positional[0], "range()");
                  stop = to_int_arg(args.positional[1], "range()");
                  if (n == 3) step = to_int_arg(args.positional[2], "range()");
                }
                if (step == 0) throw Failure("range() arg 3 must not be zero");
                std::vector<Value> items;
                // Sandbox limit: Jinja2 refuses ranges longer than MAX_RANGE.
                constexpr int64_t kMaxRange = 100000;
                const long double count = step > 0 ? std::ceil((static_cast<long double>(stop) - start) / step)
                                                   : std::ceil((static_cast<long double>(start) - stop) / -step);
                if (count > kMaxRange) {
                  throw Failure("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
                }
                for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.emplace_back(i);
                Value r = Value::list(std::move(items), SeqKind::kRange);
                r.list_data().range_start = start;
                r.list_data().range_stop = stop;
                r.list_data().range_step = step;
                return r;
              })));
  globals.set("dict", Value(std::make_shared<Function>(
                          "dict", [](Args& args) -> Value { return make_dict(args, "dict"); }, "type")));
  globals.set("cycler", Value(std::make_shared<Function>(
                            "cycler",
                            [](Args& args) -> Value {
                              if (args.positional.empty()) throw Failure("at least one item has to be provided");
                              return Value(std::make_shared<Cycler>(args.positional));
                            },
                            "type")));
  globals.set("joiner", Value(std::make_shared<Function>(
                            "joiner",
                            [](Args& args) -> Value {
                              const auto b = bind_args(args, {"sep"}, "joiner()");
                              const std::string sep = b[0] ? to_str(*b[0]) : ", ";
                              auto used = std::make_shared<bool>(false);
                              return Value(std::make_shared<Function>("joiner", [sep, used](Args&) -> Value {
                                if (!*used) {
                                  *used = true;
                                  return Value(std::string());
                                }
                                return Value(sep);
                              }));
                            },
                            "type")));
}

}  // namespace glassbox::jinja
