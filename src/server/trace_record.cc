#include "server/trace_record.h"

#include <cmath>

#include "audit/audit_store.h"
#include "audit/canonical_json.h"
#include "base/error.h"

namespace glassbox::server {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

const char* phase_name(TokenPhase phase) {
  switch (phase) {
    case TokenPhase::BeforeThinking:
      return "before_thinking";
    case TokenPhase::OpenMarker:
      return "open_marker";
    case TokenPhase::Thinking:
      return "thinking";
    case TokenPhase::CloseMarker:
      return "close_marker";
    case TokenPhase::Answer:
      return "answer";
  }
  return "answer";
}

const char* origin_name(TokenOrigin origin) {
  switch (origin) {
    case TokenOrigin::Sampled:
      return "sampled";
    case TokenOrigin::ForcedContinuation:
      return "forced_continuation";
    case TokenOrigin::ForcedBudgetMessage:
      return "forced_budget_message";
    case TokenOrigin::ForcedClose:
      return "forced_close";
    case TokenOrigin::ForcedOpen:
      return "forced_open";
  }
  return "sampled";
}

std::optional<TokenPhase> parse_phase(std::string_view name) {
  for (TokenPhase p : {TokenPhase::BeforeThinking, TokenPhase::OpenMarker, TokenPhase::Thinking,
                       TokenPhase::CloseMarker, TokenPhase::Answer})
    if (name == phase_name(p)) return p;
  return std::nullopt;
}

std::optional<TokenOrigin> parse_origin(std::string_view name) {
  for (TokenOrigin o : {TokenOrigin::Sampled, TokenOrigin::ForcedContinuation, TokenOrigin::ForcedBudgetMessage,
                        TokenOrigin::ForcedClose, TokenOrigin::ForcedOpen})
    if (name == origin_name(o)) return o;
  return std::nullopt;
}

bool is_thinking_token(const TraceToken& t) { return t.phase == TokenPhase::Thinking; }

bool is_answer_token(const TraceToken& t, const Tokenizer& tok) {
  return (t.phase == TokenPhase::Answer || t.phase == TokenPhase::BeforeThinking) && !tok.is_end_of_generation(t.id);
}

namespace {

// Non-finite numbers would print as null and not read back as numbers.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

json token_json(const TraceToken& t, const Tokenizer& tok) {
  json j;
  j["id"] = t.id;
  j["text"] = audit::sanitize_utf8(t.text);
  if (!audit::is_valid_utf8(t.text)) {
    json bytes = json::array();
    for (unsigned char c : t.text) bytes.push_back(c);
    j["bytes"] = bytes;
  }
  j["phase"] = phase_name(t.phase);
  j["origin"] = origin_name(t.origin);
  j["logprob"] = number(t.logprob);
  j["entropy"] = number(t.entropy);
  j["confidence"] = number(t.confidence);
  j["time_ms"] = number(std::round(t.time_ms * 1000.0) / 1000.0);
  json top = json::array();
  for (const TokenLogprob& alt : t.top) {
    const std::string text = tok.token_bytes(alt.id, true);
    top.push_back({{"id", alt.id}, {"text", audit::sanitize_utf8(text)}, {"logprob", number(alt.logprob)}});
  }
  j["top"] = top;
  return j;
}

json make_trace_record(const ChatResult& r, const RecordContext& c, const Tokenizer& tok) {
  json rec;
  rec["kind"] = "trace";
  rec["trace_id"] = c.trace_id;
  rec["response_id"] = c.response_id;
  rec["endpoint"] = c.endpoint;
  rec["created_at"] = c.created_at_ms;
  rec["completed_at"] = audit::now_ms();
  rec["model"] = c.model_id;
  rec["model_file"] = audit::sanitize_utf8(c.model_file);
  rec["model_sha256"] = c.model_sha256;
  rec["key_name"] = c.key_name;
  rec["request"] = json(c.request);
  rec["parameters"] = audit::sanitized(json(c.parameters));
  rec["prompt"] = audit::sanitize_utf8(r.prompt);
  rec["reasoning"] = audit::sanitize_utf8(r.reasoning);
  rec["answer"] = audit::sanitize_utf8(r.content);
  rec["finish_reason"] = r.finish_reason;
  rec["usage"] = {{"prompt_tokens", r.prompt_tokens.size()},
                  {"completion_tokens", r.trace.size()},
                  {"reasoning_tokens", r.reasoning_tokens},
                  {"answer_tokens", r.content_tokens}};
  rec["thinking"] = {{"forced_closed", r.thinking_forced_closed}, {"unclosed", r.thinking_unclosed}};
  rec["timing"] = {{"queue_ms", number(std::round(c.queue_ms * 1000.0) / 1000.0)},
                   {"prompt_ms", number(std::round(r.prompt_ms * 1000.0) / 1000.0)},
                   {"generate_ms", number(std::round(r.generate_ms * 1000.0) / 1000.0)}};
  json tokens = json::array();
  for (const TraceToken& t : r.trace) tokens.push_back(token_json(t, tok));
  rec["tokens"] = std::move(tokens);
  rec["report"] = c.report.is_null() ? json(nullptr) : audit::sanitized(json(c.report));
  return rec;
}

namespace {

std::string token_bytes_of(const json& t) {
  if (t.contains("bytes") && t["bytes"].is_array()) {
    std::string s;
    for (const auto& b : t["bytes"])
      if (b.is_number_integer()) s.push_back(static_cast<char>(b.get<int>() & 0xFF));
    return s;
  }
  return t.value("text", "");
}

float float_of(const json& t, const char* key) {
  const auto it = t.find(key);
  return it != t.end() && it->is_number() ? it->get<float>() : 0.0f;
}

}  // namespace

ChatResult result_from_record(const json& record, const Tokenizer& tok) {
  if (!record.is_object() || record.value("kind", "") != "trace") throw Error("not a trace record");
  ChatResult r;
  r.prompt = record.value("prompt", "");
  r.prompt_tokens = tok.encode(r.prompt, /*parse_special=*/true, /*add_bos=*/false);
  r.reasoning = record.value("reasoning", "");
  r.content = record.value("answer", "");
  r.finish_reason = record.value("finish_reason", "");
  if (record.contains("usage") && record["usage"].is_object()) {
    r.reasoning_tokens = record["usage"].value("reasoning_tokens", 0);
    r.content_tokens = record["usage"].value("answer_tokens", 0);
  }
  if (record.contains("thinking") && record["thinking"].is_object()) {
    r.thinking_forced_closed = record["thinking"].value("forced_closed", false);
    r.thinking_unclosed = record["thinking"].value("unclosed", false);
  }
  if (record.contains("tokens") && record["tokens"].is_array()) {
    for (const auto& t : record["tokens"]) {
      if (!t.is_object()) continue;
      TraceToken tt;
      tt.id = t.value("id", -1);
      if (tt.id < 0 || tt.id >= tok.vocab_size())
        throw Error("the stored trace names token id " + std::to_string(tt.id) + ", outside the model's vocabulary");
      tt.text = token_bytes_of(t);
      tt.phase = parse_phase(t.value("phase", "answer")).value_or(TokenPhase::Answer);
      tt.origin = parse_origin(t.value("origin", "sampled")).value_or(TokenOrigin::Sampled);
      tt.logprob = float_of(t, "logprob");
      tt.entropy = float_of(t, "entropy");
      tt.confidence = float_of(t, "confidence");
      tt.time_ms = t.contains("time_ms") && t["time_ms"].is_number() ? t["time_ms"].get<double>() : 0.0;
      if (t.contains("top") && t["top"].is_array())
        for (const auto& alt : t["top"])
          if (alt.is_object()) tt.top.push_back({alt.value("id", 0), float_of(alt, "logprob")});
      r.trace.push_back(std::move(tt));
    }
  }
  return r;
}

std::vector<ThinkingToken> thinking_tokens(const std::vector<TraceToken>& trace) {
  std::vector<ThinkingToken> out;
  for (const TraceToken& t : trace)
    if (is_thinking_token(t)) out.push_back({t.text, t.confidence, t.logprob});
  return out;
}

std::vector<ThinkingToken> thinking_tokens_of_record(const json& record) {
  std::vector<ThinkingToken> out;
  if (!record.contains("tokens") || !record["tokens"].is_array()) return out;
  for (const auto& t : record["tokens"])
    if (t.is_object() && t.value("phase", "") == "thinking")
      out.push_back({token_bytes_of(t), float_of(t, "confidence"), float_of(t, "logprob")});
  return out;
}

ojson trace_view(const json& record, Exposure exposure) {
  ojson view = ojson::object();
  view["id"] = record.value("trace_id", "");
  view["object"] = "trace";
  for (const auto& [key, value] : record.items()) {
    if (key == "trace_id" || key == "kind") continue;
    view[key] = ojson(value);
  }
  if (exposure == Exposure::Full) return view;
  view.erase("reasoning");
  view.erase("report");
  if (view.contains("tokens") && view["tokens"].is_array()) {
    ojson kept = ojson::array();
    int withheld = 0;
    for (const auto& t : view["tokens"]) {
      const std::string phase = t.is_object() ? t.value("phase", "") : "";
      if (phase == "answer" || phase == "before_thinking")
        kept.push_back(t);
      else
        ++withheld;
    }
    view["tokens"] = std::move(kept);
    view["reasoning_tokens_withheld"] = withheld;
  }
  view["exposure"] = to_string(exposure);
  if (exposure == Exposure::Summary) {
    std::vector<StepSummary> steps;
    if (record.contains("report")) steps = summarize_report(record["report"]);
    if (steps.empty()) steps = summarize_thinking(thinking_tokens_of_record(record));
    view["reasoning_summary"] = summary_json(steps);
  }
  return view;
}

}  // namespace glassbox::server
