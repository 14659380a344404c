// The audit record of one generation ("kind": "trace") and the views of it
// that callers may see under their exposure.
//
// Record members: kind, trace_id, created_at / completed_at (Unix ms),
// endpoint ("chat.completions" | "completions"), response_id, model,
// model_file, model_sha256, key_name, request (the JSON body as received),
// parameters (the effective sampling and thinking settings, seed included),
// prompt (rendered), reasoning, answer, finish_reason, usage
// {prompt_tokens, completion_tokens, reasoning_tokens, answer_tokens},
// thinking {forced_closed, unclosed}, timing {queue_ms, prompt_ms,
// generate_ms}, tokens (the token trace: id, text, bytes when the text is not
// valid UTF-8, phase, origin, logprob, entropy, confidence, time_ms, top
// [{id, text, logprob}]) and report (the analysis, or null).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/reasoning_summary.h"
#include "session/chat_session.h"

namespace glassbox::server {

const char* phase_name(TokenPhase phase);
const char* origin_name(TokenOrigin origin);
std::optional<TokenPhase> parse_phase(std::string_view name);
std::optional<TokenOrigin> parse_origin(std::string_view name);

// Thinking tokens: inside the block, markers and the budget message excluded
// (what reasoning_tokens counts).
bool is_thinking_token(const TraceToken& t);
// Answer tokens: after the block (or with no block); end-of-generation
// tokens are not answer text.
bool is_answer_token(const TraceToken& t, const Tokenizer& tok);

struct RecordContext {
  std::string trace_id, response_id, endpoint, model_id, model_file, model_sha256, key_name;
  int64_t created_at_ms = 0;
  double queue_ms = 0;
  nlohmann::ordered_json request;     // the body as received
  nlohmann::ordered_json parameters;  // effective settings
  nlohmann::ordered_json report;      // null when no analysis ran
};

// The record to append (UTF-8 made valid everywhere; token bytes kept).
nlohmann::json make_trace_record(const ChatResult& r, const RecordContext& c, const Tokenizer& tok);

// One token as the record stores it (also used for the analysis record).
nlohmann::json token_json(const TraceToken& t, const Tokenizer& tok);

// Rebuilds the ChatResult of a stored record (prompt tokens re-encoded), so
// that an analyzer sees a stored trace the way it sees a live one.
ChatResult result_from_record(const nlohmann::json& record, const Tokenizer& tok);

std::vector<ThinkingToken> thinking_tokens(const std::vector<TraceToken>& trace);
std::vector<ThinkingToken> thinking_tokens_of_record(const nlohmann::json& record);

// The record as a caller with `exposure` may see it. Below full: no
// reasoning, no report, no thinking tokens (their count stays); summary adds
// "reasoning_summary". `stored` fields (seq, hash) are added by the caller.
nlohmann::ordered_json trace_view(const nlohmann::json& record, Exposure exposure);

}  // namespace glassbox::server
