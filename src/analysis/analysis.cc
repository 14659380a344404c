#include "analysis/analysis.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>

#include "analysis/internal.h"
#include "base/error.h"

namespace glassbox::analysis {
namespace detail {

Workspace::Workspace(const Model& m, Context& main_context, const TraceRecord& rec, const AnalysisOptions& opts)
    : model(m),
      tok(m.tokenizer()),
      main(main_context),
      // Sized for the sequence plus what a fork may add (greedy or resampled
      // tokens), not the main context's whole size: its KV cache is memory.
      // The main context's precision and KV type, so that forks compute as
      // the run did (a fork into another type would convert the rows).
      work(m, ContextOptions{std::min(main_context.n_ctx(),
                                      static_cast<int>(rec.result.prompt_tokens.size() + rec.result.trace.size()) +
                                          opts.greedy_max_tokens + opts.resample_max_tokens + 8),
                             256, main_context.pool().size(), main_context.precision(), main_context.kv_cache_type()}),
      record(rec),
      result(rec.result),
      options(opts) {
  sequence = result.prompt_tokens;
  prompt_len = static_cast<int>(sequence.size());
  for (const TraceToken& t : result.trace) sequence.push_back(t.id);
}

void Workspace::fork_eval(int position, std::span<const TokenId> tokens) {
  work.fork_from(main, position);
  work.eval(tokens, /*all_logits=*/true);
}

double Workspace::logprob(int row, TokenId id) const {
  // The session's fast statistics (one vectorised pass): rows are scored by
  // the thousand in occlusion and importance.
  return trace_token_stats(work.logits(row), work.n_vocab(), id, 0).chosen_logprob;
}

TokenId argmax(const float* logits, int n_vocab) {
  TokenId best = 0;
  for (TokenId id = 1; id < n_vocab; ++id)
    if (logits[id] > logits[best]) best = id;
  return best;
}

std::vector<std::pair<size_t, size_t>> split_words(std::string_view text) {
  std::vector<std::pair<size_t, size_t>> words;
  auto is_word_byte = [](unsigned char c) { return std::isalnum(c) || c >= 0x80; };
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isspace(c)) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    if (is_word_byte(c))
      while (j < text.size() && is_word_byte(static_cast<unsigned char>(text[j]))) ++j;
    words.emplace_back(i, j);
    i = j;
  }
  return words;
}

}  // namespace detail

namespace {

using detail::Workspace;

void validate(const AnalysisOptions& o) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error("analysis option " + what);
  };
  require(o.steps.tail_tokens >= 1, "tail_tokens must be >= 1");
  require(o.steps.group_window >= 1, "group_window must be >= 1");
  require(o.trace_group_window >= 1, "trace_group_window must be >= 1");
  require(o.decision_threshold > 0 && o.decision_threshold < 1, "decision_threshold must be in (0, 1)");
  require(o.greedy_max_tokens >= 1 && o.greedy_max_tokens <= 256, "greedy_max_tokens must be in [1, 256]");
  require(o.resamples >= 0 && o.resamples <= 1000, "resamples must be in [0, 1000]");
  require(o.resample_max_tokens >= 1, "resample_max_tokens must be >= 1");
  require(o.max_occlusion_words >= 0, "max_occlusion_words must be >= 0");
  require(o.samples >= 0 && o.samples <= 10000, "samples must be in [0, 10000]");
  require(o.warmup_samples >= 1, "warmup_samples must be >= 1");
  require(o.keep_fraction > 0 && o.keep_fraction <= 1, "keep_fraction must be in (0, 1]");
  glassbox::validate(o.sampling);
}

// The last user message with text content.
std::string question_of(const nlohmann::ordered_json& messages) {
  if (!messages.is_array()) return "";
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->is_object() && it->value("role", "") == "user" && it->contains("content") && (*it)["content"].is_string())
      return (*it)["content"].get<std::string>();
  }
  return "";
}

AnswerInfo find_answer(const ChatResult& r, const Tokenizer& tok, int thinking_end) {
  AnswerInfo a;
  // Reply tokens after the thinking; end-of-generation tokens are not text.
  std::vector<int> idx;
  std::vector<size_t> offset;
  std::string text;
  const int from = std::max(thinking_end, 0);
  for (int i = from; i < static_cast<int>(r.trace.size()); ++i) {
    const TraceToken& t = r.trace[i];
    if (t.phase != TokenPhase::Answer && t.phase != TokenPhase::BeforeThinking) continue;
    if (tok.is_end_of_generation(t.id)) continue;
    idx.push_back(i);
    offset.push_back(text.size());
    text += t.text;
  }
  if (idx.empty()) return a;
  offset.push_back(text.size());
  size_t first = 0, last = idx.size();  // positions in idx, [first, last)
  if (const auto m = last_integer(text)) {
    a.value = m->value;
    while (offset[first + 1] <= m->begin) ++first;
    last = first + 1;
    while (last < idx.size() && offset[last] < m->end) ++last;
    a.text = text.substr(m->begin, m->end - m->begin);
  } else {
    // No number: the whole reply is the answer, leading layout excluded.
    while (first < idx.size() && r.trace[idx[first]].text.find_first_not_of(" \t\r\n") == std::string::npos) ++first;
    if (first == idx.size()) return a;
    a.text = text.substr(offset[first]);
  }
  a.found = true;
  a.token_begin = idx[first];
  a.token_end = idx[last - 1] + 1;
  a.bridge_begin = thinking_end;
  if (thinking_end >= 0) {
    for (int i = thinking_end; i < a.token_begin; ++i) a.bridge_text += r.trace[i].text;
  }
  for (int i = a.token_begin; i < a.token_end; ++i) a.logprob += r.trace[i].logprob;
  return a;
}

// Start of the final run of compute steps whose result is the answer
// (sign ignored: "10+16=26" computes -26 after "-10-16=-(10+16)").
int final_result_step(const std::vector<Step>& steps, const AnswerInfo& answer) {
  if (!answer.value) return -1;
  const long long target = *answer.value < 0 ? -*answer.value : *answer.value;
  int found = -1;
  for (int i = static_cast<int>(steps.size()) - 1; i >= 0; --i) {
    if (!steps[i].result) continue;
    const long long r = *steps[i].result < 0 ? -*steps[i].result : *steps[i].result;
    if (r != target) break;
    found = i;
  }
  return found;
}

}  // namespace

std::optional<IntegerMatch> last_integer(std::string_view text) {
  std::optional<IntegerMatch> last;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') {
      ++i;
      continue;
    }
    size_t begin = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (begin > 0 && text[begin - 1] == '-') --begin;
    long long value = 0;
    const auto [ptr, ec] = std::from_chars(text.data() + begin, text.data() + i, value);
    if (ec == std::errc() && ptr == text.data() + i) {
      last = IntegerMatch{value, begin, i};
    } else {
      last.reset();  // out of range: not a usable number (as the CLI's eval)
    }
  }
  return last;
}

AttentionRequest parse_attention_request(const std::string& text) {
  auto fail = [&](const std::string& why) -> AttentionRequest {
    throw Error("attention request '" + text + "': " + why + " (expected LAYER:HEAD[:QBEGIN-QEND[:KBEGIN-KEND]])");
  };
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() < 2 || parts.size() > 4) return fail("wrong number of fields");
  auto number = [&](const std::string& s, const char* what) {
    int v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < 0) fail(std::string("bad ") + what);
    return v;
  };
  auto range = [&](const std::string& s, const char* what, int& b, int& e) {
    const size_t dash = s.find('-');
    if (dash == std::string::npos) fail(std::string("bad ") + what + " range");
    b = number(s.substr(0, dash), what);
    e = number(s.substr(dash + 1), what);
    if (e <= b) fail(std::string("empty ") + what + " range");
  };
  AttentionRequest r;
  r.layer = number(parts[0], "layer");
  r.head = parts[1] == "*" ? -1 : number(parts[1], "head");
  if (parts.size() >= 3) range(parts[2], "query", r.query_begin, r.query_end);
  if (parts.size() >= 4) range(parts[3], "key", r.key_begin, r.key_end);
  return r;
}

namespace {

// `hold` makes `main` hold the given tokens and returns how many it evaluated.
Report analyze_impl(const Model& model, Context& main, ChatSession* session, const TraceRecord& record,
                    const AnalysisOptions& options, const std::function<int64_t(std::span<const TokenId>)>& hold) {
  validate(options);
  if (!model.has_tokenizer()) throw Error("the model has no tokenizer");
  const auto t0 = detail::Clock::now();
  const ChatResult& r = record.result;
  const Tokenizer& tok = model.tokenizer();
  Report rep;
  rep.model = record.model;
  rep.question = question_of(record.messages);
  rep.reasoning = r.reasoning;
  rep.content = r.content;
  rep.finish_reason = r.finish_reason;
  rep.trace = r.trace;
  rep.options = options;
  if (r.prompt_tokens.empty()) throw Error("the trace has no prompt tokens");

  // Whole-trace statistics.
  TraceSummary& sum = rep.summary;
  sum.prompt_tokens = static_cast<int>(r.prompt_tokens.size());
  sum.generated_tokens = static_cast<int>(r.trace.size());
  const auto [think_begin, think_end] = thinking_range(r.trace);
  sum.thinking_tokens = think_begin < 0 ? 0 : think_end - think_begin;
  if (!r.trace.empty()) {
    double conf = 0, entropy = 0;
    for (const TraceToken& t : r.trace) {
      conf += t.confidence;
      entropy += t.entropy;
    }
    sum.mean_confidence = conf / static_cast<double>(r.trace.size());
    sum.mean_entropy = entropy / static_cast<double>(r.trace.size());
    sum.lowest_group_confidence = lowest_group_confidence(r.trace, options.trace_group_window);
    const size_t tail = std::min<size_t>(static_cast<size_t>(options.trace_group_window), r.trace.size());
    double tail_sum = 0;
    for (size_t i = r.trace.size() - tail; i < r.trace.size(); ++i) tail_sum += r.trace[i].confidence;
    sum.tail_confidence = tail_sum / static_cast<double>(tail);
  }

  rep.steps = build_steps(r.trace, think_begin, think_end, options.steps);
  rep.answer = find_answer(r, tok, think_end);
  if (rep.answer.found) sum.answer_tokens = rep.answer.token_end - rep.answer.token_begin;

  if (r.trace.empty()) {
    rep.early_answer.skipped = rep.importance.skipped = rep.attribution.skipped = rep.logit_lens.skipped =
        "nothing was generated";
    rep.seconds = detail::seconds_since(t0);
    return rep;
  }

  // The session's context must hold the prompt and the trace; the last
  // generated token's K/V are never needed (nothing after it is scored).
  const size_t held = r.prompt_tokens.size() + r.trace.size() - 1;
  {
    std::vector<TokenId> sequence = r.prompt_tokens;
    for (const TraceToken& t : r.trace) sequence.push_back(t.id);
    sequence.resize(held);
    rep.tokens_evaluated += hold(sequence);
  }

  Workspace ws(model, main, record, options);
  std::optional<double> baseline;
  if (options.early_answer) {
    rep.early_answer = detail::early_answer_curve(ws, rep.steps, rep.answer, think_begin);
    if (rep.early_answer.computed) baseline = rep.early_answer.points.back().logprob;
  } else {
    rep.early_answer.skipped = "not requested";
  }
  if (options.importance) {
    rep.importance = detail::step_importance(ws, rep.steps, rep.answer, baseline);
  } else {
    rep.importance.skipped = "not requested";
  }
  if (options.occlusion || options.attention) {
    rep.attribution = detail::prompt_attribution(ws, rep.question, rep.answer);
  } else {
    rep.attribution.skipped = "not requested";
  }
  if (options.logit_lens) {
    rep.logit_lens = detail::logit_lens(ws, rep.answer);
  } else {
    rep.logit_lens.skipped = "not requested";
  }
  rep.attention_maps = detail::attention_maps(ws, rep.answer);
  rep.tokens_evaluated += ws.work.tokens_evaluated();

  // Flags.
  StepFlags& f = rep.flags;
  for (int i = 0; i < static_cast<int>(rep.steps.size()); ++i) {
    const Step& s = rep.steps[i];
    if (f.lowest_confidence < 0 || s.mean_confidence < rep.steps[f.lowest_confidence].mean_confidence)
      f.lowest_confidence = i;
    if (f.lowest_group_confidence < 0 ||
        s.lowest_group_confidence < rep.steps[f.lowest_group_confidence].lowest_group_confidence)
      f.lowest_group_confidence = i;
    if (f.least_likely_token < 0 || s.min_logprob < rep.steps[f.least_likely_token].min_logprob)
      f.least_likely_token = i;
  }
  if (rep.importance.computed && !rep.importance.top.empty()) f.most_important = rep.importance.top.front();
  if (rep.early_answer.decided_step && *rep.early_answer.decided_step >= 0) f.decisive = *rep.early_answer.decided_step;
  f.final_result = final_result_step(rep.steps, rep.answer);

  if (options.samples > 0 && session) {
    const int64_t before = main.tokens_evaluated();
    rep.self_consistency = detail::self_consistency(*session, record, options, rep.answer);
    rep.tokens_evaluated += main.tokens_evaluated() - before;
  } else {
    rep.self_consistency.skipped = options.samples > 0 ? "sampling needs a chat session" : "not requested";
  }
  rep.seconds = detail::seconds_since(t0);
  return rep;
}

}  // namespace

Report analyze(ChatSession& session, const TraceRecord& record, const AnalysisOptions& options) {
  return analyze_impl(session.model(), session.context(), &session, record, options,
                      [&](std::span<const TokenId> tokens) {
                        const int64_t before = session.context().tokens_evaluated();
                        session.sync_tokens(tokens);
                        return session.context().tokens_evaluated() - before;
                      });
}

Report analyze(const Model& model, Context& context, const TraceRecord& record, const AnalysisOptions& options) {
  return analyze_impl(model, context, nullptr, record, options, [&](std::span<const TokenId> tokens) {
    if (static_cast<int64_t>(tokens.size()) > context.n_ctx())
      throw Error("the trace (" + std::to_string(tokens.size()) + " tokens) does not fit the context of " +
                  std::to_string(context.n_ctx()) + " tokens");
    const int64_t before = context.tokens_evaluated();
    context.truncate(0);
    context.eval(tokens);
    return context.tokens_evaluated() - before;
  });
}

}  // namespace glassbox::analysis
