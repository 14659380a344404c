// Shared state of one analysis run (not part of the public API).
#pragma once

#include <chrono>
#include <span>
#include <vector>

#include "analysis/analysis.h"
#include "model/model.h"

namespace glassbox::analysis::detail {

// The analysed sequence and a second context for forks. `main` holds the
// prompt and the trace (all but the last generated token); every analysis
// forks `work` from it and evaluates only what differs.
struct Workspace {
  Workspace(const Model& model, Context& main, const TraceRecord& record, const AnalysisOptions& options);

  const Model& model;
  const Tokenizer& tok;
  Context& main;
  Context work;
  const TraceRecord& record;
  const ChatResult& result;
  const AnalysisOptions& options;
  std::vector<TokenId> sequence;  // prompt tokens, then every generated token
  int prompt_len = 0;

  int position_of(int trace_index) const { return prompt_len + trace_index; }
  // Forks `work` at `position` and evaluates `tokens` there, keeping all
  // logit rows (row i predicts the token after tokens[i]).
  void fork_eval(int position, std::span<const TokenId> tokens);
  // log P(id) under logit row `row` of `work`.
  double logprob(int row, TokenId id) const;
  // Trace ids [begin, end).
  std::span<const TokenId> trace_ids(int begin, int end) const {
    return std::span<const TokenId>(sequence).subspan(static_cast<size_t>(prompt_len + begin),
                                                      static_cast<size_t>(end - begin));
  }
};

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Index of the largest logit (ties: the lowest id).
TokenId argmax(const float* logits, int n_vocab);

// The analyses, in the order analyze() runs them.
EarlyAnswer early_answer_curve(Workspace& ws, const std::vector<Step>& steps, const AnswerInfo& answer,
                               int thinking_begin);
Importance step_importance(Workspace& ws, const std::vector<Step>& steps, const AnswerInfo& answer,
                           std::optional<double> baseline);
PromptAttribution prompt_attribution(Workspace& ws, const std::string& question, const AnswerInfo& answer);
LogitLens logit_lens(Workspace& ws, const AnswerInfo& answer);
std::vector<AttentionMap> attention_maps(Workspace& ws, const AnswerInfo& answer);
SelfConsistency self_consistency(ChatSession& session, const TraceRecord& record, const AnalysisOptions& options,
                                 const AnswerInfo& answer);

// Words of a question: runs of letters/digits (bytes >= 0x80 count as
// letters), and every other non-space character on its own.
std::vector<std::pair<size_t, size_t>> split_words(std::string_view text);

}  // namespace glassbox::analysis::detail
