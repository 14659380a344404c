#include "jinja/value.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "jinja/text.h"

namespace glassbox::jinja {

// ---------------------------------------------------------------- DictData

const Value* DictData::find(const Value& key) const {
  for (const auto& [k, v] : entries) {
    if (equals(k, key)) return &v;
  }
  return nullptr;
}

Value* DictData::find(const Value& key) {
  for (auto& [k, v] : entries) {
    if (equals(k, key)) return &v;
  }
  return nullptr;
}

void DictData::set(Value key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);  // Python keeps the first key and its position
    return;
  }
  entries.emplace_back(std::move(key), std::move(value));
}

bool DictData::erase(const Value& key) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (equals(it->first, key)) {
      entries.erase(it);
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------- Value

Value Value::undefined(std::string message) {
  Value v;
  v.data_ = std::make_shared<const UndefinedInfo>(UndefinedInfo{std::move(message)});
  return v;
}

Value Value::safe_string(std::string s) {
  Value v(std::move(s));
  v.safe_ = true;
  return v;
}

Value Value::list(std::vector<Value> items, SeqKind kind) {
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  data->kind = kind;
  Value v;
  v.data_ = std::move(data);
  return v;
}

Value Value::dict() {
  Value v;
  v.data_ = std::make_shared<DictData>();
  return v;
}

namespace {

// Nesting limit for recursive walks (repr, ==, JSON), so that deep or cyclic
// data fails with an error instead of exhausting the stack.
struct DepthGuard {
  explicit DepthGuard(const char* what) {
    if (++depth > Value::kMaxDepth) {
      --depth;
      throw Failure(std::string(what) + ": value nested too deeply");
    }
  }
  ~DepthGuard() { --depth; }
  static thread_local int depth;
};
thread_local int DepthGuard::depth = 0;

}  // namespace

Value Value::from_json(const nlohmann::ordered_json& j) {
  DepthGuard guard("JSON input");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Value(static_cast<int64_t>(u));
      throw Failure("integer " + std::to_string(u) + " is too large (integers are 64-bit here)");
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json(item));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = Value::dict();
      auto& entries = d.dict_data().entries;
      entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) entries.emplace_back(Value(it.key()), from_json(it.value()));
      return d;
    }
    case nlohmann::ordered_json::value_t::binary:
      throw Failure("binary JSON values are not supported");
    case nlohmann::ordered_json::value_t::discarded:
      return Value();
  }
  return Value();
}

nlohmann::ordered_json Value::to_json() const {
  DepthGuard guard("to_json");
  switch (type()) {
    case Type::kUndefined:
    case Type::kNone:
      return nullptr;
    case Type::kBool:
      return as_bool();
    case Type::kInt:
      return as_int();
    case Type::kFloat:
      return as_float();
    case Type::kString:
      return as_string();
    case Type::kList: {
      auto arr = nlohmann::ordered_json::array();
      for (const auto& item : items()) arr.push_back(item.to_json());
      return arr;
    }
    case Type::kDict: {
      auto obj = nlohmann::ordered_json::object();
      for (const auto& [k, v] : dict_data().entries) obj[to_str(k)] = v.to_json();
      return obj;
    }
    case Type::kObject:
      return repr(*this);
  }
  return nullptr;
}

double Value::to_double() const {
  if (is_int()) return static_cast<double>(as_int());
  if (is_bool()) return as_bool() ? 1.0 : 0.0;
  return as_float();
}

std::string Value::undefined_message() const {
  const auto& info = std::get<UndefinedPtr>(data_);
  if (info && !info->message.empty()) return info->message;
  return "value is undefined";
}

bool Value::truthy() const {
  switch (type()) {
    case Type::kUndefined:
    case Type::kNone:
      return false;
    case Type::kBool:
      return as_bool();
    case Type::kInt:
      return as_int() != 0;
    case Type::kFloat:
      return as_float() != 0.0;
    case Type::kString:
      return !as_string().empty();
    case Type::kList:
      // A Python generator object is always true, whatever it would yield.
      if (seq_kind() == SeqKind::kGenerator) return true;
      return !items().empty();
    case Type::kDict:
      return !dict_data().entries.empty();
    case Type::kObject:
      return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (type()) {
    case Type::kUndefined:
      return "Undefined";
    case Type::kNone:
      return "NoneType";
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "int";
    case Type::kFloat:
      return "float";
    case Type::kString:
      return is_safe() ? "Markup" : "str";
    case Type::kList:
      switch (seq_kind()) {
        case SeqKind::kList:
          return "list";
        case SeqKind::kTuple:
          return "tuple";
        case SeqKind::kGenerator:
          return "generator";
        case SeqKind::kDictKeys:
          return "dict_keys";
        case SeqKind::kDictValues:
          return "dict_values";
        case SeqKind::kDictItems:
          return "dict_items";
        case SeqKind::kRange:
          return "range";
      }
      return "list";
    case Type::kDict:
      return "dict";
    case Type::kObject:
      return object().type_name();
  }
  return "object";
}

// ---------------------------------------------------------------- Args

std::vector<std::optional<Value>> bind_args(const Args& args, const std::vector<std::string_view>& params,
                                            std::string_view callee) {
  std::vector<std::optional<Value>> bound(params.size());
  if (args.positional.size() > params.size()) {
    throw Failure(std::string(callee) + " takes at most " + std::to_string(params.size()) + " argument(s) (" +
                  std::to_string(args.positional.size()) + " given)");
  }
  for (size_t i = 0; i < args.positional.size(); ++i) bound[i] = args.positional[i];
  for (const auto& [name, value] : args.keyword) {
    const auto it = std::find(params.begin(), params.end(), name);
    if (it == params.end()) {
      throw Failure(std::string(callee) + " got an unexpected keyword argument '" + name + "'");
    }
    auto& slot = bound[static_cast<size_t>(it - params.begin())];
    if (slot) throw Failure(std::string(callee) + " got multiple values for argument '" + name + "'");
    slot = value;
  }
  return bound;
}

// ---------------------------------------------------------------- Objects

std::string Object::repr() const {
  // Python prints these objects with their memory address, which cannot be
  // reproduced; refuse instead of printing something else.
  std::string message = "cannot convert a ";
  message += type_name();
  message += " object to a string (Jinja2 would print its memory address)";
  throw Failure(message);
}

std::optional<Value> Object::get_attr(const std::string&) const { return std::nullopt; }

Value Object::call(Args&) { throw Failure("'" + type_name() + "' object is not callable"); }

void Object::set_attr(const std::string&, Value) { throw Failure("cannot assign attribute on non-namespace object"); }

std::string Namespace::repr() const {
  std::string out = "<Namespace {";
  bool first = true;
  for (const auto& [k, v] : attrs.entries) {
    if (!first) out += ", ";
    first = false;
    out += jinja::repr(k) + ": " + jinja::repr(v);
  }
  return out + "}>";
}

std::optional<Value> Namespace::get_attr(const std::string& name) const {
  if (const Value* v = attrs.find(Value(name))) return *v;
  return std::nullopt;
}

void Namespace::set_attr(const std::string& name, Value value) { attrs.set(Value(name), std::move(value)); }

// ---------------------------------------------------------------- str / repr

namespace {

std::string repr_items(const std::vector<Value>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += repr(items[i]);
  }
  return out;
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.type()) {
    case Type::kUndefined:
      return "";
    case Type::kString:
      return v.as_string();
    default:
      return repr(v);
  }
}

std::string repr(const Value& v) {
  DepthGuard guard("repr");
  switch (v.type()) {
    case Type::kUndefined:
      return "Undefined";
    case Type::kNone:
      return "None";
    case Type::kBool:
      return v.as_bool() ? "True" : "False";
    case Type::kInt:
      return std::to_string(v.as_int());
    case Type::kFloat:
      return text::repr_float(v.as_float());
    case Type::kString:
      if (v.is_safe()) return "Markup(" + text::repr_string(v.as_string()) + ")";
      return text::repr_string(v.as_string());
    case Type::kList: {
      const auto& items = v.items();
      switch (v.seq_kind()) {
        case SeqKind::kList:
          return "[" + repr_items(items) + "]";
        case SeqKind::kTuple:
          if (items.size() == 1) return "(" + repr(items[0]) + ",)";
          return "(" + repr_items(items) + ")";
        case SeqKind::kGenerator:
          // Jinja2 would print "<generator object ... at 0x...>": an address
          // cannot be reproduced, so refuse rather than print something else.
          throw Failure("cannot convert a generator to a string (use |list first)");
        case SeqKind::kDictKeys:
          return "dict_keys([" + repr_items(items) + "])";
        case SeqKind::kDictValues:
          return "dict_values([" + repr_items(items) + "])";
        case SeqKind::kDictItems:
          return "dict_items([" + repr_items(items) + "])";
        case SeqKind::kRange: {
          const auto& d = v.list_data();
          std::string out = "range(" + std::to_string(d.range_start) + ", " + std::to_string(d.range_stop);
          if (d.range_step != 1) out += ", " + std::to_string(d.range_step);
          return out + ")";
        }
      }
      return "[]";
    }
    case Type::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, val] : v.dict_data().entries) {
        if (!first) out += ", ";
        first = false;
        out += repr(k) + ": " + repr(val);
      }
      return out + "}";
    }
    case Type::kObject:
      return v.object().repr();
  }
  return "";
}

// ---------------------------------------------------------------- comparison

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() == b.to_double();
    const int64_t x = a.is_bool() ? (a.as_bool() ? 1 : 0) : a.as_int();
    const int64_t y = b.is_bool() ? (b.as_bool() ? 1 : 0) : b.as_int();
    return x == y;
  }
  if (a.type() != b.type()) return false;
  DepthGuard guard("comparison");
  switch (a.type()) {
    case Type::kUndefined:
    case Type::kNone:
      return true;
    case Type::kString:
      return a.as_string() == b.as_string();
    case Type::kList: {
      if (a.list_ptr() == b.list_ptr()) return true;
      const SeqKind ka = a.seq_kind();
      const SeqKind kb = b.seq_kind();
      const auto comparable = [](SeqKind k) {
        return k == SeqKind::kList || k == SeqKind::kTuple || k == SeqKind::kRange;
      };
      if (ka != kb || !comparable(ka)) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Type::kDict: {
      if (a.dict_ptr() == b.dict_ptr()) return true;
      const auto& x = a.dict_data();
      const auto& y = b.dict_data();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* other = y.find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    case Type::kObject:
      return a.object_ptr() == b.object_ptr();
    default:
      return false;
  }
}

bool less_than(const Value& a, const Value& b) {
  DepthGuard guard("comparison");
  if (a.is_undefined()) throw Failure(a.undefined_message());
  if (b.is_undefined()) throw Failure(b.undefined_message());
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_double() < b.to_double();
    const int64_t x = a.is_bool() ? (a.as_bool() ? 1 : 0) : a.as_int();
    const int64_t y = b.is_bool() ? (b.as_bool() ? 1 : 0) : b.as_int();
    return x < y;
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 keeps code point order
  if (a.is_list() && b.is_list() && a.seq_kind() == b.seq_kind() &&
      (a.seq_kind() == SeqKind::kList || a.seq_kind() == SeqKind::kTuple)) {
    const auto& x = a.items();
    const auto& y = b.items();
    const size_t n = std::min(x.size(), y.size());
    for (size_t i = 0; i < n; ++i) {
      if (!equals(x[i], y[i])) return less_than(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw Failure("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

// ---------------------------------------------------------------- JSON

namespace {

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return text::repr_float(d);
}

std::string json_key(const Value& k) {
  switch (k.type()) {
    case Type::kString:
      return k.as_string();
    case Type::kInt:
      return std::to_string(k.as_int());
    case Type::kFloat:
      return json_float(k.as_float());
    case Type::kBool:
      return k.as_bool() ? "true" : "false";
    case Type::kNone:
      return "null";
    default:
      throw Failure("keys must be str, int, float, bool or None, not " + k.type_name());
  }
}

void dump_json(std::string& out, const Value& v, const JsonOptions& opt, int level, int depth) {
  if (depth > 512) throw Failure("tojson: value nested too deeply");
  const auto newline = [&](int lvl) {
    out.push_back('\n');
    for (int i = 0; i < lvl; ++i) out += *opt.indent;
  };
  switch (v.type()) {
    case Type::kNone:
      out += "null";
      return;
    case Type::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Type::kInt:
      out += std::to_string(v.as_int());
      return;
    case Type::kFloat:
      out += json_float(v.as_float());
      return;
    case Type::kString:
      text::append_json_string(out, v.as_string(), opt.ensure_ascii);
      return;
    case Type::kList: {
      if (v.seq_kind() != SeqKind::kList && v.seq_kind() != SeqKind::kTuple) break;
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += opt.item_separator;
        if (opt.indent) newline(level + 1);
        dump_json(out, items[i], opt, level + 1, depth + 1);
      }
      if (opt.indent) newline(level);
      out.push_back(']');
      return;
    }
    case Type::kDict: {
      std::vector<const std::pair<Value, Value>*> entries;
      for (const auto& e : v.dict_data().entries) entries.push_back(&e);
      if (entries.empty()) {
        out += "{}";
        return;
      }
      if (opt.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* x, const auto* y) { return less_than(x->first, y->first); });
      }
      out.push_back('{');
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += opt.item_separator;
        if (opt.indent) newline(level + 1);
        text::append_json_string(out, json_key(entries[i]->first), opt.ensure_ascii);
        out += opt.key_separator;
        dump_json(out, entries[i]->second, opt, level + 1, depth + 1);
      }
      if (opt.indent) newline(level);
      out.push_back('}');
      return;
    }
    default:
      break;
  }
  throw Failure("Object of type " + v.type_name() + " is not JSON serializable");
}

}  // namespace

std::string to_json_string(const Value& v, const JsonOptions& options) {
  std::string out;
  dump_json(out, v, options, 0, 0);
  return out;
}

}  // namespace glassbox::jinja
