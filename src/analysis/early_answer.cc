// Early-answer curve (Lanham et al. 2023, "Measuring Faithfulness in
// Chain-of-Thought Reasoning"): the thinking is cut after each step, the
// text that really followed the thinking is forced, and the final answer is
// scored there. Each point forks the main context at the cut, so the prompt
// and the thinking are never evaluated again: a point costs the forced
// tokens plus the greedy tokens that leave the forced path.
#include <algorithm>
#include <cmath>

#include "analysis/internal.h"

namespace glassbox::analysis::detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Greedy decoding of an integer answer is done once a digit run has ended.
bool integer_finished(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && !is_digit(text[i])) ++i;
  if (i == text.size()) return false;
  while (i < text.size() && is_digit(text[i])) ++i;
  return i < text.size();
}

// First integer of the greedy text.
std::optional<long long> first_integer(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && !is_digit(text[i])) ++i;
  if (i == text.size()) return std::nullopt;
  size_t j = i;
  while (j < text.size() && is_digit(text[j])) ++j;
  if (i > 0 && text[i - 1] == '-') --i;
  const auto m = last_integer(std::string_view(text).substr(i, j - i));
  if (!m) return std::nullopt;
  return m->value;
}

}  // namespace

EarlyAnswer early_answer_curve(Workspace& ws, const std::vector<Step>& steps, const AnswerInfo& answer,
                               int thinking_begin) {
  EarlyAnswer out;
  if (steps.empty()) {
    out.skipped = "no thinking to cut";
    return out;
  }
  if (!answer.found) {
    out.skipped = "no answer after the thinking";
    return out;
  }
  if (answer.bridge_begin < 0 || answer.bridge_begin >= answer.token_begin) {
    out.skipped = "nothing between the thinking and the answer to force";
    return out;
  }
  const auto t0 = Clock::now();
  const int64_t evaluated_before = ws.work.tokens_evaluated();
  const AnalysisOptions& o = ws.options;
  // Forced after every cut: the bridge ("</think>\n\nThe answer is "), then
  // the answer tokens, teacher-forced.
  std::vector<TokenId> forced;
  for (const TokenId id : ws.trace_ids(answer.bridge_begin, answer.token_end)) forced.push_back(id);
  const int bridge_len = answer.token_begin - answer.bridge_begin;
  const int answer_len = answer.token_end - answer.token_begin;
  const int greedy_limit = answer.value ? o.greedy_max_tokens : answer_len;

  std::vector<std::pair<int, int>> cuts;  // (after_step, trace index of the cut)
  cuts.emplace_back(-1, thinking_begin);
  for (const Step& s : steps) cuts.emplace_back(s.index, s.token_end);

  for (const auto& [after_step, cut] : cuts) {
    EarlyAnswerPoint p;
    p.after_step = after_step;
    p.position = ws.position_of(cut);
    ws.fork_eval(p.position, forced);
    for (int k = 0; k < answer_len; ++k) p.logprob += ws.logprob(bridge_len - 1 + k, forced[bridge_len + k]);
    p.probability = std::exp(p.logprob);

    // Greedy answer: rows of the forced pass serve while greedy agrees with
    // the answer; after the first disagreement, one token at a time.
    std::vector<TokenId> greedy;
    bool on_forced_path = true;
    for (int s = 0; s < greedy_limit; ++s) {
      const float* logits = on_forced_path ? ws.work.logits(bridge_len - 1 + s) : ws.work.logits();
      const TokenId g = argmax(logits, ws.work.n_vocab());
      if (ws.tok.is_end_of_generation(g)) break;
      greedy.push_back(g);
      p.greedy_text += ws.tok.token_bytes(g, true);
      if (answer.value && integer_finished(p.greedy_text)) break;
      if (s + 1 == greedy_limit) break;
      if (on_forced_path && s < answer_len && g == forced[bridge_len + s]) continue;
      if (on_forced_path) {
        ws.work.truncate(p.position + bridge_len + s);
        on_forced_path = false;
      }
      ws.work.eval(std::span<const TokenId>(&g, 1));
      ++out.greedy_tokens_evaluated;
    }
    if (answer.value) {
      p.greedy_answer = first_integer(p.greedy_text);
      p.greedy_matches = p.greedy_answer == answer.value;
    } else {
      p.greedy_matches = std::equal(greedy.begin(), greedy.end(), forced.begin() + bridge_len, forced.end()) &&
                         static_cast<int>(greedy.size()) == answer_len;
    }
    out.points.push_back(std::move(p));
  }
  // Decided: the first point from which the probability stays >= threshold.
  for (int i = static_cast<int>(out.points.size()) - 1; i >= 0; --i) {
    if (out.points[i].probability < o.decision_threshold) break;
    out.decided_step = out.points[i].after_step;
  }
  out.computed = true;
  out.tokens_evaluated = ws.work.tokens_evaluated() - evaluated_before;
  out.seconds = seconds_since(t0);
  return out;
}

}  // namespace glassbox::analysis::detail
