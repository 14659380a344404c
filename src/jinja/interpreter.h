// Tree-walking evaluator of parsed templates. Internal to the jinja library.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/ast.h"
#include "jinja/internal.h"

namespace glassbox::jinja {

// One level of variables. Jinja2 gives every loop iteration, macro call,
// with/filter/set block its own level; if-blocks share their parent's.
struct Scope {
  explicit Scope(std::shared_ptr<Scope> p) : parent(std::move(p)) {}
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;

  Value* find_local(const std::string& name) {
    for (auto& [k, v] : vars) {
      if (k == name) return &v;
    }
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    if (Value* v = find_local(name)) {
      *v = std::move(value);
    } else {
      vars.emplace_back(name, std::move(value));
    }
  }
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { kNormal, kBreak, kContinue };

class Macro;
class LoopObject;

class Interpreter {
 public:
  Interpreter(const Options& options, const Context& context);
  // Breaks the reference cycles a render can create (a scope holding a
  // macro that holds the scope, a namespace holding itself, ...), so that
  // every render frees all it allocated.
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  std::string render(const Body& body);

  // ---- used by builtins and objects
  const Options& options() const { return options_; }
  Value eval(const Expr& e, const ScopePtr& scope);
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  // Python iter(): the items a for loop would see.
  std::vector<Value> iterate(const Value& v);
  // Python len().
  int64_t length(const Value& v);
  Value call_value(const Value& callee, Args& args);
  Value apply_filter(int id, const std::string& name, const Value& input, Args& args);
  bool apply_test(int id, const std::string& name, const Value& input, Args& args);
  Value call_macro(const class Macro& macro, Args& args);
  std::string render_loop_body(const Stmt& loop, const ScopePtr& scope, const Value& iterable, int depth);
  void check_output_size(size_t size) const;
  // Records objects that may take part in reference cycles (see ~Interpreter).
  void track(const std::shared_ptr<Macro>& macro) { macros_.push_back(macro); }
  void track(const std::shared_ptr<LoopObject>& loop) { loops_.push_back(loop); }
  void track(const std::shared_ptr<Namespace>& ns) { namespaces_.push_back(ns); }
  void note_mutated(const Value& container);

 private:
  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out);
  Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out, const Value& iterable, int depth);
  void assign(const Expr& target, const Value& value, const ScopePtr& scope);
  Value lookup(const std::string& name, const ScopePtr& scope);
  Value eval_inner(const Expr& e, const ScopePtr& scope);
  Args eval_args(const CallArgs& call, const ScopePtr& scope);
  Value eval_slice(const Value& obj, const Expr& slice, const ScopePtr& scope);
  Value eval_filter_chain(const Expr& filter, Value input, const ScopePtr& scope);

  const Options& options_;
  const Context& context_;
  ScopePtr globals_;
  // With Options::allow_mutation, templates work on deep copies of the
  // context values, so that a render never changes the caller's data.
  ScopePtr context_copies_;
  int call_depth_ = 0;
  uint64_t steps_ = 0;  // against Options::max_steps
  void count_steps(uint64_t n);
  std::vector<std::shared_ptr<Macro>> macros_;
  std::vector<std::shared_ptr<LoopObject>> loops_;
  std::vector<std::shared_ptr<Namespace>> namespaces_;
  std::vector<Value> mutated_;
};

// A macro or the caller of a call block, bound to the scope it was defined in.
class Macro : public Object {
 public:
  Macro(Interpreter* interp, const Stmt* def, ScopePtr closure, std::string name)
      : interp_(interp), def_(def), closure_(std::move(closure)), name_(std::move(name)) {}
  std::string type_name() const override { return "Macro"; }
  std::string repr() const override { return "<Macro '" + name_ + "'>"; }
  std::optional<Value> get_attr(const std::string& name) const override;
  bool is_callable() const override { return true; }
  Value call(Args& args) override { return interp_->call_macro(*this, args); }

  const Stmt& def() const { return *def_; }
  const ScopePtr& closure() const { return closure_; }
  void release() { closure_.reset(); }
  const std::string& name() const { return name_; }

 private:
  Interpreter* interp_;
  const Stmt* def_;
  ScopePtr closure_;
  std::string name_;
};

// Python-level operators, shared with the builtins.
Value binary_op(BinaryOp op, const Value& a, const Value& b, size_t max_bytes);
bool compare_op(CompareOp op, const Value& a, const Value& b);
bool contains(Interpreter& interp, const Value& container, const Value& item);
// printf-style `format % args` as Python's str.__mod__ does it.
// `escape`: the format string is Markup, so %s/%r arguments are escaped.
std::string percent_format(const std::string& format, const Value& args, bool escape = false);
std::string undefined_attr_message(const Value& obj, const Value& name);

// Defined in builtins.cc.
Value string_method(Interpreter& interp, const Value& self, const std::string& name, Args& args);
Value list_method(Interpreter& interp, const Value& self, const std::string& name, Args& args);
Value dict_method(Interpreter& interp, const Value& self, const std::string& name, Args& args);
bool is_string_method(const std::string& name);
bool is_list_method(const std::string& name, bool tuple);
bool is_dict_method(const std::string& name);
// Methods that change their object; Jinja2's immutable sandbox refuses them.
bool is_mutating_method(const Value& self, const std::string& name);
void install_globals(Scope& globals);
// dict(*args, **kwargs) as the dict() / namespace() globals take it.
Value make_dict(Args& args, const char* what);
Value deep_copy(const Value& v);

}  // namespace glassbox::jinja
