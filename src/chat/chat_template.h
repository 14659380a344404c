// Renders a model's chat template (Jinja) into the prompt text, the way
// Hugging Face transformers' apply_chat_template does it.
//
//   chat::ChatTemplate tmpl(source);      // parse once (throws jinja::TemplateError)
//   chat::ChatRequest req;
//   req.messages = ...; req.bos_token = "<s>"; ...
//   std::string prompt = tmpl.render(req);
//
// A template that rejects the conversation (raise_exception) throws
// jinja::RaisedException whose what() is exactly the template's message.
#pragma once

#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "jinja/jinja.h"

namespace glassbox::chat {

struct ChatRequest {
  // The conversation: a JSON array of {"role", "content", ...} objects,
  // passed to the template verbatim (key order kept).
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  bool add_generation_prompt = true;
  // Extra top-level template variables (enable_thinking, reasoning_effort,
  // ...): a JSON object, or null for none.
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
  std::string bos_token;
  std::string eos_token;
  // Tool definitions; when absent `tools` is undefined in the template.
  std::optional<nlohmann::ordered_json> tools;
  // The clock strftime_now() reads; the current local time when absent.
  std::optional<std::tm> now;
};

// Options for chat templates: Jinja2's behaviour (trim_blocks, lstrip_blocks)
// with list/dict mutation (append, pop, update) allowed on copies of the
// data, as llama.cpp's and Hugging Face's JS renderers allow it.
jinja::Options chat_template_options();

class ChatTemplate {
 public:
  explicit ChatTemplate(std::string_view source, jinja::Options options = chat_template_options());
  std::string render(const ChatRequest& request) const;
  const jinja::Template& compiled() const { return template_; }

 private:
  jinja::Template template_;
};

// Builds the variables a chat template is rendered with (exposed for
// callers that render other templates with the same globals).
jinja::Context make_chat_context(const ChatRequest& request);

// Parse-and-render in one call.
std::string render_chat(const std::string& template_source, const ChatRequest& request);

}  // namespace glassbox::chat
