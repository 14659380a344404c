// Step importance, counterfactual (after Thought Anchors, Bogdan et al.
// 2025): how much the final answer's log-probability changes when a step is
// removed from the thinking, or replaced by K resampled versions of it. The
// steps after it and the text up to the answer are kept as generated
// (teacher-forced), so the change is the step's own contribution.
#include <algorithm>
#include <cmath>
#include <limits>

#include "analysis/internal.h"

namespace glassbox::analysis::detail {
namespace {

// Where a resampled step ends (the splitter's rule, one token at a time).
bool ends_step(const std::string& text, StepSplit mode) {
  if (text.find('\n') != std::string::npos || text.find('\r') != std::string::npos) return true;
  if (mode == StepSplit::Sentences && !text.empty()) {
    const char c = text.back();
    return c == '.' || c == '!' || c == '?';
  }
  return false;
}

double log_mean_exp(const std::vector<double>& values) {
  const double m = *std::max_element(values.begin(), values.end());
  if (m == -std::numeric_limits<double>::infinity()) return m;
  double s = 0;
  for (double v : values) s += std::exp(v - m);
  return m + std::log(s / static_cast<double>(values.size()));
}

std::vector<int> top_steps(const std::vector<StepImportance>& steps, int n) {
  std::vector<int> order;
  for (const StepImportance& s : steps)
    if (s.importance > 0) order.push_back(s.step);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return steps[a].importance > steps[b].importance; });
  if (static_cast<int>(order.size()) > n) order.resize(n);
  return order;
}

}  // namespace

Importance step_importance(Workspace& ws, const std::vector<Step>& steps, const AnswerInfo& answer,
                           std::optional<double> baseline) {
  Importance out;
  if (steps.empty()) {
    out.skipped = "no thinking steps";
    return out;
  }
  if (!answer.found || answer.bridge_begin < 0 || answer.bridge_begin >= answer.token_begin) {
    out.skipped = "no answer after the thinking";
    return out;
  }
  const auto t0 = Clock::now();
  const int64_t evaluated_before = ws.work.tokens_evaluated();
  const AnalysisOptions& o = ws.options;
  const int n_vocab = ws.work.n_vocab();

  // log P(answer) after evaluating `tokens` at `position`, where the answer
  // starts at index `answer_at` of `tokens` (>= 1).
  auto answer_logprob = [&](int position, const std::vector<TokenId>& tokens, int answer_at) {
    ws.fork_eval(position, tokens);
    double lp = 0;
    for (int k = 0; k < answer.token_end - answer.token_begin; ++k)
      lp += ws.logprob(answer_at - 1 + k, tokens[static_cast<size_t>(answer_at + k)]);
    return lp;
  };

  if (!baseline) {
    const int cut = steps.back().token_end;
    const auto ids = ws.trace_ids(cut, answer.token_end);
    baseline = answer_logprob(ws.position_of(cut), {ids.begin(), ids.end()}, answer.token_begin - cut);
  }
  out.baseline_logprob = *baseline;
  out.resamples = o.resamples;

  std::vector<float> row(static_cast<size_t>(n_vocab));
  for (const Step& step : steps) {
    StepImportance si;
    si.step = step.index;
    // Removed: the thinking goes on from before the step with what followed it.
    const auto rest = ws.trace_ids(step.token_end, answer.token_end);
    const std::vector<TokenId> rest_tokens(rest.begin(), rest.end());
    si.removed_logprob =
        answer_logprob(ws.position_of(step.token_begin), rest_tokens, answer.token_begin - step.token_end);
    si.removed_delta = out.baseline_logprob - si.removed_logprob;

    if (o.resamples > 0) {
      // Logits at the step's start: re-evaluate the one token before it.
      const int start = ws.position_of(step.token_begin);
      const TokenId before = ws.sequence[static_cast<size_t>(start - 1)];
      ws.fork_eval(start - 1, std::span<const TokenId>(&before, 1));
      std::copy_n(ws.work.logits(), n_vocab, row.begin());
      std::vector<TokenId> history(ws.sequence.begin(), ws.sequence.begin() + start);
      const auto original = ws.trace_ids(step.token_begin, step.token_end);
      std::vector<double> logprobs;
      for (int k = 0; k < o.resamples; ++k) {
        SamplingParams params = o.sampling;
        params.seed = o.sampling.seed + 1000003ull * static_cast<uint64_t>(step.index + 1) + static_cast<uint64_t>(k);
        Sampler sampler(params, n_vocab);
        ws.work.truncate(start);
        std::vector<TokenId> sampled;
        std::string text;
        const float* logits = row.data();
        bool pending = false;  // the last sampled token is not evaluated yet
        std::vector<TokenId> h = history;
        for (int n = 0; n < o.resample_max_tokens; ++n) {
          const TokenId id = sampler.sample(logits, n_vocab, h);
          const std::string piece = ws.tok.token_bytes(id, true);
          // The thinking or the reply ending is not part of a step.
          if (ws.tok.is_end_of_generation(id) || ws.result.trace[static_cast<size_t>(answer.bridge_begin)].id == id)
            break;
          sampled.push_back(id);
          h.push_back(id);
          text += piece;
          if (ends_step(piece, o.steps.split) || n + 1 == o.resample_max_tokens) {
            pending = true;
            break;
          }
          ws.work.eval(std::span<const TokenId>(&id, 1));
          logits = ws.work.logits();
        }
        const bool identical = std::equal(sampled.begin(), sampled.end(), original.begin(), original.end());
        si.identical_resamples += identical;
        si.resampled_texts.push_back(text);
        // A resample that rewrote the step word for word is no counterfactual.
        if (identical) continue;
        // Then the rest as generated, teacher-forced, from the current state.
        std::vector<TokenId> tail;
        if (pending) tail.push_back(sampled.back());
        const int answer_at = static_cast<int>(tail.size()) + (answer.token_begin - step.token_end);
        tail.insert(tail.end(), rest_tokens.begin(), rest_tokens.end());
        ws.work.eval(tail, /*all_logits=*/true);
        double lp = 0;
        for (int j = 0; j < answer.token_end - answer.token_begin; ++j)
          lp += ws.logprob(answer_at - 1 + j, tail[static_cast<size_t>(answer_at + j)]);
        logprobs.push_back(lp);
      }
      if (!logprobs.empty()) {
        si.resampled_logprob = log_mean_exp(logprobs);
        si.resampled_delta = out.baseline_logprob - *si.resampled_logprob;
      }
    }
    out.steps.push_back(std::move(si));
  }
  // Normalised importance: positive deltas share 1. Deltas under the noise
  // floor (float evaluation differences) count as none.
  constexpr double kNoiseFloor = 1e-3;
  auto positive = [&](double delta) { return delta > kNoiseFloor ? delta : 0.0; };
  double removed_total = 0, resampled_total = 0;
  for (const StepImportance& s : out.steps) {
    removed_total += positive(s.removed_delta);
    if (s.resampled_delta) resampled_total += positive(*s.resampled_delta);
  }
  for (StepImportance& s : out.steps) {
    s.importance = removed_total > 0 ? positive(s.removed_delta) / removed_total : 0.0;
    if (o.resamples > 0)
      s.resampled_importance = resampled_total > 0 ? positive(s.resampled_delta.value_or(0)) / resampled_total : 0.0;
  }
  out.top = top_steps(out.steps, 3);
  out.computed = true;
  out.tokens_evaluated = ws.work.tokens_evaluated() - evaluated_before;
  out.seconds = seconds_since(t0);
  return out;
}

}  // namespace glassbox::analysis::detail
