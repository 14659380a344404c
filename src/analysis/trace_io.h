// Saved traces (`glassbox run --save-trace FILE`, read by `glassbox analyze
// FILE`): the conversation, the generation options, the prompt tokens and
// every generated token with its statistics. Format in docs/analysis-report.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "analysis/analysis.h"

namespace glassbox::analysis {

const char* phase_name(TokenPhase phase);     // "thinking", "answer", ...
const char* origin_name(TokenOrigin origin);  // "sampled", "forced_close", ...
nlohmann::ordered_json token_to_json(const TraceToken& token, int index);

nlohmann::ordered_json trace_to_json(const TraceRecord& record);
// Throws Error naming the first missing or malformed field.
TraceRecord trace_from_json(const nlohmann::ordered_json& json);
void save_trace(const std::string& path, const TraceRecord& record);
TraceRecord load_trace(const std::string& path);

// Evaluates the trace's prompt and tokens into the session's context (only
// what it does not already hold) and recomputes every token's text and
// statistics from the model's logits, so that a saved file is never trusted
// for numbers. Returns the largest |logprob| difference from the recorded
// values (a large one means another model or template made the trace).
double replay_trace(ChatSession& session, TraceRecord& record);

}  // namespace glassbox::analysis
