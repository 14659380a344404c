#include "server/openai_api.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "audit/canonical_json.h"
#include "audit/sha256.h"
#include "base/error.h"

namespace glassbox::server {

using ojson = nlohmann::ordered_json;

ApiError::ApiError(int s, std::string message, std::string p, std::string c, std::string t)
    : std::runtime_error(std::move(message)),
      status(s),
      type(t.empty() ? error_type_for(s) : std::move(t)),
      param(std::move(p)),
      code(std::move(c)) {}

std::string error_type_for(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "invalid_request_error";
    case 429:
      return "rate_limit_error";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

ojson error_body(const ApiError& e) {
  ojson err;
  err["message"] = audit::sanitize_utf8(e.what());
  err["type"] = e.type;
  err["param"] = e.param.empty() ? ojson(nullptr) : ojson(e.param);
  err["code"] = e.code.empty() ? ojson(nullptr) : ojson(e.code);
  return {{"error", err}};
}

std::string to_string(AnalysisLevel level) {
  switch (level) {
    case AnalysisLevel::None:
      return "none";
    case AnalysisLevel::Summary:
      return "summary";
    case AnalysisLevel::Full:
      return "full";
  }
  return "none";
}

namespace {

ApiError bad(const std::string& param, const std::string& message) {
  return ApiError(400, message, param, "invalid_value");
}

const ojson* member(const ojson& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool get_bool(const ojson& v, const std::string& param) {
  if (!v.is_boolean()) throw bad(param, "'" + param + "' must be a boolean");
  return v.get<bool>();
}

int64_t get_int(const ojson& v, const std::string& param, int64_t lo, int64_t hi) {
  // 5.0 is accepted as an integer (JavaScript clients send numbers).
  int64_t x = 0;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw bad(param, "'" + param + "' is out of range");
    x = v.get<int64_t>();
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) && std::floor(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9e15) {
    x = static_cast<int64_t>(v.get<double>());
  } else {
    throw bad(param, "'" + param + "' must be an integer");
  }
  if (x < lo || x > hi)
    throw bad(param, "'" + param + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) + " (got " +
                         std::to_string(x) + ")");
  return x;
}

double get_number(const ojson& v, const std::string& param, double lo, double hi, bool lo_open = false) {
  if (!v.is_number()) throw bad(param, "'" + param + "' must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x > hi || (lo_open ? x <= lo : x < lo)) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "'%s' must be in %s%g, %g]", param.c_str(), lo_open ? "(" : "[", lo, hi);
    throw bad(param, buf);
  }
  return x;
}

std::string get_string(const ojson& v, const std::string& param) {
  if (!v.is_string()) throw bad(param, "'" + param + "' must be a string");
  return v.get<std::string>();
}

// Text of a message's content: a string, or an array of {"type":"text","text":...} parts.
std::string content_text(const ojson& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string text;
    for (size_t i = 0; i < content.size(); ++i) {
      const ojson& part = content[i];
      const std::string p = param + "[" + std::to_string(i) + "]";
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
        throw bad(p, "'" + p + "' must be an object with a \"type\"");
      if (part["type"] != "text")
        throw bad(
            p, "'" + p + "': only text content parts are supported (got \"" + part["type"].get<std::string>() + "\")");
      if (!part.contains("text") || !part["text"].is_string()) throw bad(p, "'" + p + ".text' must be a string");
      text += part["text"].get<std::string>();
    }
    return text;
  }
  throw bad(param, "'" + param + "' must be a string or an array of text parts");
}

ojson parse_messages(const ojson& body, const RequestDefaults& d) {
  const ojson* messages = member(body, "messages");
  if (!messages) throw ApiError(400, "'messages' is required", "messages", "missing_required_parameter");
  if (!messages->is_array()) throw bad("messages", "'messages' must be an array");
  if (messages->empty()) throw bad("messages", "'messages' must contain at least one message");
  if (static_cast<int64_t>(messages->size()) > d.limits.max_messages)
    throw bad("messages", "too many messages: " + std::to_string(messages->size()) + " (this server accepts at most " +
                              std::to_string(d.limits.max_messages) + ")");
  static const std::set<std::string> kRoles = {"system", "developer", "user", "assistant", "tool"};
  ojson out = ojson::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const ojson& m = (*messages)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw bad(p, "'" + p + "' must be an object");
    if (!m.contains("role") || !m["role"].is_string()) throw bad(p + ".role", "'" + p + ".role' must be a string");
    const std::string role = m["role"].get<std::string>();
    if (!kRoles.count(role))
      throw bad(p + ".role", "'" + p + ".role' must be one of system, developer, user, assistant, tool (got '" +
                                 audit::sanitize_utf8(role) + "')");
    ojson msg;
    // Templates know "system"; "developer" is OpenAI's newer name for it.
    msg["role"] = role == "developer" ? "system" : role;
    const ojson* content = member(m, "content");
    if (!content && role != "assistant") throw bad(p + ".content", "'" + p + ".content' is required");
    const std::string text = content ? content_text(*content, p + ".content") : "";
    if (static_cast<int64_t>(text.size()) > d.limits.max_message_bytes)
      throw ApiError(413, "'" + p + ".content' is larger than " + std::to_string(d.limits.max_message_bytes) + " bytes",
                     p + ".content", "request_too_large");
    msg["content"] = text;
    if (const ojson* r = member(m, "reasoning_content"))
      msg["reasoning_content"] = get_string(*r, p + ".reasoning_content");
    if (const ojson* n = member(m, "name")) msg["name"] = get_string(*n, p + ".name");
    if (const ojson* id = member(m, "tool_call_id")) msg["tool_call_id"] = get_string(*id, p + ".tool_call_id");
    if (const ojson* calls = member(m, "tool_calls")) {
      if (!calls->is_array()) throw bad(p + ".tool_calls", "'" + p + ".tool_calls' must be an array");
      msg["tool_calls"] = *calls;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

void check_model(const ojson& body, const RequestDefaults& d) {
  const ojson* model = member(body, "model");
  if (!model) return;  // one model per server: naming it is optional
  const std::string name = get_string(*model, "model");
  if (name == d.model_id) return;
  for (const auto& alias : d.model_aliases)
    if (name == alias) return;
  throw ApiError(
      404, "The model '" + audit::sanitize_utf8(name) + "' does not exist (this server serves '" + d.model_id + "')",
      "model", "model_not_found");
}

// Settings both endpoints share.
void parse_common(const ojson& body, const RequestDefaults& d, GenerationRequest& g, bool chat) {
  if (!body.is_object()) throw bad("", "the request body must be a JSON object");
  check_model(body, d);
  ChatOptions& o = g.options;
  o.sampling = d.sampling;
  o.template_kwargs = d.template_kwargs;
  o.template_override = d.template_override;

  if (const ojson* n = member(body, "n"); n && get_int(*n, "n", 1, 128) != 1) throw bad("n", "only n = 1 is supported");
  if (const ojson* b = member(body, "best_of"); b && get_int(*b, "best_of", 1, 128) != 1)
    throw bad("best_of", "only best_of = 1 is supported");

  int64_t max_tokens = d.limits.default_max_tokens;
  const char* max_param = nullptr;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (const ojson* v = member(body, key)) {
      max_param = key;
      max_tokens = get_int(*v, key, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
      if (max_tokens < 1)
        throw bad(key, std::string("'") + key + "' must be at least 1 (got " + std::to_string(max_tokens) + ")");
      if (max_tokens > d.limits.max_tokens)
        throw bad(key, std::string("'") + key + "' is " + std::to_string(max_tokens) +
                           ", more than this server's limit of " + std::to_string(d.limits.max_tokens));
    }
  }
  (void)max_param;
  o.max_tokens = static_cast<int>(max_tokens);

  if (const ojson* v = member(body, "temperature"))
    o.sampling.temperature = static_cast<float>(get_number(*v, "temperature", 0, 2));
  if (const ojson* v = member(body, "top_p"))
    o.sampling.top_p = static_cast<float>(get_number(*v, "top_p", 0, 1, true));
  if (const ojson* v = member(body, "top_k")) o.sampling.top_k = static_cast<int>(get_int(*v, "top_k", 0, 1 << 20));
  if (const ojson* v = member(body, "min_p")) o.sampling.min_p = static_cast<float>(get_number(*v, "min_p", 0, 1));
  if (const ojson* v = member(body, "presence_penalty"))
    o.sampling.presence_penalty = static_cast<float>(get_number(*v, "presence_penalty", -2, 2));
  if (const ojson* v = member(body, "frequency_penalty"))
    o.sampling.frequency_penalty = static_cast<float>(get_number(*v, "frequency_penalty", -2, 2));
  if (const ojson* v = member(body, "repeat_penalty"))
    o.sampling.repeat_penalty = static_cast<float>(get_number(*v, "repeat_penalty", 0, 10, true));
  if (const ojson* v = member(body, "seed")) {
    o.sampling.seed = static_cast<uint64_t>(
        get_int(*v, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  } else {
    // A fresh seed per request, recorded with the trace so it can be replayed
    // (48 bits: JavaScript numbers hold it exactly).
    o.sampling.seed = std::stoull(audit::random_hex(6), nullptr, 16);
  }
  try {
    validate(o.sampling);
  } catch (const Error& e) {
    throw bad("", e.what());
  }

  if (const ojson* v = member(body, "stop")) {
    std::vector<std::string> stops;
    if (v->is_string()) {
      stops.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      for (size_t i = 0; i < v->size(); ++i) stops.push_back(get_string((*v)[i], "stop[" + std::to_string(i) + "]"));
    } else {
      throw bad("stop", "'stop' must be a string or an array of strings");
    }
    if (static_cast<int>(stops.size()) > d.limits.max_stop)
      throw bad("stop", "at most " + std::to_string(d.limits.max_stop) + " stop strings are accepted");
    for (const auto& s : stops) {
      if (s.empty()) throw bad("stop", "stop strings must not be empty");
      if (s.size() > 256) throw bad("stop", "stop strings must be at most 256 bytes");
    }
    o.stop = std::move(stops);
  }

  if (const ojson* v = member(body, "stream")) g.stream = get_bool(*v, "stream");
  if (const ojson* v = member(body, "stream_options")) {
    if (!v->is_object()) throw bad("stream_options", "'stream_options' must be an object");
    if (const ojson* u = member(*v, "include_usage")) g.include_usage = get_bool(*u, "stream_options.include_usage");
  }

  // Thinking controls.
  if (const ojson* v = member(body, "chat_template_kwargs")) {
    if (!v->is_object()) throw bad("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    for (const auto& [k, x] : v->items()) o.template_kwargs[k] = x;
    if (const ojson* e = member(*v, "enable_thinking")) {
      if (!get_bool(*e, "chat_template_kwargs.enable_thinking")) o.no_think = true;
    }
  }
  std::string effort;
  if (const ojson* v = member(body, "reasoning_effort")) {
    effort = get_string(*v, "reasoning_effort");
    if (effort == "none" || effort == "minimal") {
      o.no_think = true;
    } else if (const auto it = d.effort_budgets.find(effort); it != d.effort_budgets.end()) {
      o.think_budget = it->second;
    } else {
      throw bad("reasoning_effort", "'reasoning_effort' must be none, minimal, low, medium or high");
    }
  }
  if (const ojson* v = member(body, "thinking_budget_tokens"))
    o.think_budget = static_cast<int>(get_int(*v, "thinking_budget_tokens", -1, d.limits.max_tokens));
  if (const ojson* v = member(body, "reasoning_format")) {
    const std::string f = get_string(*v, "reasoning_format");
    if (f == "deepseek" || f == "auto" || f == "deepseek-legacy")
      g.reasoning_format = ReasoningFormat::Deepseek;
    else if (f == "none")
      g.reasoning_format = ReasoningFormat::None;
    else
      throw bad("reasoning_format", "'reasoning_format' must be deepseek, auto or none");
  } else if (!chat) {
    g.reasoning_format = ReasoningFormat::None;  // raw completions return the raw text
  }

  // The glassbox extension object.
  if (const ojson* gb = member(body, "glassbox")) {
    if (!gb->is_object()) throw bad("glassbox", "'glassbox' must be an object");
    static const std::set<std::string> kKnown = {"reasoning_logprobs", "min_thinking_tokens", "analysis",
                                                 "budget_message"};
    for (const auto& [k, x] : gb->items())
      if (!kKnown.count(k)) throw bad("glassbox." + k, "unknown glassbox option '" + audit::sanitize_utf8(k) + "'");
    if (const ojson* v = member(*gb, "reasoning_logprobs"))
      g.reasoning_logprobs = get_bool(*v, "glassbox.reasoning_logprobs");
    if (const ojson* v = member(*gb, "min_thinking_tokens"))
      o.min_think = static_cast<int>(get_int(*v, "glassbox.min_thinking_tokens", 0, d.limits.max_tokens));
    if (const ojson* v = member(*gb, "budget_message")) o.budget_message = get_bool(*v, "glassbox.budget_message");
    if (const ojson* v = member(*gb, "analysis")) {
      const std::string level =
          v->is_boolean() ? (v->get<bool>() ? "full" : "none") : get_string(*v, "glassbox.analysis");
      if (level == "none")
        g.analysis = AnalysisLevel::None;
      else if (level == "summary")
        g.analysis = AnalysisLevel::Summary;
      else if (level == "full")
        g.analysis = AnalysisLevel::Full;
      else
        throw bad("glassbox.analysis", "'glassbox.analysis' must be none, summary or full");
    }
  }
  if (o.no_think && o.min_think > 0)
    throw bad("glassbox.min_thinking_tokens", "a minimum of thinking tokens contradicts thinking being off");
  if (o.think_budget >= 0 && o.min_think > o.think_budget)
    throw bad("glassbox.min_thinking_tokens", "'glassbox.min_thinking_tokens' (" + std::to_string(o.min_think) +
                                                  ") is larger than the thinking budget (" +
                                                  std::to_string(o.think_budget) + ")");
  o.trace_top_k = std::max(d.trace_top_k, 0);
}

ojson parameters_json(const GenerationRequest& g, const std::string& effort) {
  const ChatOptions& o = g.options;
  ojson p;
  p["max_tokens"] = o.max_tokens;
  p["temperature"] = o.sampling.temperature;
  p["top_p"] = o.sampling.top_p;
  p["top_k"] = o.sampling.top_k;
  p["min_p"] = o.sampling.min_p;
  p["presence_penalty"] = o.sampling.presence_penalty;
  p["frequency_penalty"] = o.sampling.frequency_penalty;
  p["repeat_penalty"] = o.sampling.repeat_penalty;
  p["seed"] = o.sampling.seed;
  p["stop"] = o.stop;
  p["think_budget"] = o.think_budget;
  p["min_think"] = o.min_think;
  p["no_think"] = o.no_think;
  p["budget_message"] = o.budget_message;
  p["template_kwargs"] = o.template_kwargs;
  p["reasoning_format"] = g.reasoning_format == ReasoningFormat::None ? "none" : "deepseek";
  if (!effort.empty()) p["reasoning_effort"] = effort;
  p["stream"] = g.stream;
  p["logprobs"] = g.logprobs;
  p["top_logprobs"] = g.top_logprobs;
  p["reasoning_logprobs"] = g.reasoning_logprobs;
  p["analysis"] = to_string(g.analysis);
  return p;
}

std::string effort_of(const ojson& body) {
  const ojson* v = member(body, "reasoning_effort");
  return v && v->is_string() ? v->get<std::string>() : "";
}

}  // namespace

GenerationRequest parse_chat_request(const ojson& body, const RequestDefaults& d) {
  GenerationRequest g;
  g.endpoint = Endpoint::Chat;
  parse_common(body, d, g, /*chat=*/true);
  g.messages = parse_messages(body, d);
  if (const ojson* v = member(body, "logprobs")) g.logprobs = get_bool(*v, "logprobs");
  if (const ojson* v = member(body, "top_logprobs")) {
    g.top_logprobs = static_cast<int>(get_int(*v, "top_logprobs", 0, d.limits.max_top_logprobs));
    if (!g.logprobs) throw bad("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
  }
  g.options.trace_top_k = std::max(g.options.trace_top_k, g.top_logprobs);
  g.parameters = parameters_json(g, effort_of(body));
  return g;
}

GenerationRequest parse_completion_request(const ojson& body, const RequestDefaults& d) {
  GenerationRequest g;
  g.endpoint = Endpoint::Completion;
  parse_common(body, d, g, /*chat=*/false);
  const ojson* prompt = member(body, "prompt");
  if (!prompt) throw ApiError(400, "'prompt' is required", "prompt", "missing_required_parameter");
  std::string text;
  if (prompt->is_string()) {
    text = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    text = (*prompt)[0].get<std::string>();
  } else {
    throw bad("prompt", "'prompt' must be a string (or an array holding one string)");
  }
  if (text.empty()) throw bad("prompt", "'prompt' must not be empty");
  if (static_cast<int64_t>(text.size()) > d.limits.max_message_bytes)
    throw ApiError(413, "'prompt' is larger than " + std::to_string(d.limits.max_message_bytes) + " bytes", "prompt",
                   "request_too_large");
  if (const ojson* v = member(body, "echo"); v && get_bool(*v, "echo")) throw bad("echo", "'echo' is not supported");
  if (const ojson* v = member(body, "suffix"); v && !get_string(*v, "suffix").empty())
    throw bad("suffix", "'suffix' is not supported");
  // Legacy completions: "logprobs": N asks for the N most likely alternatives.
  if (const ojson* v = member(body, "logprobs")) {
    if (v->is_boolean()) {
      g.logprobs = v->get<bool>();
    } else {
      g.top_logprobs = static_cast<int>(get_int(*v, "logprobs", 0, std::min(5, d.limits.max_top_logprobs)));
      g.logprobs = true;
    }
  }
  g.messages = ojson::array({{{"role", "user"}, {"content", d.bos_text + text}}});
  g.options.template_override = kRawPromptTemplate;
  g.options.template_kwargs = ojson::object();
  g.options.trace_top_k = std::max(g.options.trace_top_k, g.top_logprobs);
  g.parameters = parameters_json(g, effort_of(body));
  return g;
}

}  // namespace glassbox::server
