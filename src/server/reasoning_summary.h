// The `summary` exposure of a reasoning trace: the thinking split into steps,
// each step's first line (abridged so that it is never the whole step) with
// the step's token count and mean token confidence. Never the raw thinking.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace glassbox::server {

struct ThinkingToken {
  std::string text;      // the token's bytes
  float confidence = 0;  // DeepConf token confidence (higher: more peaked)
  float logprob = 0;
};

struct StepSummary {
  int step = 0;       // 1-based
  std::string title;  // abridged first line, valid UTF-8
  int tokens = 0;
  double confidence = 0;  // mean token confidence of the step's tokens
  double mean_logprob = 0;
};

inline constexpr size_t kMaxTitleBytes = 60;
inline constexpr size_t kMaxSummarySteps = 32;

// Steps are paragraphs (separated by blank lines); a single paragraph of
// several lines is split into its lines. Tokens belong to the step in which
// they start. More than kMaxSummarySteps steps: the last ones are merged.
std::vector<StepSummary> summarize_thinking(const std::vector<ThinkingToken>& thinking);

// From an analysis report whose "steps" array holds objects with a "text",
// "first_line" or "title" string and optionally "confidence" /
// "mean_confidence" and "tokens": the same summary (titles abridged the same
// way). Empty when the report has no usable steps.
std::vector<StepSummary> summarize_report(const nlohmann::json& report);

// The first line of `step_text`, cut to at most min(kMaxTitleBytes, half the
// step's bytes) on a UTF-8 boundary ("…" marks a cut), made valid UTF-8.
std::string abridge_step(std::string_view step_text);

nlohmann::ordered_json summary_json(const std::vector<StepSummary>& steps);

}  // namespace glassbox::server
