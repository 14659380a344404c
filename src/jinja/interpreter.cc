#include "jinja/interpreter.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "jinja/text.h"

namespace glassbox::jinja {

namespace {

// Raised by the builtin raise_exception before the interpreter knows the
// position; turned into RaisedException at the call site.
struct RaiseRequest {
  std::string message;
};

std::string object_type_repr(const Value& obj) {
  if (obj.is_none()) return "None";
  if (obj.is_object() && obj.object().is_namespace()) return "jinja2.utils.Namespace object";
  return obj.type_name() + " object";
}

int64_t as_index(const Value& v) { return v.is_bool() ? (v.as_bool() ? 1 : 0) : v.as_int(); }

bool is_int_like(const Value& v) { return v.is_int() || v.is_bool(); }

}  // namespace

// The loop variable of a for loop (jinja2.runtime.LoopContext).
class LoopObject : public Object {
 public:
  LoopObject(Interpreter* interp, const Stmt* stmt, ScopePtr scope, std::shared_ptr<const std::vector<Value>> items,
             int depth)
      : interp_(interp), stmt_(stmt), scope_(std::move(scope)), items_(std::move(items)), depth_(depth) {}

  std::string type_name() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index0_ + 1) + "/" + std::to_string(items_->size()) + ">";
  }
  bool is_callable() const override { return stmt_->recursive; }
  Value call(Args& args) override {
    if (!stmt_->recursive) {
      throw Failure("Tried to call non recursive loop.  Maybe you forgot the 'recursive' modifier.");
    }
    if (args.positional.size() != 1 || !args.keyword.empty()) throw Failure("loop() takes exactly one argument");
    return Value(interp_->render_loop_body(*stmt_, scope_, args.positional[0], depth_ + 1));
  }

  std::optional<Value> get_attr(const std::string& name) const override {
    const int64_t n = static_cast<int64_t>(items_->size());
    if (name == "index") return Value(index0_ + 1);
    if (name == "index0") return Value(index0_);
    if (name == "revindex") return Value(n - index0_);
    if (name == "revindex0") return Value(n - index0_ - 1);
    if (name == "first") return Value(index0_ == 0);
    if (name == "last") return Value(index0_ == n - 1);
    if (name == "length") return Value(n);
    if (name == "depth") return Value(static_cast<int64_t>(depth_));
    if (name == "depth0") return Value(static_cast<int64_t>(depth_ - 1));
    if (name == "previtem") {
      if (index0_ == 0) return Value::undefined("there is no previous item");
      return (*items_)[static_cast<size_t>(index0_ - 1)];
    }
    if (name == "nextitem") {
      if (index0_ + 1 >= n) return Value::undefined("there is no next item");
      return (*items_)[static_cast<size_t>(index0_ + 1)];
    }
    if (name == "cycle") {
      const int64_t index0 = index0_;
      return Value(std::make_shared<Function>("cycle", [index0](Args& args) -> Value {
        if (args.positional.empty()) throw Failure("no items for cycling given");
        return args.positional[static_cast<size_t>(index0 % static_cast<int64_t>(args.positional.size()))];
      }));
    }
    if (name == "changed") {
      auto state = last_changed_;
      return Value(std::make_shared<Function>("changed", [state](Args& args) -> Value {
        Value current = Value::list(args.positional);
        if (state->has_value() && equals(**state, current)) return Value(false);
        *state = current;
        return Value(true);
      }));
    }
    return std::nullopt;
  }

  void set_index(int64_t i) { index0_ = i; }
  void release() { scope_.reset(); }

 private:
  Interpreter* interp_;
  const Stmt* stmt_;
  ScopePtr scope_;
  std::shared_ptr<const std::vector<Value>> items_;
  int depth_;
  int64_t index0_ = 0;
  std::shared_ptr<std::optional<Value>> last_changed_ = std::make_shared<std::optional<Value>>();
};

namespace {

int64_t checked(bool overflow, int64_t v) {
  if (overflow) throw Failure("integer overflow (integers are 64-bit here)");
  return v;
}

double python_float_mod(double a, double b) {
  if (b == 0) throw Failure("float modulo");
  double mod = std::fmod(a, b);
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

double python_float_floordiv(double a, double b) {
  if (b == 0) throw Failure("float floor division by zero");
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) div -= 1.0;
  }
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, a / b);
  }
  return floordiv;
}

std::string type_error(const char* op, const Value& a, const Value& b) {
  return std::string("unsupported operand type(s) for ") + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'";
}

Value concat_strings(const Value& a, const Value& b) {
  // markupsafe.Markup escapes the plain operand when concatenated.
  if (a.is_safe() || b.is_safe()) {
    const std::string left = a.is_safe() ? a.as_string() : text::html_escape(a.as_string());
    const std::string right = b.is_safe() ? b.as_string() : text::html_escape(b.as_string());
    return Value::safe_string(left + right);
  }
  return Value(a.as_string() + b.as_string());
}

Value repeat(const Value& seq, int64_t times, size_t max_bytes) {
  // An empty sequence stays empty however often it repeats (a loop of a
  // billion empty appends would run for seconds).
  const bool empty = seq.is_string() ? seq.as_string().empty() : seq.items().empty();
  if (times <= 0 || empty) {
    if (!seq.is_string()) return Value::list({}, seq.seq_kind());
    Value v{std::string()};
    v.set_safe(seq.is_safe());
    return v;
  }
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(times) > max_bytes / s.size()) throw Failure("string repetition too large");
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    Value v(std::move(out));
    v.set_safe(seq.is_safe());
    return v;
  }
  const auto& items = seq.items();
  if (!items.empty() && static_cast<uint64_t>(times) > (max_bytes / 16) / items.size()) {
    throw Failure("list repetition too large");
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.seq_kind());
}

bool is_plain_sequence(const Value& v) {
  return v.is_list() && (v.seq_kind() == SeqKind::kList || v.seq_kind() == SeqKind::kTuple);
}

}  // namespace

// ------------------------------------------------------------------ operators

std::string undefined_attr_message(const Value& obj, const Value& name) {
  if (name.is_string()) return "'" + object_type_repr(obj) + "' has no attribute '" + name.as_string() + "'";
  return object_type_repr(obj) + " has no element " + repr(name);
}

Value binary_op(BinaryOp op, const Value& a, const Value& b, size_t max_bytes) {
  if (op == BinaryOp::kMod && a.is_string()) {
    // str.__mod__ runs even when the right side is Undefined.
    Value v(percent_format(a.as_string(), b, a.is_safe()));
    if (a.is_safe()) v.set_safe(true);
    return v;
  }
  if (a.is_undefined()) throw Failure(a.undefined_message());
  if (b.is_undefined()) throw Failure(b.undefined_message());
  const bool numbers = a.is_number() && b.is_number();
  const bool floats = numbers && (a.is_float() || b.is_float());
  const auto ia = [&] { return a.is_bool() ? int64_t{a.as_bool()} : a.as_int(); };
  const auto ib = [&] { return b.is_bool() ? int64_t{b.as_bool()} : b.as_int(); };
  switch (op) {
    case BinaryOp::kAdd:
      if (floats) return Value(a.to_double() + b.to_double());
      if (numbers) {
        int64_t r = 0;
        const bool overflow = __builtin_add_overflow(ia(), ib(), &r);
        return Value(checked(overflow, r));
      }
      if (a.is_string() && b.is_string()) {
        if (a.as_string().size() + b.as_string().size() > max_bytes) throw Failure("string too large");
        return concat_strings(a, b);
      }
      if (is_plain_sequence(a) && is_plain_sequence(b) && a.seq_kind() == b.seq_kind()) {
        std::vector<Value> items = a.items();
        items.insert(items.end(), b.items().begin(), b.items().end());
        return Value::list(std::move(items), a.seq_kind());
      }
      if (a.is_string()) throw Failure("can only concatenate str (not \"" + b.type_name() + "\") to str");
      if (a.is_list() && a.seq_kind() == SeqKind::kList) {
        throw Failure("can only concatenate list (not \"" + b.type_name() + "\") to list");
      }
      throw Failure(type_error("+", a, b));
    case BinaryOp::kSub:
      if (floats) return Value(a.to_double() - b.to_double());
      if (numbers) {
        int64_t r = 0;
        const bool overflow = __builtin_sub_overflow(ia(), ib(), &r);
        return Value(checked(overflow, r));
      }
      throw Failure(type_error("-", a, b));
    case BinaryOp::kMul:
      if (floats) return Value(a.to_double() * b.to_double());
      if (numbers) {
        int64_t r = 0;
        const bool overflow = __builtin_mul_overflow(ia(), ib(), &r);
        return Value(checked(overflow, r));
      }
      if ((a.is_string() || is_plain_sequence(a)) && is_int_like(b)) return repeat(a, as_index(b), max_bytes);
      if ((b.is_string() || is_plain_sequence(b)) && is_int_like(a)) return repeat(b, as_index(a), max_bytes);
      throw Failure(type_error("*", a, b));
    case BinaryOp::kDiv:
      if (numbers) {
        if (b.to_double() == 0) throw Failure("division by zero");
        return Value(a.to_double() / b.to_double());
      }
      throw Failure(type_error("/", a, b));
    case BinaryOp::kFloorDiv:
      if (floats) return Value(python_float_floordiv(a.to_double(), b.to_double()));
      if (numbers) {
        const int64_t x = ia(), y = ib();
        if (y == 0) throw Failure("integer division or modulo by zero");
        if (x == std::numeric_limits<int64_t>::min() && y == -1) throw Failure("integer overflow");
        int64_t q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
        return Value(q);
      }
      throw Failure(type_error("//", a, b));
    case BinaryOp::kMod:
      if (a.is_string()) {
        Value v(percent_format(a.as_string(), b, a.is_safe()));
        if (a.is_safe()) v.set_safe(true);
        return v;
      }
      if (floats) return Value(python_float_mod(a.to_double(), b.to_double()));
      if (numbers) {
        const int64_t x = ia(), y = ib();
        if (y == 0) throw Failure("integer modulo by zero");
        if (y == -1) return Value(int64_t{0});
        int64_t m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value(m);
      }
      throw Failure(type_error("%", a, b));
    case BinaryOp::kPow:
      if (numbers && !floats && ib() >= 0) {
        int64_t base = ia(), exp = ib(), result = 1;
        while (exp > 0) {
          if (exp & 1) {
            if (__builtin_mul_overflow(result, base, &result))
              throw Failure("integer overflow (integers are 64-bit here)");
          }
          exp >>= 1;
          if (exp > 0 && __builtin_mul_overflow(base, base, &base)) {
            throw Failure("integer overflow (integers are 64-bit here)");
          }
        }
        return Value(result);
      }
      if (numbers) {
        const double x = a.to_double(), y = b.to_double();
        if (x == 0 && y < 0) throw Failure("0.0 cannot be raised to a negative power");
        if (x < 0 && y != std::floor(y)) throw Failure("complex results are not supported");
        return Value(std::pow(x, y));
      }
      throw Failure(type_error("** or pow()", a, b));
  }
  throw Failure("unknown operator");
}

// a < b, a <= b, a > b or a >= b on two numbers of one type.
template <typename T>
bool ordered(CompareOp op, T x, T y) {
  switch (op) {
    case CompareOp::kLt:
      return x < y;
    case CompareOp::kLe:
      return x <= y;
    case CompareOp::kGt:
      return x > y;
    default:
      return x >= y;
  }
}

bool compare_op(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq:
      return equals(a, b);
    case CompareOp::kNe:
      return !equals(a, b);
    default:
      break;
  }
  if (a.is_undefined()) throw Failure(a.undefined_message());
  if (b.is_undefined()) throw Failure(b.undefined_message());
  if (a.is_number() && b.is_number()) {
    // Compare exactly when both are integers, else as doubles (NaN-aware).
    if (!a.is_float() && !b.is_float()) return ordered(op, as_index(a), as_index(b));
    return ordered(op, a.to_double(), b.to_double());
  }
  const char* symbol = op == CompareOp::kLt ? "<" : op == CompareOp::kLe ? "<=" : op == CompareOp::kGt ? ">" : ">=";
  const bool orderable = (a.is_string() && b.is_string()) ||
                         (is_plain_sequence(a) && is_plain_sequence(b) && a.seq_kind() == b.seq_kind());
  if (!orderable) {
    throw Failure(std::string("'") + symbol + "' not supported between instances of '" + a.type_name() + "' and '" +
                  b.type_name() + "'");
  }
  switch (op) {
    case CompareOp::kLt:
      return less_than(a, b);
    case CompareOp::kLe:
      return !less_than(b, a);
    case CompareOp::kGt:
      return less_than(b, a);
    case CompareOp::kGe:
      return !less_than(a, b);
    default:
      return false;
  }
}

bool contains(Interpreter& interp, const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) {
      if (item.is_undefined()) throw Failure(item.undefined_message());
      throw Failure("'in <string>' requires string as left operand, not " + item.type_name());
    }
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_dict()) {
    if ((item.is_list() && !item.is_tuple()) || item.is_dict()) {
      throw Failure("unhashable type: '" + item.type_name() + "'");
    }
    return container.dict_data().find(item) != nullptr;
  }
  if (container.is_undefined()) return false;
  if (container.is_list()) {
    for (const auto& v : interp.iterate(container)) {
      if (equals(v, item)) return true;
    }
    return false;
  }
  throw Failure("argument of type '" + container.type_name() + "' is not iterable");
}

// ------------------------------------------------------------------ %-format

namespace {

struct FormatSpec {
  bool left = false, plus = false, space = false, alt = false, zero = false;
  int width = -1;
  int precision = -1;
  char conv = 's';
};

std::string pad(std::string body, const FormatSpec& spec, bool numeric) {
  const int len = static_cast<int>(text::code_point_count(body));
  if (spec.width <= len) return body;
  const size_t fill = static_cast<size_t>(spec.width - len);
  if (spec.left) return body + std::string(fill, ' ');
  if (spec.zero && numeric) {
    size_t sign_len = (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) ? 1 : 0;
    if (body.size() >= sign_len + 2 && body[sign_len] == '0' &&
        (body[sign_len + 1] == 'x' || body[sign_len + 1] == 'X' || body[sign_len + 1] == 'o')) {
      sign_len += 2;
    }
    return body.substr(0, sign_len) + std::string(fill, '0') + body.substr(sign_len);
  }
  return std::string(fill, ' ') + body;
}

std::string format_int(int64_t v, const FormatSpec& spec) {
  const bool neg = v < 0;
  const uint64_t mag = neg ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  char buf[80];
  std::string digits;
  switch (spec.conv) {
    case 'o':
      std::snprintf(buf, sizeof buf, "%llo", static_cast<unsigned long long>(mag));
      digits = std::string(spec.alt ? "0o" : "") + buf;
      break;
    case 'x':
      std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(mag));
      digits = std::string(spec.alt ? "0x" : "") + buf;
      break;
    case 'X':
      std::snprintf(buf, sizeof buf, "%llX", static_cast<unsigned long long>(mag));
      digits = std::string(spec.alt ? "0X" : "") + buf;
      break;
    default:
      std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(mag));
      digits = buf;
  }
  if (spec.precision >= 0) {
    // Precision pads the digits (after any 0x prefix) with zeros.
    const size_t prefix = (spec.alt && spec.conv != 'd' && spec.conv != 'i' && spec.conv != 'u') ? 2 : 0;
    std::string body = digits.substr(prefix);
    if (static_cast<int>(body.size()) < spec.precision) {
      body = std::string(static_cast<size_t>(spec.precision) - body.size(), '0') + body;
    }
    digits = digits.substr(0, prefix) + body;
  }
  const std::string sign = neg ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  return pad(sign + digits, spec, true);
}

std::string format_float(double v, const FormatSpec& spec) {
  if (std::isnan(v) || std::isinf(v)) {
    std::string body = std::isnan(v) ? "nan" : "inf";
    if (spec.conv == 'E' || spec.conv == 'F' || spec.conv == 'G') body = text::to_upper(body);
    const std::string sign = (std::signbit(v) && !std::isnan(v)) ? "-" : spec.plus ? "+" : spec.space ? " " : "";
    FormatSpec s = spec;
    s.zero = false;
    return pad(sign + body, s, true);
  }
  std::string fmt = "%";
  if (spec.plus) fmt += '+';
  if (spec.space) fmt += ' ';
  if (spec.alt) fmt += '#';
  fmt += '.';
  fmt += std::to_string(spec.precision < 0 ? 6 : spec.precision);
  fmt += spec.conv;
  char buf[512];
  const int precision = spec.precision < 0 ? 6 : spec.precision;
  if (precision > 300 || std::fabs(v) > 1e300) throw Failure("float format too large");
  std::snprintf(buf, sizeof buf, fmt.c_str(), v);
  return pad(buf, spec, true);
}

}  // namespace

std::string percent_format(const std::string& format, const Value& args, bool escape) {
  std::vector<Value> positional;
  const bool mapping = args.is_dict();
  if (args.is_tuple()) {
    positional = args.items();
  } else {
    positional.push_back(args);
  }
  size_t next_arg = 0;
  bool used_mapping = false;
  const auto take = [&]() -> const Value& {
    if (next_arg >= positional.size()) throw Failure("not enough arguments for format string");
    return positional[next_arg++];
  };
  std::string out;
  size_t i = 0;
  while (i < format.size()) {
    const char c = format[i];
    if (c != '%') {
      out.push_back(c);
      ++i;
      continue;
    }
    ++i;
    if (i >= format.size()) throw Failure("incomplete format");
    const Value* mapped = nullptr;
    if (format[i] == '(') {
      if (!mapping) throw Failure("format requires a mapping");
      int depth = 1;
      size_t start = ++i;
      while (i < format.size() && depth > 0) {
        if (format[i] == '(') ++depth;
        if (format[i] == ')') --depth;
        ++i;
      }
      if (depth != 0) throw Failure("incomplete format key");
      const std::string key = format.substr(start, i - 1 - start);
      mapped = args.dict_data().find(Value(key));
      if (!mapped) throw Failure("KeyError: '" + key + "'");
      used_mapping = true;
    }
    FormatSpec spec;
    for (; i < format.size(); ++i) {
      const char f = format[i];
      if (f == '-')
        spec.left = true;
      else if (f == '+')
        spec.plus = true;
      else if (f == ' ')
        spec.space = true;
      else if (f == '#')
        spec.alt = true;
      else if (f == '0')
        spec.zero = true;
      else
        break;
    }
    const auto read_number = [&]() -> int {
      if (i < format.size() && format[i] == '*') {
        ++i;
        const Value& v = take();
        if (!v.is_int()) throw Failure("* wants int");
        return static_cast<int>(std::min<int64_t>(v.as_int(), 100000));
      }
      int n = 0;
      bool any = false;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        n = std::min(n * 10 + (format[i] - '0'), 100000);
        ++i;
        any = true;
      }
      return any ? n : -1;
    };
    spec.width = read_number();
    if (spec.width < -1) {
      spec.left = true;
      spec.width = -spec.width;
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      spec.precision = read_number();
      if (spec.precision < 0) spec.precision = 0;
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) throw Failure("incomplete format");
    spec.conv = format[i++];
    if (spec.conv == '%') {
      out.push_back('%');
      continue;
    }
    const Value& arg = mapped ? *mapped : take();
    switch (spec.conv) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = spec.conv == 's' ? to_str(arg) : repr(arg);
        if (escape && !(arg.is_string() && arg.is_safe())) s = text::html_escape(s);
        if (spec.precision >= 0) {
          const auto cps = text::to_code_points(s);
          if (cps.size() > static_cast<size_t>(spec.precision)) {
            s = text::from_code_points(std::vector<char32_t>(cps.begin(), cps.begin() + spec.precision));
          }
        }
        FormatSpec s2 = spec;
        s2.zero = false;
        out += pad(s, s2, false);
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'o':
      case 'x':
      case 'X': {
        if (arg.is_undefined()) throw Failure(arg.undefined_message());
        if (!arg.is_number()) {
          throw Failure("%" + std::string(1, spec.conv) + " format: a real number is required, not " + arg.type_name());
        }
        int64_t v;
        if (arg.is_float()) {
          if (spec.conv != 'd' && spec.conv != 'i' && spec.conv != 'u') {
            throw Failure("%" + std::string(1, spec.conv) + " format: an integer is required, not float");
          }
          const double d = std::trunc(arg.as_float());
          if (!(std::fabs(d) < 9.2e18)) throw Failure("cannot convert float to integer");
          v = static_cast<int64_t>(d);
        } else {
          v = as_index(arg);
        }
        out += format_int(v, spec);
        break;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        if (arg.is_undefined()) throw Failure(arg.undefined_message());
        if (!arg.is_number()) throw Failure("must be real number, not " + arg.type_name());
        out += format_float(arg.to_double(), spec);
        break;
      }
      case 'c': {
        std::string ch;
        if (arg.is_string() && text::code_point_count(arg.as_string()) == 1) {
          ch = arg.as_string();
        } else if (arg.is_int() && arg.as_int() >= 0 && arg.as_int() <= 0x10FFFF) {
          text::append_utf8(ch, static_cast<char32_t>(arg.as_int()));
        } else {
          throw Failure("%c requires int or char");
        }
        FormatSpec s2 = spec;
        s2.zero = false;
        out += pad(ch, s2, false);
        break;
      }
      default:
        throw Failure(std::string("unsupported format character '") + spec.conv + "'");
    }
  }
  // Python skips this check when the argument has __getitem__ (dict, list,
  // range), even though it is then used as the single positional argument.
  const bool subscriptable =
      mapping || args.is_undefined() ||
      (args.is_list() && (args.seq_kind() == SeqKind::kList || args.seq_kind() == SeqKind::kRange));
  if (!used_mapping && !subscriptable && next_arg < positional.size()) {
    throw Failure("not all arguments converted during string formatting");
  }
  return out;
}

// ------------------------------------------------------------------ Interpreter

Interpreter::Interpreter(const Options& options, const Context& context)
    : options_(options), context_(context), globals_(std::make_shared<Scope>(nullptr)) {
  install_globals(*globals_);
  globals_->set("namespace", Value(std::make_shared<Function>(
                                 "namespace",
                                 [this](Args& args) -> Value {
                                   auto ns = std::make_shared<Namespace>();
                                   ns->attrs = make_dict(args, "Namespace").dict_data();
                                   track(ns);
                                   return Value(ns);
                                 },
                                 "type")));
  if (options_.allow_mutation) context_copies_ = std::make_shared<Scope>(nullptr);
  globals_->set("raise_exception", Value(std::make_shared<Function>("raise_exception", [](Args& args) -> Value {
                  std::string message;
                  if (!args.positional.empty()) message = to_str(args.positional[0]);
                  throw RaiseRequest{message};
                })));
}

Interpreter::~Interpreter() {
  for (auto& m : macros_) m->release();
  for (auto& l : loops_) l->release();
  for (auto& ns : namespaces_) ns->attrs.entries.clear();
  for (auto& v : mutated_) {
    if (v.is_list()) v.list_data().items.clear();
    if (v.is_dict()) v.dict_data().entries.clear();
  }
}

void Interpreter::note_mutated(const Value& container) { mutated_.push_back(container); }

Value deep_copy(const Value& v) {
  if (v.is_list()) {
    std::vector<Value> items;
    items.reserve(v.items().size());
    for (const auto& item : v.items()) items.push_back(deep_copy(item));
    Value copy = Value::list(std::move(items), v.seq_kind());
    const ListData& src = v.list_data();
    ListData& dst = copy.list_data();
    dst.range_start = src.range_start;
    dst.range_stop = src.range_stop;
    dst.range_step = src.range_step;
    return copy;
  }
  if (v.is_dict()) {
    Value copy = Value::dict();
    for (const auto& [k, val] : v.dict_data().entries) copy.dict_data().entries.emplace_back(k, deep_copy(val));
    return copy;
  }
  return v;
}

void Interpreter::check_output_size(size_t size) const {
  if (size > options_.max_output_bytes) {
    throw Failure("output exceeds the limit of " + std::to_string(options_.max_output_bytes) + " bytes");
  }
}

std::string Interpreter::render(const Body& body) {
  // The template's own top-level variables live in a scope below the context.
  auto root = std::make_shared<Scope>(nullptr);
  std::string out;
  exec_body(body, root, out);
  return out;
}

Value Interpreter::lookup(const std::string& name, const ScopePtr& scope) {
  for (Scope* s = scope.get(); s; s = s->parent.get()) {
    if (Value* v = s->find_local(name)) return *v;
  }
  if (const Value* v = context_.find(name)) {
    if (!context_copies_) return *v;
    if (Value* copy = context_copies_->find_local(name)) return *copy;
    Value copy = deep_copy(*v);
    context_copies_->set(name, copy);
    return copy;
  }
  if (Value* v = globals_->find_local(name)) return *v;
  return Value::undefined("'" + name + "' is undefined");
}

Flow Interpreter::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const auto& s : body) {
    const Flow f = exec(*s, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

namespace {

[[noreturn]] void rethrow_at(const std::string& template_name, SourcePos pos, const Failure& f) {
  throw TemplateError(template_name, pos.line, pos.column, f.what());
}

}  // namespace

Flow Interpreter::exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
  try {
    switch (s.kind) {
      case StmtKind::kData:
        out += s.text;
        check_output_size(out.size());
        return Flow::kNormal;
      case StmtKind::kOutput: {
        const Value v = eval(*s.expr, scope);
        try {
          out += to_str(v);
        } catch (const Failure& f) {
          rethrow_at(options_.name, s.expr->pos, f);
        }
        check_output_size(out.size());
        return Flow::kNormal;
      }
      case StmtKind::kIf:
        for (const auto& branch : s.branches) {
          if (eval(*branch.test, scope).truthy()) return exec_body(branch.body, scope, out);
        }
        return exec_body(s.else_body, scope, out);
      case StmtKind::kFor:
        return exec_for(s, scope, out, eval(*s.expr, scope), 1);
      case StmtKind::kSet: {
        Value v = eval(*s.expr, scope);
        if (s.target->kind == ExprKind::kGetattr) {
          const Value ns = lookup(s.target->children[0]->name, scope);
          if (!ns.is_object() || !ns.object().is_namespace()) {
            throw Failure("cannot assign attribute on non-namespace object");
          }
          ns.object().set_attr(s.target->name, std::move(v));
        } else {
          assign(*s.target, v, scope);
        }
        return Flow::kNormal;
      }
      case StmtKind::kSetBlock: {
        auto inner = std::make_shared<Scope>(scope);
        std::string captured;
        exec_body(s.body, inner, captured);
        Value v(std::move(captured));
        if (s.expr) v = eval_filter_chain(*s.expr, v, scope);
        if (s.target->kind == ExprKind::kGetattr) {
          const Value ns = lookup(s.target->children[0]->name, scope);
          if (!ns.is_object() || !ns.object().is_namespace()) {
            throw Failure("cannot assign attribute on non-namespace object");
          }
          ns.object().set_attr(s.target->name, std::move(v));
        } else {
          assign(*s.target, v, scope);
        }
        return Flow::kNormal;
      }
      case StmtKind::kMacro: {
        auto macro = std::make_shared<Macro>(this, &s, scope, s.name);
        track(macro);
        scope->set(s.name, Value(macro));
        return Flow::kNormal;
      }
      case StmtKind::kCallBlock: {
        const Expr& call = *s.expr;
        Value callee = eval(*call.children[0], scope);
        Args args = eval_args(call.args, scope);
        auto caller = std::make_shared<Macro>(this, &s, scope, "caller");
        track(caller);
        args.keyword.emplace_back("caller", Value(caller));
        Value result;
        try {
          result = call_value(callee, args);
        } catch (const Failure& f) {
          rethrow_at(options_.name, call.pos, f);
        }
        out += to_str(result);
        check_output_size(out.size());
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        auto inner = std::make_shared<Scope>(scope);
        std::string captured;
        exec_body(s.body, inner, captured);
        out += to_str(eval_filter_chain(*s.expr, Value(std::move(captured)), scope));
        check_output_size(out.size());
        return Flow::kNormal;
      }
      case StmtKind::kWith: {
        auto inner = std::make_shared<Scope>(scope);
        std::vector<Value> values;
        for (const auto& v : s.values) values.push_back(eval(*v, scope));
        for (size_t i = 0; i < s.targets.size(); ++i) assign(*s.targets[i], values[i], inner);
        return exec_body(s.body, inner, out);
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
    }
  } catch (const Failure& f) {
    rethrow_at(options_.name, s.pos, f);
  }
  return Flow::kNormal;
}

std::string Interpreter::render_loop_body(const Stmt& loop, const ScopePtr& scope, const Value& iterable, int depth) {
  std::string out;
  exec_for(loop, scope, out, iterable, depth);
  return out;
}

Flow Interpreter::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out, const Value& iterable, int depth) {
  if (++call_depth_ > options_.max_call_depth) {
    --call_depth_;
    throw Failure("maximum recursion depth exceeded");
  }
  struct DepthRestore {
    int& d;
    ~DepthRestore() { --d; }
  } restore{call_depth_};

  std::vector<Value> items = iterate(iterable);
  if (s.loop_filter) {
    std::vector<Value> kept;
    for (auto& item : items) {
      auto probe = std::make_shared<Scope>(scope);
      assign(*s.target, item, probe);
      if (eval(*s.loop_filter, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto inner = std::make_shared<Scope>(scope);
    exec_body(s.else_body, inner, out);
    return Flow::kNormal;
  }
  auto shared_items = std::make_shared<const std::vector<Value>>(std::move(items));
  auto loop = std::make_shared<LoopObject>(this, &s, scope, shared_items, depth);
  track(loop);
  const Value loop_value(loop);
  for (size_t i = 0; i < shared_items->size(); ++i) {
    loop->set_index(static_cast<int64_t>(i));
    auto inner = std::make_shared<Scope>(scope);
    inner->set("loop", loop_value);
    assign(*s.target, (*shared_items)[i], inner);
    const Flow f = exec_body(s.body, inner, out);
    if (f == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::assign(const Expr& target, const Value& value, const ScopePtr& scope) {
  if (target.kind == ExprKind::kName) {
    scope->set(target.name, value);
    return;
  }
  // Tuple unpacking, as Python does it.
  if (value.is_undefined()) throw Failure(value.undefined_message());
  if (!(value.is_list() || value.is_string() || value.is_dict())) {
    throw Failure("cannot unpack non-iterable " + value.type_name() + " object");
  }
  const std::vector<Value> parts = iterate(value);
  const size_t want = target.children.size();
  if (parts.size() < want) {
    throw Failure("not enough values to unpack (expected " + std::to_string(want) + ", got " +
                  std::to_string(parts.size()) + ")");
  }
  if (parts.size() > want) throw Failure("too many values to unpack (expected " + std::to_string(want) + ")");
  for (size_t i = 0; i < want; ++i) assign(*target.children[i], parts[i], scope);
}

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  try {
    return eval_inner(e, scope);
  } catch (const Failure& f) {
    rethrow_at(options_.name, e.pos, f);
  } catch (const RaiseRequest& r) {
    throw RaisedException(r.message, e.pos.line, e.pos.column);
  }
}

Args Interpreter::eval_args(const CallArgs& call, const ScopePtr& scope) {
  Args args;
  for (const auto& p : call.positional) args.positional.push_back(eval(*p, scope));
  if (call.dyn_args) {
    const Value extra = eval(*call.dyn_args, scope);
    for (auto& v : iterate(extra)) args.positional.push_back(std::move(v));
  }
  for (const auto& [name, expr] : call.keyword) args.keyword.emplace_back(name, eval(*expr, scope));
  if (call.dyn_kwargs) {
    const Value extra = eval(*call.dyn_kwargs, scope);
    if (!extra.is_dict()) throw Failure("argument after ** must be a mapping, not " + extra.type_name());
    for (const auto& [k, v] : extra.dict_data().entries) {
      if (!k.is_string()) throw Failure("keywords must be strings");
      for (const auto& [existing, unused] : args.keyword) {
        if (existing == k.as_string()) throw Failure("got multiple values for keyword argument '" + existing + "'");
      }
      args.keyword.emplace_back(k.as_string(), v);
    }
  }
  return args;
}

Value Interpreter::eval_filter_chain(const Expr& filter, Value input, const ScopePtr& scope) {
  // A filter chain parsed without input: the innermost filter gets `input`.
  if (!filter.children.empty() && filter.children[0]) input = eval_filter_chain(*filter.children[0], input, scope);
  Args args = eval_args(filter.args, scope);
  try {
    return apply_filter(filter.builtin_id, filter.name, input, args);
  } catch (const Failure& f) {
    rethrow_at(options_.name, filter.pos, f);
  }
}

Value Interpreter::call_value(const Value& callee, Args& args) {
  if (callee.is_undefined()) throw Failure(callee.undefined_message());
  if (!callee.is_object() || !callee.object().is_callable()) {
    throw Failure("'" + callee.type_name() + "' object is not callable");
  }
  return callee.object().call(args);
}

Value Interpreter::eval_inner(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.value;
    case ExprKind::kName:
      return lookup(e.name, scope);
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.children.size());
      for (const auto& c : e.children) items.push_back(eval(*c, scope));
      return Value::list(std::move(items), e.kind == ExprKind::kTuple ? SeqKind::kTuple : SeqKind::kList);
    }
    case ExprKind::kDict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = eval(*e.children[i], scope);
        if (k.is_list() && k.seq_kind() != SeqKind::kTuple) throw Failure("unhashable type: '" + k.type_name() + "'");
        if (k.is_dict()) throw Failure("unhashable type: 'dict'");
        d.dict_data().set(std::move(k), eval(*e.children[i + 1], scope));
      }
      return d;
    }
    case ExprKind::kGetattr: {
      const Value obj = eval(*e.children[0], scope);
      return getattr(obj, e.name);
    }
    case ExprKind::kGetitem: {
      const Value obj = eval(*e.children[0], scope);
      const Expr& index = *e.children[1];
      if (index.kind == ExprKind::kSlice) return eval_slice(obj, index, scope);
      return getitem(obj, eval(index, scope));
    }
    case ExprKind::kSlice:
      throw Failure("slice outside of a subscript");
    case ExprKind::kCall: {
      const Value callee = eval(*e.children[0], scope);
      Args args = eval_args(e.args, scope);
      return call_value(callee, args);
    }
    case ExprKind::kFilter: {
      const Value input = e.children[0] ? eval(*e.children[0], scope) : Value();
      Args args = eval_args(e.args, scope);
      return apply_filter(e.builtin_id, e.name, input, args);
    }
    case ExprKind::kTest: {
      const Value input = eval(*e.children[0], scope);
      Args args = eval_args(e.args, scope);
      return Value(apply_test(e.builtin_id, e.name, input, args));
    }
    case ExprKind::kNot:
      return Value(!eval(*e.children[0], scope).truthy());
    case ExprKind::kNeg:
    case ExprKind::kPos: {
      const Value v = eval(*e.children[0], scope);
      if (v.is_undefined()) throw Failure(v.undefined_message());
      const bool neg = e.kind == ExprKind::kNeg;
      if (v.is_float()) return Value(neg ? -v.as_float() : v.as_float());
      if (v.is_int() || v.is_bool()) {
        const int64_t i = as_index(v);
        if (neg && i == std::numeric_limits<int64_t>::min()) throw Failure("integer overflow");
        return Value(neg ? -i : i);
      }
      throw Failure(std::string("bad operand type for unary ") + (neg ? "-" : "+") + ": '" + v.type_name() + "'");
    }
    case ExprKind::kBinary:
      return binary_op(e.binary_op, eval(*e.children[0], scope), eval(*e.children[1], scope),
                       options_.max_output_bytes);
    case ExprKind::kAnd: {
      Value left = eval(*e.children[0], scope);
      if (!left.truthy()) return left;
      return eval(*e.children[1], scope);
    }
    case ExprKind::kOr: {
      Value left = eval(*e.children[0], scope);
      if (left.truthy()) return left;
      return eval(*e.children[1], scope);
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const auto& c : e.children) {
        s += to_str(eval(*c, scope));
        check_output_size(s.size());
      }
      return Value(std::move(s));
    }
    case ExprKind::kCompare: {
      Value left = eval(*e.children[0], scope);
      for (size_t i = 0; i < e.compare_ops.size(); ++i) {
        Value right = eval(*e.children[i + 1], scope);
        const CompareOp op = e.compare_ops[i];
        bool result;
        if (op == CompareOp::kIn || op == CompareOp::kNotIn) {
          result = contains(*this, right, left);
          if (op == CompareOp::kNotIn) result = !result;
        } else {
          result = compare_op(op, left, right);
        }
        if (!result) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::kCondExpr: {
      if (eval(*e.children[0], scope).truthy()) return eval(*e.children[1], scope);
      if (e.children[2]) return eval(*e.children[2], scope);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.pos.line) +
                              " evaluated to false and no else section was defined.");
    }
  }
  throw Failure("unknown expression");
}

Value Interpreter::eval_slice(const Value& obj, const Expr& slice, const ScopePtr& scope) {
  std::optional<int64_t> parts[3];
  bool valid = true;
  for (int i = 0; i < 3; ++i) {
    if (!slice.children[static_cast<size_t>(i)]) continue;
    const Value v = eval(*slice.children[static_cast<size_t>(i)], scope);
    if (v.is_none()) continue;
    if (!is_int_like(v)) {
      valid = false;  // Python raises TypeError, which Jinja2 turns into undefined
      continue;
    }
    parts[i] = as_index(v);
  }
  if (obj.is_undefined()) throw Failure(obj.undefined_message());
  const bool sliceable =
      obj.is_string() || (obj.is_list() && (is_plain_sequence(obj) || obj.seq_kind() == SeqKind::kRange));
  if (!sliceable || !valid) return Value::undefined(object_type_repr(obj) + " cannot be sliced");
  const int64_t step = parts[2].value_or(1);
  if (step == 0) throw Failure("slice step cannot be zero");
  std::vector<char32_t> cps;
  int64_t len;
  if (obj.is_string()) {
    cps = text::to_code_points(obj.as_string());
    len = static_cast<int64_t>(cps.size());
  } else {
    len = static_cast<int64_t>(obj.items().size());
  }
  const int64_t lower = step < 0 ? -1 : 0;
  const int64_t upper = step < 0 ? len - 1 : len;
  const auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += len;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  const int64_t start = clamp(parts[0], step < 0 ? upper : lower);
  const int64_t stop = clamp(parts[1], step < 0 ? lower : upper);
  std::vector<int64_t> indices;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) indices.push_back(i);
  } else {
    for (int64_t i = start; i > stop; i += step) indices.push_back(i);
  }
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : indices) text::append_utf8(out, cps[static_cast<size_t>(i)]);
    Value v(std::move(out));
    v.set_safe(obj.is_safe());
    return v;
  }
  std::vector<Value> out;
  for (int64_t i : indices) out.push_back(obj.items()[static_cast<size_t>(i)]);
  if (obj.seq_kind() == SeqKind::kRange) {
    // A slice of a range is a range (and prints as one).
    const ListData& r = obj.list_data();
    Value sliced = Value::list(std::move(out), SeqKind::kRange);
    sliced.list_data().range_start = r.range_start + start * r.range_step;
    sliced.list_data().range_stop = r.range_start + stop * r.range_step;
    sliced.list_data().range_step = r.range_step * step;
    return sliced;
  }
  return Value::list(std::move(out), obj.seq_kind() == SeqKind::kTuple ? SeqKind::kTuple : SeqKind::kList);
}

Value Interpreter::getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) throw Failure(obj.undefined_message());
  const auto unsafe = [&]() {
    return Value::undefined("access to attribute '" + name + "' of '" + obj.type_name() + "' object is unsafe.");
  };
  const auto bound = [&](auto method) {
    Interpreter* self = this;
    Value receiver = obj;
    return Value(std::make_shared<Function>(
        name, [self, receiver, name, method](Args& args) { return method(*self, receiver, name, args); },
        "builtin_function_or_method"));
  };
  if (!name.empty() && name[0] == '_') {
    if (obj.is_dict()) {
      if (const Value* v = obj.dict_data().find(Value(name))) return *v;
    }
    return Value::undefined(undefined_attr_message(obj, Value(name)));
  }
  switch (obj.type()) {
    case Type::kDict:
      if (is_dict_method(name)) {
        if (!options_.allow_mutation && is_mutating_method(obj, name)) return unsafe();
        return bound(dict_method);
      }
      if (const Value* v = obj.dict_data().find(Value(name))) return *v;
      break;
    case Type::kString:
      if (is_string_method(name)) return bound(string_method);
      break;
    case Type::kList:
      if ((is_plain_sequence(obj) || obj.seq_kind() == SeqKind::kRange) &&
          is_list_method(name, obj.seq_kind() != SeqKind::kList)) {
        if (!options_.allow_mutation && is_mutating_method(obj, name)) return unsafe();
        return bound(list_method);
      }
      break;
    case Type::kObject:
      if (auto v = obj.object().get_attr(name)) return *v;
      break;
    default:
      break;
  }
  return Value::undefined(undefined_attr_message(obj, Value(name)));
}

Value Interpreter::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw Failure(obj.undefined_message());
  switch (obj.type()) {
    case Type::kDict:
      if (const Value* v = obj.dict_data().find(key)) return *v;
      break;
    case Type::kList:
      if (is_int_like(key) && (is_plain_sequence(obj) || obj.seq_kind() == SeqKind::kRange)) {
        const auto& items = obj.items();
        int64_t i = as_index(key);
        if (i < 0) i += static_cast<int64_t>(items.size());
        if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[static_cast<size_t>(i)];
      }
      break;
    case Type::kString:
      if (is_int_like(key)) {
        const auto cps = text::to_code_points(obj.as_string());
        int64_t i = as_index(key);
        if (i < 0) i += static_cast<int64_t>(cps.size());
        if (i >= 0 && i < static_cast<int64_t>(cps.size())) {
          std::string out;
          text::append_utf8(out, cps[static_cast<size_t>(i)]);
          Value v(std::move(out));
          v.set_safe(obj.is_safe());
          return v;
        }
      }
      break;
    default:
      break;
  }
  // Jinja2 falls back to attribute lookup for string keys.
  if (key.is_string()) {
    Value attr = getattr(obj, key.as_string());
    if (!attr.is_undefined()) return attr;
  }
  return Value::undefined(undefined_attr_message(obj, key));
}

void Interpreter::count_steps(uint64_t n) {
  steps_ += n;
  if (steps_ > options_.max_steps) {
    throw Failure("template exceeded its evaluation budget of " + std::to_string(options_.max_steps) +
                  " steps (items iterated and macro calls): loops nested over large ranges?");
  }
}

std::vector<Value> Interpreter::iterate(const Value& v) {
  switch (v.type()) {
    case Type::kUndefined:
      return {};
    case Type::kList: {
      ListData& data = v.list_data();
      if (data.kind == SeqKind::kGenerator) {
        if (data.consumed) return {};
        data.consumed = true;
      }
      count_steps(data.items.size());
      return data.items;
    }
    case Type::kDict: {
      count_steps(v.dict_data().entries.size());
      std::vector<Value> keys;
      keys.reserve(v.dict_data().entries.size());
      for (const auto& [k, unused] : v.dict_data().entries) keys.push_back(k);
      return keys;
    }
    case Type::kString: {
      count_steps(v.as_string().size());
      std::vector<Value> chars;
      const std::string& s = v.as_string();
      size_t pos = 0;
      while (pos < s.size()) {
        const size_t start = pos;
        text::next_code_point(s, pos);
        chars.emplace_back(s.substr(start, pos - start));
      }
      return chars;
    }
    default:
      throw Failure("'" + v.type_name() + "' object is not iterable");
  }
}

int64_t Interpreter::length(const Value& v) {
  switch (v.type()) {
    case Type::kUndefined:
      return 0;
    case Type::kString:
      return static_cast<int64_t>(text::code_point_count(v.as_string()));
    case Type::kList:
      if (v.seq_kind() == SeqKind::kGenerator) throw Failure("object of type 'generator' has no len()");
      return static_cast<int64_t>(v.items().size());
    case Type::kDict:
      return static_cast<int64_t>(v.dict_data().entries.size());
    default:
      throw Failure("object of type '" + v.type_name() + "' has no len()");
  }
}

std::optional<Value> Macro::get_attr(const std::string& name) const {
  if (name == "name") return Value(name_);
  if (name == "arguments") {
    std::vector<Value> names;
    for (const auto& p : def_->params) names.emplace_back(p.name);
    return Value::tuple(std::move(names));
  }
  if (name == "catch_kwargs") return Value(def_->uses_kwargs);
  if (name == "catch_varargs") return Value(def_->uses_varargs);
  if (name == "caller") return Value(def_->uses_caller);
  return std::nullopt;
}

Value Interpreter::call_macro(const Macro& macro, Args& args) {
  const Stmt& def = macro.def();
  count_steps(1);
  if (++call_depth_ > options_.max_call_depth) {
    --call_depth_;
    throw Failure("maximum recursion depth exceeded");
  }
  struct DepthRestore {
    int& d;
    ~DepthRestore() { --d; }
  } restore{call_depth_};

  const std::string& name = macro.name();
  auto scope = std::make_shared<Scope>(macro.closure());
  const size_t nparams = def.params.size();
  std::vector<std::optional<Value>> bound(nparams);
  for (size_t i = 0; i < std::min(nparams, args.positional.size()); ++i) bound[i] = args.positional[i];
  std::vector<std::pair<std::string, Value>> extra_kwargs;
  for (auto& [k, v] : args.keyword) {
    bool matched = false;
    for (size_t i = args.positional.size(); i < nparams; ++i) {
      if (def.params[i].name == k) {
        bound[i] = v;
        matched = true;
        break;
      }
    }
    if (!matched) extra_kwargs.emplace_back(k, v);
  }
  // caller: the implicit argument of macros used with {% call %}.
  Value caller = Value::undefined("No caller defined");
  bool has_caller = false;
  for (auto it = extra_kwargs.begin(); it != extra_kwargs.end(); ++it) {
    if (it->first == "caller" && def.uses_caller) {
      caller = it->second;
      has_caller = true;
      extra_kwargs.erase(it);
      break;
    }
  }
  if (!def.uses_kwargs && !extra_kwargs.empty()) {
    throw Failure("macro '" + name + "' takes no keyword argument '" + extra_kwargs.front().first + "'");
  }
  if (!def.uses_varargs && args.positional.size() > nparams) {
    throw Failure("macro '" + name + "' takes not more than " + std::to_string(nparams) + " argument(s)");
  }
  for (size_t i = 0; i < nparams; ++i) {
    const MacroParam& p = def.params[i];
    if (bound[i]) {
      scope->set(p.name, *bound[i]);
    } else if (p.default_value) {
      scope->set(p.name, eval(*p.default_value, scope));
    } else {
      scope->set(p.name, Value::undefined("parameter '" + p.name + "' was not provided"));
    }
  }
  if (def.uses_caller) scope->set("caller", has_caller ? caller : Value::undefined("No caller defined"));
  if (def.uses_kwargs) {
    Value kw = Value::dict();
    for (auto& [k, v] : extra_kwargs) kw.dict_data().set(Value(k), v);
    scope->set("kwargs", kw);
  }
  if (def.uses_varargs) {
    std::vector<Value> rest;
    for (size_t i = nparams; i < args.positional.size(); ++i) rest.push_back(args.positional[i]);
    scope->set("varargs", Value::tuple(std::move(rest)));
  }
  std::string out;
  exec_body(def.body, scope, out);
  return Value(std::move(out));
}

// ------------------------------------------------------------------ Template

struct Template::Impl {
  Options options;
  Body body;
};

Template::Template(std::string_view source, Options options) {
  auto impl = std::make_shared<Impl>();
  impl->options = std::move(options);
  impl->body = parse_template(source, impl->options);
  impl_ = std::move(impl);
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

const Options& Template::options() const { return impl_->options; }

std::string Template::render(const Context& context) const {
  Interpreter interp(impl_->options, context);
  try {
    return interp.render(impl_->body);
  } catch (const Failure& f) {
    // Failures are located where they happen; this is a last resort.
    throw TemplateError(impl_->options.name, 0, 0, f.what());
  } catch (const RaiseRequest& r) {
    throw RaisedException(r.message, 0, 0);
  }
}

}  // namespace glassbox::jinja
