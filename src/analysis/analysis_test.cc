// Exactness of the analysis on a reference random model (rand-qwen3.f32):
// every number the report gives is recomputed here from raw logits of an
// independent fresh context (full evaluation of the modified sequence, plain
// double-precision softmax), and the evaluated-token counts show that forks
// reuse the cached prefix.
#include "analysis/analysis.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>

#include "analysis/trace_io.h"
#include "base/error.h"

namespace glassbox::analysis {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
const fs::path kRef = fs::path(GLASSBOX_TEST_DATA) / "reference";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Plain double-precision statistics of one logit row.
struct RowStats {
  double logprob, entropy, confidence;
  std::vector<TokenId> top;
};

RowStats row_stats(const float* logits, int n_vocab, TokenId chosen, int k) {
  double max = logits[0];
  for (int i = 1; i < n_vocab; ++i) max = std::max<double>(max, logits[i]);
  double z = 0;
  for (int i = 0; i < n_vocab; ++i) z += std::exp(logits[i] - max);
  const double lse = max + std::log(z);
  RowStats s{};
  s.logprob = logits[chosen] - lse;
  for (int i = 0; i < n_vocab; ++i) {
    const double lp = logits[i] - lse;
    s.entropy -= std::exp(lp) * lp;
  }
  std::vector<TokenId> order(static_cast<size_t>(n_vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](TokenId a, TokenId b) { return logits[a] > logits[b]; });
  double sum = 0;
  for (int i = 0; i < k; ++i) sum += logits[order[i]] - lse;
  s.confidence = -sum / k;
  s.top.assign(order.begin(), order.begin() + k);
  return s;
}

// The session's fast per-token statistics equal compute_token_stats'.
TEST(TraceStats, MatchComputeTokenStats) {
  std::mt19937 rng(5);
  for (const int n : {1, 7, 8, 9, 512, 1031, 5000}) {
    for (const float scale : {0.1f, 3.0f, 40.0f}) {
      std::normal_distribution<float> dist(0.0f, scale);
      std::vector<float> row(static_cast<size_t>(n));
      for (float& x : row) x = dist(rng);
      if (n > 9) {
        row[3] = -std::numeric_limits<float>::infinity();  // masked
        row[5] = row[6];                                   // a tie
      }
      for (const int k : {0, 1, 20, n + 3}) {
        const TokenId chosen = static_cast<TokenId>(n / 2);
        const TokenStats want = compute_token_stats(row.data(), n, chosen, k);
        const TokenStats got = trace_token_stats(row.data(), n, chosen, k);
        EXPECT_NEAR(got.chosen_logprob, want.chosen_logprob, 1e-5 * (1 + std::fabs(want.chosen_logprob)));
        EXPECT_NEAR(got.entropy, want.entropy, 1e-5);
        EXPECT_NEAR(got.confidence, want.confidence, 1e-5 * (1 + std::fabs(want.confidence)));
        ASSERT_EQ(got.top.size(), want.top.size()) << n << " " << k;
        for (size_t i = 0; i < got.top.size(); ++i) {
          EXPECT_EQ(got.top[i].id, want.top[i].id) << n << " " << k << " " << i;
          if (std::isfinite(want.top[i].logprob)) {
            EXPECT_NEAR(got.top[i].logprob, want.top[i].logprob, 1e-5 * (1 + std::fabs(want.top[i].logprob)));
          }
        }
      }
    }
  }
  std::vector<float> row(16, 0.5f);
  EXPECT_THROW(trace_token_stats(row.data(), 16, 16, 20), Error);
  EXPECT_THROW(trace_token_stats(row.data(), 16, 0, -1), Error);
  row[9] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(trace_token_stats(row.data(), 16, 0, 20), Error);
  row[9] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(trace_token_stats(row.data(), 16, 0, 20), Error);
  std::fill(row.begin(), row.end(), -std::numeric_limits<float>::infinity());
  EXPECT_THROW(trace_token_stats(row.data(), 16, 0, 20), Error);
}

class AnalysisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load((kRef / "models" / "rand-qwen3.f32.gguf").string()).release(); }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }

  ChatOptions options(uint64_t seed) const {
    ChatOptions o;
    o.template_override = slurp(kRef / "templates" / "templates" / "Qwen-Qwen3-0.6B.jinja");
    o.sampling.temperature = 1.0f;
    o.sampling.top_k = 0;
    o.sampling.top_p = 1.0f;
    o.sampling.min_p = 0.0f;
    o.sampling.seed = seed;
    return o;
  }

  // A trace whose thinking is forced (so it has steps, a backtrack and a
  // number), followed by a few sampled answer tokens.
  TraceRecord forced_trace(ChatSession& session) const {
    TraceRecord rec;
    rec.model = "rand-qwen3.f32.gguf";
    rec.messages = ojson::parse(R"([{"role":"user","content":"What is 2 + 3 * 4?"}])");
    rec.options = options(7);
    rec.options.assistant_prefix =
        "<think>\nWe need 2 + 3 * 4.\n3*4=12\nWait, check: 12/4=3\n2+12=14\n</think>\n\nThe answer is 14";
    const int prefix_tokens =
        static_cast<int>(model_->tokenizer().encode(rec.options.assistant_prefix, true, false).size());
    rec.options.max_tokens = prefix_tokens + 3;
    rec.result = session.generate(rec.messages, rec.options);
    return rec;
  }

  // Logits of every position of `tokens` in a fresh context.
  std::vector<float> all_logits(const std::vector<TokenId>& tokens) const {
    Context ctx(*model_, ContextOptions{static_cast<int>(tokens.size()) + 8, 512, 1});
    ctx.eval(tokens, true);
    return std::vector<float>(ctx.logits(0), ctx.logits(0) + tokens.size() * static_cast<size_t>(ctx.n_vocab()));
  }

  // Independent log P(tokens[from, to)) of a sequence.
  double logprob_of(const std::vector<TokenId>& tokens, int from, int to) const {
    const std::vector<float> logits = all_logits(tokens);
    const int V = model_->config().n_vocab;
    double lp = 0;
    for (int i = from; i < to; ++i) lp += row_stats(&logits[static_cast<size_t>(i - 1) * V], V, tokens[i], 1).logprob;
    return lp;
  }

  static std::vector<TokenId> sequence_of(const ChatResult& r) {
    std::vector<TokenId> s = r.prompt_tokens;
    for (const TraceToken& t : r.trace) s.push_back(t.id);
    return s;
  }

  static Model* model_;
};

Model* AnalysisTest::model_ = nullptr;

TEST_F(AnalysisTest, ForcedPrefixIsTracedAndClassified) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  const ChatResult& r = rec.result;
  ASSERT_GT(r.trace.size(), 10u);
  EXPECT_EQ(r.trace.front().phase, TokenPhase::OpenMarker);
  EXPECT_TRUE(r.trace.front().from_prefix);
  EXPECT_EQ(r.reasoning, "We need 2 + 3 * 4.\n3*4=12\nWait, check: 12/4=3\n2+12=14");
  EXPECT_EQ(r.content.rfind("The answer is 14", 0), 0u) << r.content;
  EXPECT_FALSE(r.trace.back().from_prefix);  // the sampled tail
  EXPECT_EQ(r.finish_reason, "length");
}

// Item 1 and 2: the trace's statistics and the steps' aggregates, from raw logits.
TEST_F(AnalysisTest, TraceAndStepStatisticsMatchRawLogits) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  const ChatResult& r = rec.result;
  const std::vector<TokenId> seq = sequence_of(r);
  const std::vector<float> logits = all_logits(seq);
  const int V = model_->config().n_vocab;
  const int P = static_cast<int>(r.prompt_tokens.size());
  std::vector<RowStats> raw;
  for (size_t j = 0; j < r.trace.size(); ++j) {
    const TraceToken& t = r.trace[j];
    raw.push_back(row_stats(&logits[static_cast<size_t>(P - 1 + static_cast<int>(j)) * V], V, t.id, 20));
    EXPECT_NEAR(t.logprob, raw.back().logprob, 1e-4) << j;
    EXPECT_NEAR(t.entropy, raw.back().entropy, 1e-4) << j;
    EXPECT_NEAR(t.confidence, raw.back().confidence, 1e-4) << j;
    ASSERT_EQ(t.top.size(), 20u);
    EXPECT_EQ(t.top.front().id, raw.back().top.front()) << j;
  }

  AnalysisOptions ao;
  ao.steps.group_window = 4;
  ao.steps.tail_tokens = 3;
  const Report rep = analyze(session, rec, ao);
  ASSERT_EQ(rep.steps.size(), 4u);
  EXPECT_EQ(rep.steps[0].role, StepRole::Setup);
  EXPECT_EQ(rep.steps[1].role, StepRole::Compute);
  EXPECT_EQ(rep.steps[2].role, StepRole::Backtrack);
  EXPECT_EQ(rep.steps[3].role, StepRole::Compute);
  EXPECT_EQ(rep.steps[3].text, "2+12=14");
  const int think_begin = rep.steps.front().token_begin;
  for (const Step& s : rep.steps) {
    double mean = 0, entropy = 0, min = 1e30, lowest_group = 1e30;
    for (int j = s.token_begin; j < s.token_end; ++j) {
      mean += raw[j].confidence;
      entropy += raw[j].entropy;
      min = std::min(min, raw[j].confidence);
      const int from = std::max(think_begin, j - 3);
      double g = 0;
      for (int i = from; i <= j; ++i) g += raw[i].confidence;
      lowest_group = std::min(lowest_group, g / (j - from + 1));
    }
    const int n = s.token_end - s.token_begin;
    double tail = 0;
    for (int j = s.token_end - std::min(3, n); j < s.token_end; ++j) tail += raw[j].confidence;
    EXPECT_NEAR(s.mean_confidence, mean / n, 1e-4) << s.index;
    EXPECT_NEAR(s.mean_entropy, entropy / n, 1e-4) << s.index;
    EXPECT_NEAR(s.min_confidence, min, 1e-4) << s.index;
    EXPECT_NEAR(s.tail_confidence, tail / std::min(3, n), 1e-4) << s.index;
    EXPECT_NEAR(s.lowest_group_confidence, lowest_group, 1e-4) << s.index;
  }
}

// Item 3: the curve forks, never re-prefills, and its last point is the
// answer as generated.
TEST_F(AnalysisTest, EarlyAnswerIsExactAndForksWithoutRePrefill) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  const ChatResult& r = rec.result;
  const int64_t main_before = session.context().tokens_evaluated();
  AnalysisOptions ao;
  ao.importance = ao.occlusion = ao.attention = false;
  const Report rep = analyze(session, rec, ao);
  EXPECT_EQ(session.context().tokens_evaluated(), main_before) << "the main context was evaluated again";
  ASSERT_TRUE(rep.answer.found);
  ASSERT_TRUE(rep.early_answer.computed) << rep.early_answer.skipped;
  const EarlyAnswer& e = rep.early_answer;
  ASSERT_EQ(e.points.size(), rep.steps.size() + 1);

  const std::vector<TokenId> seq = sequence_of(r);
  const int P = static_cast<int>(r.prompt_tokens.size());
  const AnswerInfo& a = rep.answer;
  // After the last step: the teacher-forced probability of the answer generated.
  double generated = 0;
  for (int j = a.token_begin; j < a.token_end; ++j) generated += r.trace[j].logprob;
  EXPECT_NEAR(e.points.back().logprob, generated, 1e-4);
  EXPECT_NEAR(e.points.back().logprob, logprob_of(seq, P + a.token_begin, P + a.token_end), 1e-4);
  // Every point: thinking cut there, then the bridge and the answer, evaluated from scratch.
  std::vector<TokenId> forced(seq.begin() + P + a.bridge_begin, seq.begin() + P + a.token_end);
  const int bridge = a.token_begin - a.bridge_begin;
  for (const EarlyAnswerPoint& p : e.points) {
    std::vector<TokenId> cut(seq.begin(), seq.begin() + p.position);
    const int answer_at = static_cast<int>(cut.size()) + bridge;
    cut.insert(cut.end(), forced.begin(), forced.end());
    EXPECT_NEAR(p.logprob, logprob_of(cut, answer_at, static_cast<int>(cut.size())), 1e-4) << p.after_step;
    EXPECT_NEAR(p.probability, std::exp(p.logprob), 1e-12);
  }
  // Only the forced tokens and the greedy tokens off the forced path were evaluated.
  const int64_t forced_per_point = a.token_end - a.bridge_begin;
  EXPECT_EQ(e.tokens_evaluated, static_cast<int64_t>(e.points.size()) * forced_per_point + e.greedy_tokens_evaluated);
  EXPECT_LE(e.greedy_tokens_evaluated, static_cast<int64_t>(e.points.size()) * ao.greedy_max_tokens);
  // The decided step is consistent with the threshold.
  if (e.decided_step) {
    for (const EarlyAnswerPoint& p : e.points)
      if (p.after_step >= *e.decided_step) {
        EXPECT_GE(p.probability, ao.decision_threshold);
      }
  }
}

// The greedy answer at a point is what greedy decoding writes there.
TEST_F(AnalysisTest, GreedyAnswerMatchesPlainGreedyDecoding) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  AnalysisOptions ao;
  ao.importance = ao.occlusion = ao.attention = false;
  ao.greedy_max_tokens = 6;
  const Report rep = analyze(session, rec, ao);
  ASSERT_TRUE(rep.early_answer.computed);
  const std::vector<TokenId> seq = sequence_of(rec.result);
  const AnswerInfo& a = rep.answer;
  const int P = static_cast<int>(rec.result.prompt_tokens.size());
  for (const EarlyAnswerPoint& p : rep.early_answer.points) {
    Context ctx(*model_, ContextOptions{256, 256, 1});
    std::vector<TokenId> prefix(seq.begin(), seq.begin() + p.position);
    prefix.insert(prefix.end(), seq.begin() + P + a.bridge_begin, seq.begin() + P + a.token_begin);
    ctx.eval(prefix);
    std::string text;
    for (int i = 0; i < ao.greedy_max_tokens; ++i) {
      const float* l = ctx.logits();
      const TokenId g = static_cast<TokenId>(std::max_element(l, l + ctx.n_vocab()) - l);
      if (model_->tokenizer().is_end_of_generation(g)) break;
      text += model_->tokenizer().token_bytes(g, true);
      // Stop rule of the analysis: an integer that has ended.
      const size_t d = text.find_first_of("0123456789");
      if (d != std::string::npos && text.find_first_not_of("0123456789", d) != std::string::npos) break;
      ctx.eval(std::span<const TokenId>(&g, 1));
    }
    EXPECT_EQ(p.greedy_text, text) << p.after_step;
  }
}

// Item 4: removal and resampling, against independent evaluation.
TEST_F(AnalysisTest, StepImportanceIsExact) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  AnalysisOptions ao;
  ao.occlusion = ao.attention = false;
  ao.resamples = 2;
  ao.sampling.temperature = 1.0f;
  ao.sampling.top_k = 0;
  ao.sampling.top_p = 1.0f;
  ao.sampling.min_p = 0.0f;
  const Report rep = analyze(session, rec, ao);
  ASSERT_TRUE(rep.importance.computed) << rep.importance.skipped;
  const Importance& im = rep.importance;
  EXPECT_NEAR(im.baseline_logprob, rep.answer.logprob, 1e-4);
  const std::vector<TokenId> seq = sequence_of(rec.result);
  const int P = static_cast<int>(rec.result.prompt_tokens.size());
  const AnswerInfo& a = rep.answer;
  double total = 0;
  for (const Step& s : rep.steps) {
    std::vector<TokenId> removed(seq.begin(), seq.begin() + P + s.token_begin);
    const int answer_at = static_cast<int>(removed.size()) + (a.token_begin - s.token_end);
    removed.insert(removed.end(), seq.begin() + P + s.token_end, seq.begin() + P + a.token_end);
    const StepImportance& si = im.steps[static_cast<size_t>(s.index)];
    EXPECT_NEAR(si.removed_logprob, logprob_of(removed, answer_at, static_cast<int>(removed.size())), 1e-4);
    EXPECT_NEAR(si.removed_delta, im.baseline_logprob - si.removed_logprob, 1e-9);
    EXPECT_EQ(si.resampled_texts.size(), 2u);
    EXPECT_EQ(si.resampled_logprob.has_value(), si.identical_resamples < 2);
    EXPECT_TRUE(si.resampled_importance.has_value());
    EXPECT_GE(si.importance, 0.0);
    total += si.importance;
  }
  if (!im.top.empty()) {
    EXPECT_NEAR(total, 1.0, 1e-9);
  }
  // Same seed, same resamples.
  const Report again = analyze(session, rec, ao);
  for (size_t i = 0; i < im.steps.size(); ++i) {
    EXPECT_EQ(again.importance.steps[i].resampled_texts, im.steps[i].resampled_texts);
    EXPECT_EQ(again.importance.steps[i].resampled_logprob.has_value(), im.steps[i].resampled_logprob.has_value());
    if (im.steps[i].resampled_logprob) {
      EXPECT_NEAR(*again.importance.steps[i].resampled_logprob, *im.steps[i].resampled_logprob, 1e-9);
    }
  }
}

// Item 5 and 6: occlusion against independent evaluation; attention shares
// are probabilities; the logit lens's last layer is the model's output.
TEST_F(AnalysisTest, AttributionLogitLensAndAttentionMaps) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  AnalysisOptions ao;
  ao.logit_lens = true;
  ao.attention_maps = {parse_attention_request("1:0"), parse_attention_request("3:*")};
  const Report rep = analyze(session, rec, ao);
  const PromptAttribution& pa = rep.attribution;
  ASSERT_TRUE(pa.computed) << pa.skipped;
  std::vector<std::string> words;
  for (const WordAttribution& w : pa.words) words.push_back(w.word);
  EXPECT_EQ(words, (std::vector<std::string>{"What", "is", "2", "+", "3", "*", "4", "?"}));

  const std::vector<TokenId> seq = sequence_of(rec.result);
  const int P = static_cast<int>(rec.result.prompt_tokens.size());
  const AnswerInfo& a = rep.answer;
  const TokenId mask = model_->tokenizer().encode("_", false, false).front();
  double attention_sum = 0;
  for (const WordAttribution& w : pa.words) {
    std::vector<TokenId> masked(seq.begin(), seq.begin() + P + a.token_end);
    for (int t = w.token_begin; t < w.token_end; ++t) masked[static_cast<size_t>(t)] = mask;
    const double answer_lp = logprob_of(masked, P + a.token_begin, P + a.token_end);
    const double response_lp = logprob_of(masked, P, P + a.token_end);
    ASSERT_TRUE(w.occlusion && w.occlusion_response);
    EXPECT_NEAR(*w.occlusion, a.logprob - answer_lp, 1e-4) << w.word;
    EXPECT_NEAR(*w.occlusion_response, pa.baseline_response_logprob - response_lp, 1e-4) << w.word;
    EXPECT_GE(w.attention, 0.0);
    attention_sum += w.attention;
  }
  EXPECT_LE(attention_sum, pa.attention_on_question + 1e-6);  // words tile the question's tokens
  EXPECT_GT(pa.attention_on_question, 0.0);
  EXPECT_LE(pa.attention_on_question, 1.0 + 1e-6);

  const LogitLens& lens = rep.logit_lens;
  ASSERT_TRUE(lens.computed) << lens.skipped;
  ASSERT_EQ(static_cast<int>(lens.layers.size()), model_->config().n_layer);
  const TraceToken& first = rec.result.trace[static_cast<size_t>(a.token_begin)];
  EXPECT_EQ(lens.target, first.id);
  EXPECT_NEAR(lens.layers.back().probability, std::exp(first.logprob), 1e-4);
  int rank = 0;
  for (const TokenLogprob& alt : first.top) rank += alt.logprob > first.logprob;
  if (rank < static_cast<int>(first.top.size())) {
    EXPECT_EQ(lens.layers.back().rank, rank);
  }

  ASSERT_EQ(rep.attention_maps.size(), 2u);
  for (const AttentionMap& m : rep.attention_maps) {
    EXPECT_EQ(m.request.query_begin, P + a.token_begin - 1);
    EXPECT_EQ(m.request.query_end, P + a.token_end - 1);
    const size_t nk = m.key_tokens.size();
    for (size_t q = 0; q < m.query_tokens.size(); ++q) {
      double row = 0;
      for (size_t k = 0; k < nk; ++k) row += m.weights[q * nk + k];
      EXPECT_NEAR(row, 1.0, 1e-4);  // causal softmax over every earlier key
    }
  }
  EXPECT_THROW(analyze(session, rec,
                       [] {
                         AnalysisOptions bad;
                         bad.attention_maps = {parse_attention_request("9:0")};
                         return bad;
                       }()),
               Error);
}

// A reply without a number: the whole reply is the answer.
TEST_F(AnalysisTest, SampledThinkingAndNonNumericAnswer) {
  ChatSession session(*model_);
  TraceRecord rec;
  rec.messages = ojson::parse(R"([{"role":"user","content":"Say something"}])");
  rec.options = options(12);
  rec.options.assistant_prefix = "<think>\n";
  rec.options.think_budget = 24;
  rec.options.max_tokens = 40;
  rec.result = session.generate(rec.messages, rec.options);
  ASSERT_TRUE(rec.result.thinking_forced_closed);
  const Report rep = analyze(session, rec, {});
  ASSERT_FALSE(rep.steps.empty());
  if (!rep.answer.found) GTEST_SKIP() << "the random reply is blank";
  if (!rep.answer.value) {
    EXPECT_EQ(rep.answer.token_end, static_cast<int>(rec.result.trace.size()) -
                                        (model_->tokenizer().is_end_of_generation(rec.result.trace.back().id) ? 1 : 0));
  }
  ASSERT_TRUE(rep.early_answer.computed);
  double generated = 0;
  for (int j = rep.answer.token_begin; j < rep.answer.token_end; ++j) generated += rec.result.trace[j].logprob;
  EXPECT_NEAR(rep.early_answer.points.back().logprob, generated, 1e-4);
}

// Item 7: the samples share the prompt's KV cache; votes add up.
TEST_F(AnalysisTest, SelfConsistencySharesThePromptCache) {
  ChatSession session(*model_);
  TraceRecord rec = forced_trace(session);
  rec.options.assistant_prefix.clear();
  rec.options.max_tokens = 24;
  AnalysisOptions ao;
  ao.importance = ao.occlusion = ao.attention = ao.early_answer = false;
  ao.samples = 6;
  ao.warmup_samples = 3;
  ao.keep_fraction = 0.5;
  ao.trace_group_window = 4;
  ao.sampling.temperature = 1.0f;
  ao.sampling.top_k = 0;
  ao.sampling.top_p = 1.0f;
  ao.sampling.min_p = 0.0f;
  const int64_t before = session.context().tokens_evaluated();
  const Report rep = analyze(session, rec, ao);
  const SelfConsistency& sc = rep.self_consistency;
  ASSERT_TRUE(sc.computed);
  ASSERT_EQ(sc.traces.size(), 6u);
  ASSERT_TRUE(sc.threshold.has_value());
  int64_t tokens = 0;
  int votes = 0, voters = 0, stopped = 0;
  for (const SampleTrace& t : sc.traces) {
    tokens += t.tokens;
    if (t.stopped_early) {
      ++stopped;
      EXPECT_FALSE(t.warmup);
      EXPECT_EQ(t.finish_reason, "cancelled");
      EXPECT_TRUE(t.answer.empty());
      EXPECT_GE(t.tokens, ao.trace_group_window);
      EXPECT_LT(t.confidence, *sc.threshold);  // its last window fell below
    }
    voters += !t.stopped_early && !t.answer.empty();
  }
  for (const Vote& v : sc.votes) votes += v.count;
  EXPECT_EQ(votes, voters);
  EXPECT_EQ(sc.tokens_generated, tokens);
  // Per sample: its last prompt token again, then every generated token but
  // the last (a stopped trace's last one too). Nothing else: the prompt's
  // cache is shared.
  EXPECT_EQ(session.context().tokens_evaluated() - before, tokens + stopped);
  for (size_t i = 1; i < sc.votes.size(); ++i) EXPECT_GE(sc.votes[i - 1].weight, sc.votes[i].weight);
}

TEST_F(AnalysisTest, JsonAndSummary) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  AnalysisOptions ao;
  ao.logit_lens = true;
  ao.attention_maps = {parse_attention_request("0:1")};
  const Report rep = analyze(session, rec, ao);
  const ojson j = to_json(rep);
  for (const char* key : {"answer", "summary", "steps", "flags", "early_answer", "importance", "prompt_attribution",
                          "logit_lens", "attention_maps", "self_consistency", "trace", "options"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["steps"].size(), rep.steps.size());
  EXPECT_EQ(j["trace"].size(), rec.result.trace.size());
  EXPECT_FALSE(j["self_consistency"]["computed"].get<bool>());
  const ojson back = ojson::parse(dump_json(j, 2));  // valid JSON even with partial UTF-8 tokens
  EXPECT_EQ(back["answer"]["text"], rep.answer.text);
  const std::string plain = render_summary(rep, false);
  EXPECT_NE(plain.find("Answer: \"" + rep.answer.text + "\""), std::string::npos) << plain;
  EXPECT_NE(plain.find("2+12=14"), std::string::npos);
  EXPECT_EQ(plain.find("\033["), std::string::npos);
  EXPECT_NE(render_summary(rep, true).find("\033["), std::string::npos);
}

TEST_F(AnalysisTest, SavedTraceReplaysToTheSameAnalysis) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  AnalysisOptions ao;
  ao.occlusion = false;
  const Report original = analyze(session, rec, ao);

  const fs::path file = fs::temp_directory_path() / ("glassbox-trace-" + std::to_string(::getpid()) + ".json");
  save_trace(file.string(), rec);
  TraceRecord loaded = load_trace(file.string());
  fs::remove(file);
  EXPECT_EQ(loaded.messages, rec.messages);
  EXPECT_EQ(loaded.options.assistant_prefix, rec.options.assistant_prefix);
  EXPECT_EQ(loaded.options.template_override, rec.options.template_override);
  EXPECT_EQ(loaded.result.prompt_tokens, rec.result.prompt_tokens);
  ASSERT_EQ(loaded.result.trace.size(), rec.result.trace.size());
  // Numbers in the file are not trusted: a fresh session recomputes them.
  for (TraceToken& t : loaded.result.trace) t.logprob = t.entropy = t.confidence = 0;
  ChatSession fresh(*model_);
  const double diff = replay_trace(fresh, loaded);
  EXPECT_GT(diff, 0.0);
  for (size_t i = 0; i < rec.result.trace.size(); ++i) {
    EXPECT_NEAR(loaded.result.trace[i].logprob, rec.result.trace[i].logprob, 1e-4);
    EXPECT_NEAR(loaded.result.trace[i].confidence, rec.result.trace[i].confidence, 1e-4);
    EXPECT_EQ(loaded.result.trace[i].text, rec.result.trace[i].text);
    EXPECT_EQ(loaded.result.trace[i].phase, rec.result.trace[i].phase);
    EXPECT_EQ(loaded.result.trace[i].from_prefix, rec.result.trace[i].from_prefix);
  }
  EXPECT_LT(replay_trace(fresh, loaded), 1e-4);  // a second replay agrees with the first
  const Report again = analyze(fresh, loaded, ao);
  ASSERT_EQ(again.early_answer.points.size(), original.early_answer.points.size());
  for (size_t i = 0; i < again.early_answer.points.size(); ++i)
    EXPECT_NEAR(again.early_answer.points[i].logprob, original.early_answer.points[i].logprob, 1e-4);
  EXPECT_EQ(again.importance.top, original.importance.top);
}

TEST_F(AnalysisTest, MalformedTracesAreErrors) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  const ojson good = trace_to_json(rec);
  EXPECT_NO_THROW(trace_from_json(good));
  auto broken = [&](const std::function<void(ojson&)>& edit) {
    ojson j = good;
    edit(j);
    return j;
  };
  const std::vector<std::pair<std::string, ojson>> cases = {
      {"not an object", ojson::array()},
      {"format", broken([](ojson& j) { j["format"] = "other"; })},
      {"version", broken([](ojson& j) { j["version"] = 99; })},
      {"no prompt tokens", broken([](ojson& j) { j.erase("prompt_tokens"); })},
      {"empty prompt", broken([](ojson& j) { j["prompt_tokens"] = ojson::array(); })},
      {"negative id", broken([](ojson& j) { j["prompt_tokens"][0] = -1; })},
      {"string id", broken([](ojson& j) { j["tokens"][0]["id"] = "7"; })},
      {"huge id", broken([](ojson& j) { j["tokens"][0]["id"] = 1ll << 40; })},
      {"bad phase", broken([](ojson& j) { j["tokens"][0]["phase"] = "dreaming"; })},
      {"no phase", broken([](ojson& j) { j["tokens"][0].erase("phase"); })},
      {"bad top", broken([](ojson& j) { j["tokens"][0]["top"] = ojson::array({ojson::array({1})}); })},
      {"bad options", broken([](ojson& j) { j["options"]["max_tokens"] = "many"; })},
      {"bad sampling", broken([](ojson& j) { j["options"]["sampling"]["temperature"] = -1; })},
      {"messages", broken([](ojson& j) { j["messages"] = "hi"; })},
  };
  for (const auto& [name, j] : cases) EXPECT_THROW(trace_from_json(j), Error) << name;

  // Ids the model does not have are caught before anything is evaluated.
  TraceRecord alien = trace_from_json(broken([](ojson& j) { j["tokens"][1]["id"] = 100000; }));
  ChatSession fresh(*model_);
  EXPECT_THROW(replay_trace(fresh, alien), Error);
  alien = trace_from_json(broken([](ojson& j) { j["prompt_tokens"][0] = 100000; }));
  EXPECT_THROW(replay_trace(fresh, alien), Error);

  const fs::path file = fs::temp_directory_path() / ("glassbox-bad-" + std::to_string(::getpid()) + ".json");
  std::ofstream(file) << "{not json";
  EXPECT_THROW(load_trace(file.string()), Error);
  fs::remove(file);
  EXPECT_THROW(load_trace("/nonexistent/trace.json"), Error);
}

// Without a session (a spare context): the same numbers, no sampling.
TEST_F(AnalysisTest, ContextEntryPointMatchesSession) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  AnalysisOptions ao;
  ao.occlusion = false;
  ao.samples = 2;
  Context spare(*model_, ContextOptions{512, 256, 1});
  const Report a = analyze(*model_, spare, rec, ao);
  EXPECT_FALSE(a.self_consistency.computed);
  ao.samples = 0;
  const Report b = analyze(session, rec, ao);
  ASSERT_EQ(a.early_answer.points.size(), b.early_answer.points.size());
  for (size_t i = 0; i < a.early_answer.points.size(); ++i)
    EXPECT_NEAR(a.early_answer.points[i].logprob, b.early_answer.points[i].logprob, 1e-4);
  ASSERT_EQ(a.importance.steps.size(), b.importance.steps.size());
  for (size_t i = 0; i < a.importance.steps.size(); ++i)
    EXPECT_NEAR(a.importance.steps[i].removed_logprob, b.importance.steps[i].removed_logprob, 1e-4);
}

TEST_F(AnalysisTest, BadOptionsAreErrors) {
  ChatSession session(*model_);
  const TraceRecord rec = forced_trace(session);
  AnalysisOptions o;
  o.decision_threshold = 1.5;
  EXPECT_THROW(analyze(session, rec, o), Error);
  o = {};
  o.resamples = -1;
  EXPECT_THROW(analyze(session, rec, o), Error);
  o = {};
  o.sampling.temperature = -1;
  EXPECT_THROW(analyze(session, rec, o), Error);
}

}  // namespace
}  // namespace glassbox::analysis
