// Reasoning-process analysis: why the model answered what it answered.
//
// The analysis observes a finished generation (a ChatResult and its token
// trace) through the engine's public surface only: KV-cache forks
// (Context::fork_from), teacher-forced evaluation and the forward hooks. The
// forward pass is never changed for it.
//
//   ChatSession session(model);
//   ChatResult r = session.generate(messages, options);
//   analysis::Report report = analysis::analyze(session, {model_path, messages, options, r}, {});
//   std::puts(analysis::render_summary(report, /*color=*/true).c_str());
//
// What it computes (docs/analysis-report.md documents every field):
//   - steps: the thinking split into lines or sentences, with DeepConf
//     confidences (mean, minimum, tail, lowest sliding-window group), mean
//     entropy, the written tokens' log-probabilities and a rule-based role;
//   - early-answer curve (Lanham et al. 2023): after each step, the thinking
//     is cut there, the tokens that really followed the thinking ("</think>
//     ... The answer is ") are forced, and the final answer is scored
//     teacher-forced and decoded greedily. Every point forks the cached
//     prefix: no prompt or thinking token is evaluated again;
//   - step importance (Thought Anchors, counterfactual): the answer's
//     log-probability without each step, and optionally with it resampled;
//   - prompt attribution: occlusion of each question word and the attention
//     from the answer tokens to the question;
//   - on request: logit lens at the answer's first token, attention maps,
//     and DeepConf self-consistency over N sampled traces.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "analysis/steps.h"
#include "session/chat_session.h"

namespace glassbox::analysis {

// A generation with what produced it: enough to analyse it again later.
struct TraceRecord {
  std::string model;  // path of the GGUF file (informational when re-analysing with -m)
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // the conversation, last user turn included
  ChatOptions options;                                                // as generated (on_token is not recorded)
  ChatResult result;
};

// One attention map request. Positions index the whole sequence (prompt
// tokens, then generated ones); -1 picks the default: queries = the answer
// tokens (the positions that predict them), keys = everything before the
// last query.
struct AttentionRequest {
  int layer = 0;
  int head = -1;  // -1: mean over heads
  int query_begin = -1, query_end = -1;
  int key_begin = -1, key_end = -1;
};

// Parses "LAYER:HEAD[:QBEGIN-QEND[:KBEGIN-KEND]]" (HEAD may be '*' for the
// mean over heads). Throws Error naming the problem.
AttentionRequest parse_attention_request(const std::string& text);

struct AnalysisOptions {
  StepOptions steps;
  int trace_group_window = 16;  // tokens per group for whole-trace (and self-consistency) group confidence

  bool early_answer = true;
  double decision_threshold = 0.5;  // the answer is "decided" once its probability stays >= this
  int greedy_max_tokens = 12;       // greedy answer decoded at each point, at most this many tokens

  bool importance = true;
  int resamples = 0;             // per step: resampled replacements (0: removal only)
  int resample_max_tokens = 48;  // a resampled step ends at a line break or after this many tokens

  bool occlusion = true;
  bool attention = true;
  int max_occlusion_words = 48;  // words beyond this are not occluded (cost bound)
  std::string mask_text = "_";   // an occluded word's tokens are replaced by this text's first token

  bool logit_lens = false;
  std::vector<AttentionRequest> attention_maps;

  int samples = 0;             // self-consistency traces (0: off)
  int warmup_samples = 4;      // DeepConf: traces run in full to set the stop threshold
  double keep_fraction = 0.9;  // DeepConf: the threshold keeps this share of the warm-up traces
  bool early_stop = true;      // stop a trace once its group confidence falls below the threshold

  // Sampling for resamples and self-consistency traces. Its seed is the base:
  // every draw gets a seed of its own derived from it.
  SamplingParams sampling;
};

// The final answer: the last integer in the reply, else the whole reply.
struct AnswerInfo {
  bool found = false;
  std::string text;                      // the answer's text ("73", or the whole reply)
  std::optional<long long> value;        // when it is an integer
  int token_begin = -1, token_end = -1;  // trace indices of the answer tokens
  int bridge_begin = -1;                 // trace index where the forced text after the thinking starts
  std::string bridge_text;               // what is forced after each cut ("\n</think>\n\nThe answer is ")
  double logprob = 0;                    // sum of the trace's log-probabilities of the answer tokens
};

struct EarlyAnswerPoint {
  int after_step = -1;      // -1: before the first step (thinking cut at once)
  int position = 0;         // sequence position where the thinking was cut
  double logprob = 0;       // teacher-forced log P(answer tokens)
  double probability = 0;   // exp(logprob)
  std::string greedy_text;  // what the model writes greedily there
  std::optional<long long> greedy_answer;
  bool greedy_matches = false;  // the greedy answer is the final answer
};

struct EarlyAnswer {
  bool computed = false;
  std::string skipped;  // why not, when not computed
  std::vector<EarlyAnswerPoint> points;
  std::optional<int> decided_step;  // first step from which the probability stays >= the threshold (-1: before any)
  int64_t tokens_evaluated = 0;     // forced + greedy tokens (never a prompt or thinking token)
  int64_t greedy_tokens_evaluated = 0;
  double seconds = 0;
};

struct StepImportance {
  int step = 0;
  double removed_logprob = 0;  // log P(answer) with the step removed
  double removed_delta = 0;    // baseline - removed_logprob (> 0: the step supports the answer)
  double importance = 0;       // positive removed_delta normalised over the steps (sum 1)
  // Resampling: the step replaced by a sample from the fork before it.
  // Resamples identical to the step are not counterfactuals and are left
  // out; none left (the model would write the step anyway): no value.
  std::optional<double> resampled_logprob;  // log of the mean P(answer) over the differing resamples
  std::optional<double> resampled_delta;
  std::optional<double> resampled_importance;  // positive resampled_delta normalised over the steps
  int identical_resamples = 0;                 // resamples that reproduced the step's tokens exactly
  std::vector<std::string> resampled_texts;
};

struct Importance {
  bool computed = false;
  std::string skipped;
  double baseline_logprob = 0;  // log P(answer) with every step (the early-answer value after the last step)
  int resamples = 0;
  std::vector<StepImportance> steps;
  std::vector<int> top;  // most important steps first (at most 3)
  int64_t tokens_evaluated = 0;
  double seconds = 0;
};

struct WordAttribution {
  std::string word;
  int byte_begin = 0, byte_end = 0;          // in the question
  int token_begin = 0, token_end = 0;        // prompt positions
  std::optional<double> occlusion;           // baseline - log P(answer) with the word masked (thinking kept)
  std::optional<double> occlusion_response;  // the same for the whole reply (thinking + answer)
  double attention = 0;                      // mean attention from the answer tokens (layers, heads, queries)
};

struct PromptAttribution {
  bool computed = false;
  std::string skipped;
  std::string question;
  std::vector<WordAttribution> words;
  double attention_on_question = 0;  // share of the answer's attention that lands on the question
  double baseline_response_logprob = 0;
  int64_t tokens_evaluated = 0;
  double seconds = 0;
};

struct LogitLensLayer {
  int layer = 0;
  int rank = 0;  // 0: the answer's first token is the layer's top token
  double probability = 0;
  TokenId top_id = -1;
  std::string top_text;
  double top_probability = 0;
};

struct LogitLens {
  bool computed = false;
  std::string skipped;
  int position = 0;     // the position whose residual stream is read
  TokenId target = -1;  // the answer's first token
  std::string target_text;
  std::vector<LogitLensLayer> layers;
};

struct AttentionMap {
  AttentionRequest request;  // resolved (no -1 left except head)
  std::vector<std::string> query_tokens, key_tokens;
  std::vector<float> weights;  // [query][key]
};

struct SampleTrace {
  int index = 0;
  bool warmup = false;
  std::string answer;  // "" when none
  std::string finish_reason;
  int tokens = 0;
  double confidence = 0;  // lowest group confidence (the vote weight)
  double mean_confidence = 0;
  bool stopped_early = false;
};

struct Vote {
  std::string answer;
  int count = 0;
  double weight = 0;
};

struct SelfConsistency {
  bool computed = false;
  std::string skipped;
  int samples = 0;
  std::optional<double> threshold;  // group confidence below which a trace is stopped
  std::vector<SampleTrace> traces;
  std::vector<Vote> votes;  // heaviest first
  std::string majority, weighted_winner;
  double agreement = 0;               // share of voting traces that give the weighted winner
  bool winner_matches_trace = false;  // the weighted winner is the analysed trace's answer
  int64_t tokens_generated = 0;
  int64_t tokens_saved = 0;  // estimated: stopped traces x (mean full length - their length)
  double seconds = 0;
};

struct TraceSummary {
  int prompt_tokens = 0, generated_tokens = 0, thinking_tokens = 0, answer_tokens = 0;
  double mean_confidence = 0, lowest_group_confidence = 0, tail_confidence = 0, mean_entropy = 0;
};

// Steps singled out by a rule (index into Report::steps, -1 when none).
struct StepFlags {
  int lowest_confidence = -1;        // lowest mean confidence
  int lowest_group_confidence = -1;  // lowest sliding-window confidence
  int least_likely_token = -1;       // holds the written token the model found least likely
  int most_important = -1;
  int decisive = -1;      // where the answer was decided (early-answer curve)
  int final_result = -1;  // computes the final result (heuristic, integer answers)
};

struct Report {
  std::string model;
  std::string question;
  std::string reasoning, content, finish_reason;
  TraceSummary summary;
  std::vector<TraceToken> trace;
  AnswerInfo answer;
  std::vector<Step> steps;
  StepFlags flags;
  EarlyAnswer early_answer;
  Importance importance;
  PromptAttribution attribution;
  LogitLens logit_lens;
  std::vector<AttentionMap> attention_maps;
  SelfConsistency self_consistency;
  AnalysisOptions options;
  int64_t tokens_evaluated = 0;  // by every analysis together
  double seconds = 0;
};

// Analyses a generation. The session's context is brought to hold the
// prompt and the trace (nothing is evaluated when it already does, as right
// after session.generate()). Self-consistency samples run on the session
// last, so afterwards its context holds the last sample.
Report analyze(ChatSession& session, const TraceRecord& trace, const AnalysisOptions& options = {});
// The same without a session (e.g. a server's spare context on the same
// model): the context is filled with the trace from scratch, and
// self-consistency sampling is skipped (it needs a session to generate).
Report analyze(const Model& model, Context& context, const TraceRecord& trace, const AnalysisOptions& options = {});

// Last integer in the text ("-?\d+"), with its byte range.
struct IntegerMatch {
  long long value = 0;
  size_t begin = 0, end = 0;
};
std::optional<IntegerMatch> last_integer(std::string_view text);

// JSON report (schema: docs/analysis-report.md).
nlohmann::ordered_json to_json(const Report& report);
// Readable summary: step table with confidence bars, the decisive step, the
// most important steps and question words.
std::string render_summary(const Report& report, bool color);
// Serialises JSON, replacing invalid UTF-8 (a token may hold part of a
// character) instead of throwing.
std::string dump_json(const nlohmann::ordered_json& json, int indent = -1);

}  // namespace glassbox::analysis
