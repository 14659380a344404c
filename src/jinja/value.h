// The value model of the Jinja renderer. It mirrors the Python objects that
// Jinja2 works with, because chat templates depend on Python semantics:
// str() / repr() of values, equality across int/float/bool, reference
// semantics of lists and dicts, insertion-ordered dicts, and Jinja2's
// Undefined.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/error.h"

namespace glassbox::jinja {

class Value;
class Object;

// An error raised while evaluating, before the interpreter knows where in
// the template it happened; the interpreter turns it into a TemplateError
// carrying the line and column of the expression being evaluated.
class Failure : public glassbox::Error {
 public:
  explicit Failure(const std::string& what) : glassbox::Error(what) {}
};

// What a Python sequence-like value is, so that repr(), len() and indexing
// behave as they do for the Python object Jinja2 would have.
enum class SeqKind : uint8_t {
  kList,
  kTuple,
  kGenerator,   // result of map/select/...: one-shot, no len(), always truthy
  kDictKeys,    // dict.keys() view
  kDictValues,  // dict.values() view
  kDictItems,   // dict.items() view
  kRange,       // range(...)
};

struct ListData {
  std::vector<Value> items;
  SeqKind kind = SeqKind::kList;
  bool consumed = false;                                    // generators iterate once
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // for kRange repr
};

// Insertion-ordered dict with Python key equality (1 == 1.0 == True).
struct DictData {
  std::vector<std::pair<Value, Value>> entries;
  const Value* find(const Value& key) const;
  Value* find(const Value& key);
  void set(Value key, Value value);
  bool erase(const Value& key);
};

// Why a value is undefined: the message Jinja2's UndefinedError would carry
// once the value is used in a way that needs it to exist.
struct UndefinedInfo {
  std::string message;
};

enum class Type : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kObject };

class Value {
 public:
  using ListPtr = std::shared_ptr<ListData>;
  using DictPtr = std::shared_ptr<DictData>;
  using ObjectPtr = std::shared_ptr<Object>;
  using UndefinedPtr = std::shared_ptr<const UndefinedInfo>;

  Value() : data_(UndefinedPtr{}) {}
  Value(std::nullptr_t) : data_(nullptr) {}
  Value(bool b) : data_(b) {}
  Value(int v) : data_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : data_(v) {}
  Value(double v) : data_(v) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(std::string_view s) : data_(std::string(s)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(ObjectPtr o) : data_(std::move(o)) {}

  static Value undefined(std::string message);
  static Value none() { return Value(nullptr); }
  static Value safe_string(std::string s);  // markupsafe.Markup
  static Value list(std::vector<Value> items = {}, SeqKind kind = SeqKind::kList);
  static Value tuple(std::vector<Value> items) { return list(std::move(items), SeqKind::kTuple); }
  static Value dict();
  // Throws Failure for integers beyond 64 bits and nesting deeper than
  // kMaxDepth.
  static Value from_json(const nlohmann::ordered_json& j);
  static constexpr int kMaxDepth = 512;

  Type type() const { return static_cast<Type>(data_.index()); }
  bool is_undefined() const { return type() == Type::kUndefined; }
  bool is_none() const { return type() == Type::kNone; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_int() const { return type() == Type::kInt; }
  bool is_float() const { return type() == Type::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return type() == Type::kString; }
  bool is_list() const { return type() == Type::kList; }
  bool is_dict() const { return type() == Type::kDict; }
  bool is_object() const { return type() == Type::kObject; }
  bool is_safe() const { return safe_; }  // a Markup string

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_float() const { return std::get<double>(data_); }
  // Int, bool or float as a double.
  double to_double() const;
  const std::string& as_string() const { return std::get<std::string>(data_); }
  ListData& list_data() const { return *std::get<ListPtr>(data_); }
  const ListPtr& list_ptr() const { return std::get<ListPtr>(data_); }
  DictData& dict_data() const { return *std::get<DictPtr>(data_); }
  const DictPtr& dict_ptr() const { return std::get<DictPtr>(data_); }
  Object& object() const { return *std::get<ObjectPtr>(data_); }
  const ObjectPtr& object_ptr() const { return std::get<ObjectPtr>(data_); }
  const std::vector<Value>& items() const { return list_data().items; }
  SeqKind seq_kind() const { return list_data().kind; }
  bool is_tuple() const { return is_list() && seq_kind() == SeqKind::kTuple; }
  // The message to report when this undefined value is used.
  std::string undefined_message() const;

  void set_safe(bool safe) { safe_ = safe; }

  // Python's bool(x).
  bool truthy() const;
  // Python type name, as used in error messages ("str", "int", "dict", ...).
  std::string type_name() const;

  nlohmann::ordered_json to_json() const;

 private:
  std::variant<UndefinedPtr, std::nullptr_t, bool, int64_t, double, std::string, ListPtr, DictPtr, ObjectPtr> data_;
  bool safe_ = false;
};

// Positional and keyword arguments of a call.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// Binds call arguments to parameter names the way Python does, failing with
// a message that names `callee` on too many / unknown / duplicate arguments.
std::vector<std::optional<Value>> bind_args(const Args& args, const std::vector<std::string_view>& params,
                                            std::string_view callee);

// Objects with Python behaviour of their own: namespaces, macros, loop
// contexts, bound methods, builtin functions.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;
  // Python repr(); the default refuses (see value.cc).
  virtual std::string repr() const;
  // Attribute lookup; nullopt when the object has no such attribute.
  virtual std::optional<Value> get_attr(const std::string& name) const;
  virtual bool is_callable() const { return false; }
  virtual Value call(Args& args);
  virtual bool is_namespace() const { return false; }
  virtual void set_attr(const std::string& name, Value value);
};

// A native function exposed to templates (range, namespace, raise_exception,
// bound str/list/dict methods, ...).
class Function : public Object {
 public:
  using Fn = std::function<Value(Args&)>;
  Function(std::string name, Fn fn, std::string type = "builtin_function_or_method")
      : name_(std::move(name)), type_(std::move(type)), fn_(std::move(fn)) {}
  std::string type_name() const override { return type_; }
  bool is_callable() const override { return true; }
  Value call(Args& args) override { return fn_(args); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string type_;
  Fn fn_;
};

// jinja2.utils.Namespace: attributes settable with {% set ns.x = ... %}.
class Namespace : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::string repr() const override;
  std::optional<Value> get_attr(const std::string& name) const override;
  bool is_namespace() const override { return true; }
  void set_attr(const std::string& name, Value value) override;
  DictData attrs;
};

// Python semantics helpers.
std::string to_str(const Value& v);           // str(v)
std::string repr(const Value& v);             // repr(v)
bool equals(const Value& a, const Value& b);  // a == b
// a < b (and friends through it); throws Failure for unorderable types.
bool less_than(const Value& a, const Value& b);

struct JsonOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // nullopt: single line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// json.dumps(v, ...) with Python's formatting of floats and separators.
std::string to_json_string(const Value& v, const JsonOptions& options);

}  // namespace glassbox::jinja
