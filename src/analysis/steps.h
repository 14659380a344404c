// The thinking split into steps, with per-step confidence statistics and a
// role from transparent text rules. Pure functions over the token trace: no
// model needed.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "session/chat_session.h"

namespace glassbox::analysis {

enum class StepSplit { Lines, Sentences };

struct StepOptions {
  StepSplit split = StepSplit::Lines;
  int tail_tokens = 4;   // tail confidence: mean over a step's last N tokens
  int group_window = 8;  // group confidence: mean over the last N thinking tokens (DeepConf's sliding window)
};

// Step roles, decided by the first rule that matches the step's text
// (lower-cased, trimmed); see classify_role.
enum class StepRole { Setup, Compute, Check, Backtrack, Conclude };
const char* role_name(StepRole role);

struct Step {
  int index = 0;
  std::string text;                    // the tokens' text, line breaks trimmed
  int token_begin = 0, token_end = 0;  // trace indices [begin, end)
  StepRole role = StepRole::Setup;
  double mean_confidence = 0;  // DeepConf token confidence, averaged over the step
  double min_confidence = 0;
  double tail_confidence = 0;          // mean over the last tail_tokens tokens
  double lowest_group_confidence = 0;  // lowest sliding-window mean ending inside the step
  double mean_entropy = 0;
  double mean_logprob = 0;  // of the written tokens
  double min_logprob = 0;
  int least_likely_token = 0;       // trace index of the written token with min_logprob
  std::optional<long long> result;  // last integer of a compute step (its result)
};

// The contiguous range of Thinking-phase tokens in the trace ([begin, end),
// both -1 when there is none).
std::pair<int, int> thinking_range(std::span<const TraceToken> trace);

// Splits trace[begin, end) into steps at token boundaries: after a token that
// holds a line break, and in Sentences mode also after a token ending in
// '.', '!' or '?' that is followed by whitespace. A step of whitespace only
// joins the step before it (or the next one at the start).
std::vector<std::pair<int, int>> split_steps(std::span<const TraceToken> trace, int begin, int end, StepSplit mode);

// Rules, in order (first match wins), on the lower-cased trimmed text:
//   backtrack: starts with "wait", "actually", "no,", "no.", "hmm", "oops",
//              "but wait", "on second thought", "let me reconsider",
//              "scratch that", or contains "mistake", "that's wrong",
//              "that is wrong", "not right", "incorrect";
//   check:     contains "check", "verif", "confirm", "make sure", "sanity";
//   conclude:  contains "answer", "therefore", "thus", "hence",
//              "in conclusion", "finally";
//   compute:   holds a digit and '=', or "so " followed by a number;
//   setup:     anything else (restating the problem, planning).
StepRole classify_role(std::string_view text);

// Builds the steps of the thinking trace[begin, end) with their statistics.
std::vector<Step> build_steps(std::span<const TraceToken> trace, int begin, int end, const StepOptions& options);

// Lowest mean of `window` consecutive confidences (the whole range when it is
// shorter): DeepConf's lowest group confidence.
double lowest_group_confidence(std::span<const TraceToken> tokens, int window);

}  // namespace glassbox::analysis
