// libFuzzer target for the Jinja renderer: the input is a template source,
// rendered with a small chat context (messages with a tool call, tools,
// bos/eos tokens). Chat templates come from model files and requests, so any
// input must either render or raise glassbox::Error within the limits below;
// crashes, sanitizer reports, leaks, other exception types and timeouts are
// findings. Built only with -DGLASSBOX_FUZZ=ON (clang); see
// src/gguf/run_fuzz.sh, which runs it after the GGUF reader's target.
#include <cstddef>
#include <cstdint>
#include <string>

#include "jinja/jinja.h"

namespace {

const nlohmann::ordered_json& messages() {
  static const auto m = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "", "reasoning_content": "Add them.",
     "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
    {"role": "tool", "content": "4"},
    {"role": "assistant", "content": "<think>\nsum\n</think>\n\n4"},
    {"role": "user", "content": [{"type": "text", "text": "Thanks"}]}
  ])");
  return m;
}

const nlohmann::ordered_json& tools() {
  static const auto t = nlohmann::ordered_json::parse(R"([
    {"type": "function", "function": {"name": "add", "description": "Adds",
     "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}
  ])");
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  glassbox::jinja::Options options;
  options.name = "fuzz";
  // Small limits keep each input fast; the limits themselves are what is
  // being checked to hold.
  options.max_output_bytes = 1 << 20;
  options.max_steps = 200000;
  try {
    glassbox::jinja::Template tmpl(source, options);
    glassbox::jinja::Context ctx;
    ctx.set_json("messages", messages());
    ctx.set_json("tools", tools());
    ctx.set_json("add_generation_prompt", true);
    ctx.set_json("bos_token", "<s>");
    ctx.set_json("eos_token", "</s>");
    (void)tmpl.render(ctx);
  } catch (const glassbox::Error&) {
    // Expected for malformed or failing templates.
  }
  return 0;
}
