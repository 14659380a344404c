#include "analysis/trace_io.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "base/error.h"

namespace glassbox::analysis {
namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* kFormat = "glassbox-trace";
constexpr int kVersion = 1;

const char* const kPhaseNames[] = {"before_thinking", "open_marker", "thinking", "close_marker", "answer"};
const char* const kOriginNames[] = {"sampled", "forced_continuation", "forced_budget_message", "forced_close",
                                    "forced_open"};

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  throw Error("trace file: " + where + ": " + what);
}

const ojson& field(const ojson& obj, const char* key, const std::string& where) {
  if (!obj.is_object()) bad(where, "expected an object");
  const auto it = obj.find(key);
  if (it == obj.end()) bad(where, std::string("missing \"") + key + "\"");
  return *it;
}

// Optional typed fields: absent leaves `out` unchanged, a wrong type throws.
void read(const ojson& obj, const char* key, std::string& out, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) return;
  if (!it->is_string()) bad(where + "." + key, "expected a string");
  out = it->get<std::string>();
}
void read(const ojson& obj, const char* key, bool& out, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) return;
  if (!it->is_boolean()) bad(where + "." + key, "expected true or false");
  out = it->get<bool>();
}
template <typename Int>
requires std::is_integral_v<Int>
void read(const ojson& obj, const char* key, Int& out, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) return;
  if (!it->is_number_integer()) bad(where + "." + key, "expected an integer");
  if (it->is_number_unsigned()) {
    const auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<Int>::max())) bad(where + "." + key, "out of range");
    out = static_cast<Int>(v);
    return;
  }
  const auto v = it->get<int64_t>();
  if constexpr (std::is_signed_v<Int>) {
    if (v < std::numeric_limits<Int>::min() || v > std::numeric_limits<Int>::max())
      bad(where + "." + key, "out of range");
  } else {
    if (v < 0) bad(where + "." + key, "out of range");
  }
  out = static_cast<Int>(v);
}
void read(const ojson& obj, const char* key, float& out, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (!it->is_number()) bad(where + "." + key, "expected a number");
  out = it->get<float>();
}
void read(const ojson& obj, const char* key, double& out, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (!it->is_number()) bad(where + "." + key, "expected a number");
  out = it->get<double>();
}

ojson options_to_json(const ChatOptions& o) {
  ojson j;
  const SamplingParams& s = o.sampling;
  j["sampling"] = {{"temperature", s.temperature},
                   {"top_k", s.top_k},
                   {"top_p", s.top_p},
                   {"min_p", s.min_p},
                   {"repeat_penalty", s.repeat_penalty},
                   {"repeat_last_n", s.repeat_last_n},
                   {"presence_penalty", s.presence_penalty},
                   {"frequency_penalty", s.frequency_penalty},
                   {"seed", s.seed}};
  j["max_tokens"] = o.max_tokens;
  j["think_budget"] = o.think_budget;
  j["min_think"] = o.min_think;
  j["no_think"] = o.no_think;
  j["budget_message"] = o.budget_message;
  j["budget_message_text"] = o.budget_message_text;
  j["continuation_text"] = o.continuation_text;
  j["stop"] = o.stop;
  j["template_kwargs"] = o.template_kwargs;
  j["template_override"] = o.template_override;
  j["trace_top_k"] = o.trace_top_k;
  j["assistant_prefix"] = o.assistant_prefix;
  return j;
}

ChatOptions options_from_json(const ojson& j) {
  ChatOptions o;
  const std::string w = "options";
  if (!j.is_object()) bad(w, "expected an object");
  if (const auto it = j.find("sampling"); it != j.end()) {
    const std::string ws = w + ".sampling";
    if (!it->is_object()) bad(ws, "expected an object");
    SamplingParams& s = o.sampling;
    read(*it, "temperature", s.temperature, ws);
    read(*it, "top_k", s.top_k, ws);
    read(*it, "top_p", s.top_p, ws);
    read(*it, "min_p", s.min_p, ws);
    read(*it, "repeat_penalty", s.repeat_penalty, ws);
    read(*it, "repeat_last_n", s.repeat_last_n, ws);
    read(*it, "presence_penalty", s.presence_penalty, ws);
    read(*it, "frequency_penalty", s.frequency_penalty, ws);
    read(*it, "seed", s.seed, ws);
    try {
      validate(s);
    } catch (const Error& e) {
      bad(ws, e.what());
    }
  }
  read(j, "max_tokens", o.max_tokens, w);
  read(j, "think_budget", o.think_budget, w);
  read(j, "min_think", o.min_think, w);
  read(j, "no_think", o.no_think, w);
  read(j, "budget_message", o.budget_message, w);
  read(j, "budget_message_text", o.budget_message_text, w);
  read(j, "continuation_text", o.continuation_text, w);
  read(j, "template_override", o.template_override, w);
  read(j, "trace_top_k", o.trace_top_k, w);
  read(j, "assistant_prefix", o.assistant_prefix, w);
  if (o.trace_top_k < 0 || o.trace_top_k > 1000) bad(w + ".trace_top_k", "must be in [0, 1000]");
  if (const auto it = j.find("stop"); it != j.end()) {
    if (!it->is_array()) bad(w + ".stop", "expected an array of strings");
    for (const auto& s : *it) {
      if (!s.is_string()) bad(w + ".stop", "expected an array of strings");
      o.stop.push_back(s.get<std::string>());
    }
  }
  if (const auto it = j.find("template_kwargs"); it != j.end()) {
    if (!it->is_object()) bad(w + ".template_kwargs", "expected an object");
    o.template_kwargs = *it;
  }
  return o;
}

}  // namespace

const char* phase_name(TokenPhase phase) {
  switch (phase) {
    case TokenPhase::BeforeThinking:
      return kPhaseNames[0];
    case TokenPhase::OpenMarker:
      return kPhaseNames[1];
    case TokenPhase::Thinking:
      return kPhaseNames[2];
    case TokenPhase::CloseMarker:
      return kPhaseNames[3];
    case TokenPhase::Answer:
      return kPhaseNames[4];
  }
  return kPhaseNames[4];
}

const char* origin_name(TokenOrigin origin) {
  switch (origin) {
    case TokenOrigin::Sampled:
      return kOriginNames[0];
    case TokenOrigin::ForcedContinuation:
      return kOriginNames[1];
    case TokenOrigin::ForcedBudgetMessage:
      return kOriginNames[2];
    case TokenOrigin::ForcedClose:
      return kOriginNames[3];
    case TokenOrigin::ForcedOpen:
      return kOriginNames[4];
  }
  return kOriginNames[0];
}

ojson token_to_json(const TraceToken& t, int index) {
  ojson j;
  j["index"] = index;
  j["id"] = t.id;
  j["text"] = t.text;
  j["phase"] = phase_name(t.phase);
  j["origin"] = origin_name(t.origin);
  if (t.from_prefix) j["from_prefix"] = true;
  j["logprob"] = t.logprob;
  j["entropy"] = t.entropy;
  j["confidence"] = t.confidence;
  ojson top = ojson::array();
  for (const TokenLogprob& a : t.top) top.push_back(ojson::array({a.id, a.logprob}));
  j["top"] = std::move(top);
  j["time_ms"] = t.time_ms;
  return j;
}

ojson trace_to_json(const TraceRecord& rec) {
  const ChatResult& r = rec.result;
  ojson j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["model"] = rec.model;
  j["messages"] = rec.messages;
  j["options"] = options_to_json(rec.options);
  j["prompt"] = r.prompt;
  j["prompt_tokens"] = r.prompt_tokens;
  j["reasoning"] = r.reasoning;
  j["content"] = r.content;
  j["reasoning_tokens"] = r.reasoning_tokens;
  j["content_tokens"] = r.content_tokens;
  j["finish_reason"] = r.finish_reason;
  j["thinking_forced_closed"] = r.thinking_forced_closed;
  j["thinking_unclosed"] = r.thinking_unclosed;
  j["prompt_ms"] = r.prompt_ms;
  j["generate_ms"] = r.generate_ms;
  ojson tokens = ojson::array();
  for (size_t i = 0; i < r.trace.size(); ++i) tokens.push_back(token_to_json(r.trace[i], static_cast<int>(i)));
  j["tokens"] = std::move(tokens);
  return j;
}

TraceRecord trace_from_json(const ojson& j) {
  if (!j.is_object()) bad("top level", "expected an object");
  const ojson& format = field(j, "format", "top level");
  if (!format.is_string() || format.get<std::string>() != kFormat)
    bad("format", std::string("expected \"") + kFormat + "\"");
  int version = 0;
  read(j, "version", version, "top level");
  if (version != kVersion) bad("version", "unsupported version " + std::to_string(version));

  TraceRecord rec;
  read(j, "model", rec.model, "top level");
  if (const auto it = j.find("messages"); it != j.end()) {
    if (!it->is_array()) bad("messages", "expected an array");
    rec.messages = *it;
  }
  if (const auto it = j.find("options"); it != j.end()) rec.options = options_from_json(*it);

  ChatResult& r = rec.result;
  read(j, "prompt", r.prompt, "top level");
  const ojson& prompt_tokens = field(j, "prompt_tokens", "top level");
  if (!prompt_tokens.is_array() || prompt_tokens.empty()) bad("prompt_tokens", "expected a non-empty array of ids");
  for (const auto& id : prompt_tokens) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<TokenId>::max())
      bad("prompt_tokens", "expected token ids (integers >= 0)");
    r.prompt_tokens.push_back(static_cast<TokenId>(id.get<int64_t>()));
  }
  read(j, "reasoning", r.reasoning, "top level");
  read(j, "content", r.content, "top level");
  read(j, "reasoning_tokens", r.reasoning_tokens, "top level");
  read(j, "content_tokens", r.content_tokens, "top level");
  read(j, "finish_reason", r.finish_reason, "top level");
  read(j, "thinking_forced_closed", r.thinking_forced_closed, "top level");
  read(j, "thinking_unclosed", r.thinking_unclosed, "top level");
  read(j, "prompt_ms", r.prompt_ms, "top level");
  read(j, "generate_ms", r.generate_ms, "top level");

  const ojson& tokens = field(j, "tokens", "top level");
  if (!tokens.is_array()) bad("tokens", "expected an array");
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string w = "tokens[" + std::to_string(i) + "]";
    const ojson& tj = tokens[i];
    if (!tj.is_object()) bad(w, "expected an object");
    TraceToken t;
    field(tj, "id", w);
    read(tj, "id", t.id, w);
    if (t.id < 0) bad(w + ".id", "must be >= 0");
    std::string phase = "answer", origin = "sampled";
    field(tj, "phase", w);
    read(tj, "phase", phase, w);
    read(tj, "origin", origin, w);
    bool known_phase = false, known_origin = false;
    for (const TokenPhase candidate : {TokenPhase::BeforeThinking, TokenPhase::OpenMarker, TokenPhase::Thinking,
                                       TokenPhase::CloseMarker, TokenPhase::Answer}) {
      if (phase == phase_name(candidate)) {
        t.phase = candidate;
        known_phase = true;
      }
    }
    for (const TokenOrigin candidate :
         {TokenOrigin::Sampled, TokenOrigin::ForcedContinuation, TokenOrigin::ForcedBudgetMessage,
          TokenOrigin::ForcedClose, TokenOrigin::ForcedOpen}) {
      if (origin == origin_name(candidate)) {
        t.origin = candidate;
        known_origin = true;
      }
    }
    if (!known_phase) bad(w + ".phase", "unknown phase \"" + phase + "\"");
    if (!known_origin) bad(w + ".origin", "unknown origin \"" + origin + "\"");
    read(tj, "text", t.text, w);
    read(tj, "from_prefix", t.from_prefix, w);
    read(tj, "logprob", t.logprob, w);
    read(tj, "entropy", t.entropy, w);
    read(tj, "confidence", t.confidence, w);
    read(tj, "time_ms", t.time_ms, w);
    if (const auto it = tj.find("top"); it != tj.end()) {
      if (!it->is_array()) bad(w + ".top", "expected an array of [id, logprob]");
      for (const auto& a : *it) {
        if (!a.is_array() || a.size() != 2 || !a[0].is_number_integer() || !a[1].is_number() ||
            a[0].get<int64_t>() < 0 || a[0].get<int64_t>() > std::numeric_limits<TokenId>::max())
          bad(w + ".top", "expected an array of [id, logprob]");
        t.top.push_back(TokenLogprob{static_cast<TokenId>(a[0].get<int64_t>()), a[1].get<float>()});
      }
    }
    r.trace.push_back(std::move(t));
  }
  return rec;
}

void save_trace(const std::string& path, const TraceRecord& record) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write trace file '" + path + "'");
  out << dump_json(trace_to_json(record), 1) << '\n';
  if (!out) throw Error("writing trace file '" + path + "' failed");
}

TraceRecord load_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open trace file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  ojson j;
  try {
    j = ojson::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  try {
    return trace_from_json(j);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

double replay_trace(ChatSession& session, TraceRecord& record) {
  ChatResult& r = record.result;
  const std::vector<TokenId>& prompt = r.prompt_tokens;
  if (prompt.empty()) throw Error("the trace has no prompt tokens");
  const int n_vocab = session.context().n_vocab();
  std::vector<TokenId> sequence = prompt;
  for (const TraceToken& t : r.trace) {
    if (t.id >= n_vocab)
      throw Error("the trace holds token id " + std::to_string(t.id) + ", outside the model's vocabulary of " +
                  std::to_string(n_vocab) + " (another model made it?)");
    sequence.push_back(t.id);
  }
  if (r.trace.empty()) {
    session.sync_tokens(prompt);
    return 0;
  }
  // Evaluate from the last prompt token on: its logits predict the first
  // generated token.
  const int P = static_cast<int>(prompt.size());
  session.sync_tokens(std::span<const TokenId>(prompt).first(static_cast<size_t>(P - 1)));
  const Tokenizer& tok = session.model().tokenizer();
  double max_diff = 0;
  session.sync_tokens(std::span<const TokenId>(sequence).first(sequence.size() - 1), [&](int pos0, int rows) {
    for (int i = 0; i < rows; ++i) {
      const int j = pos0 + i + 1 - P;  // the trace token this row predicts
      if (j < 0 || j >= static_cast<int>(r.trace.size())) continue;
      TraceToken& t = r.trace[static_cast<size_t>(j)];
      TokenStats stats = trace_token_stats(session.context().logits(i), n_vocab, t.id, record.options.trace_top_k);
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(stats.chosen_logprob) - t.logprob));
      t.logprob = stats.chosen_logprob;
      t.entropy = stats.entropy;
      t.confidence = stats.confidence;
      t.top = std::move(stats.top);
      t.text = tok.token_bytes(t.id, true);
    }
  });
  return max_diff;
}

}  // namespace glassbox::analysis
