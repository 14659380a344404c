// A Jinja template renderer that reproduces Python Jinja2 (3.1) output byte
// for byte for the chat templates models ship, set up the way Hugging Face
// transformers sets Jinja2 up for apply_chat_template:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[loopcontrols]) with transformers' tojson override.
//
// Parse once, render many:
//   jinja::Template tmpl(source);              // throws TemplateError
//   jinja::Context ctx;
//   ctx.set_json("messages", messages_json);
//   std::string out = tmpl.render(ctx);        // throws TemplateError / RaisedException
//
// Anything the renderer does not support fails with a TemplateError naming
// the template position ("template:12:5: unknown filter 'foo'"), never with
// silently different output.
#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/error.h"
#include "jinja/value.h"

namespace glassbox::jinja {

// A syntax error or an evaluation error. what() is
// "<template name>:<line>:<column>: <message>".
class TemplateError : public glassbox::Error {
 public:
  TemplateError(const std::string& template_name, int line, int column, const std::string& message);
  int line() const { return line_; }
  int column() const { return column_; }
  // The message without the position prefix.
  const std::string& message() const { return message_; }

 private:
  int line_;
  int column_;
  std::string message_;
};

// The template called raise_exception(msg). what() is exactly msg, so that
// callers can show the template's own message; line()/column() tell where.
class RaisedException : public glassbox::Error {
 public:
  RaisedException(const std::string& message, int line, int column)
      : glassbox::Error(message), line_(line), column_(column) {}
  int line() const { return line_; }
  int column() const { return column_; }

 private:
  int line_;
  int column_;
};

struct Options {
  std::string name = "template";  // used in error messages
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
  // Jinja2's ImmutableSandboxedEnvironment refuses list.append/pop/...,
  // dict.update/pop/...; set this to allow them (as minja and
  // @huggingface/jinja do).
  bool allow_mutation = false;
  // Safety limits for untrusted templates.
  size_t max_output_bytes = size_t{256} << 20;
  int max_call_depth = 256;
  // Evaluation budget of one render: items iterated (by loops, filters and
  // unpacking) plus macro calls. Loops nested over large ranges would
  // otherwise run for hours without output; real chat templates over long
  // conversations stay far below it (10 million is about a second).
  uint64_t max_steps = 10'000'000;
};

// The variables a template is rendered with. Names not set here are
// Jinja2-undefined. Builtin globals (range, namespace, dict, cycler,
// joiner, raise_exception) are always present unless overridden.
class Context {
 public:
  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }
  void set_json(const std::string& name, const nlohmann::ordered_json& value) { vars_[name] = Value::from_json(value); }
  void set_function(const std::string& name, Function::Fn fn) {
    vars_[name] = Value(std::make_shared<Function>(name, std::move(fn)));
  }
  const Value* find(const std::string& name) const {
    auto it = vars_.find(name);
    return it == vars_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, Value, std::less<>> vars_;
};

class Template {
 public:
  // Parses the template; throws TemplateError on a syntax error or on a
  // filter/test name that is unknown or unsupported.
  explicit Template(std::string_view source, Options options = {});
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with the given variables. Safe to call from several threads at
  // once: rendering does not modify the template.
  std::string render(const Context& context) const;

  const Options& options() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

// datetime.strftime(format) in the C locale, as Python does it on Linux
// (glibc directives, including "%-d"). `naive` time has empty %z/%Z.
std::string python_strftime(std::string_view format, const std::tm& time);

}  // namespace glassbox::jinja
