#include "chat/chat_template.h"

#include <utility>

namespace glassbox::chat {

jinja::Context make_chat_context(const ChatRequest& request) {
  jinja::Context ctx;
  if (!request.messages.is_array()) throw glassbox::Error("chat request: messages must be a JSON array");
  ctx.set_json("messages", request.messages);
  ctx.set("add_generation_prompt", jinja::Value(request.add_generation_prompt));
  ctx.set("bos_token", jinja::Value(request.bos_token));
  ctx.set("eos_token", jinja::Value(request.eos_token));
  if (request.tools) ctx.set_json("tools", *request.tools);
  if (!request.kwargs.is_null()) {
    if (!request.kwargs.is_object()) throw glassbox::Error("chat request: kwargs must be a JSON object");
    for (auto it = request.kwargs.begin(); it != request.kwargs.end(); ++it) ctx.set_json(it.key(), it.value());
  }
  std::tm now{};
  if (request.now) {
    now = *request.now;
  } else {
    const std::time_t t = std::time(nullptr);
    localtime_r(&t, &now);
  }
  // transformers' strftime_now: datetime.now().strftime(format).
  ctx.set_function("strftime_now", [now](jinja::Args& args) -> jinja::Value {
    if (args.positional.size() != 1 || !args.keyword.empty() || !args.positional[0].is_string()) {
      throw jinja::Failure("strftime_now() takes exactly one string argument");
    }
    return jinja::Value(jinja::python_strftime(args.positional[0].as_string(), now));
  });
  return ctx;
}

ChatTemplate::ChatTemplate(std::string_view source, jinja::Options options) : template_(source, std::move(options)) {}

std::string ChatTemplate::render(const ChatRequest& request) const {
  return template_.render(make_chat_context(request));
}

jinja::Options chat_template_options() {
  jinja::Options o;
  o.allow_mutation = true;
  return o;
}

std::string render_chat(const std::string& template_source, const ChatRequest& request) {
  return ChatTemplate(template_source).render(request);
}

}  // namespace glassbox::chat
