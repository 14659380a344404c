#include "generate/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "base/error.h"

namespace glassbox {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Logits whose softmax is exactly `probs` (up to float rounding), shifted by
// an arbitrary constant to show only differences matter.
std::vector<float> logits_for(const std::vector<double>& probs, double shift = 3.0) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(p > 0 ? static_cast<float>(std::log(p) + shift) : kNegInf);
  return logits;
}

SamplingParams plain(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

std::vector<int> draw_counts(const SamplingParams& params, const std::vector<float>& logits, int draws) {
  Sampler sampler(params, static_cast<int>(logits.size()));
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    const TokenId id = sampler.sample(logits.data(), static_cast<int>(logits.size()), {});
    EXPECT_GE(id, 0);
    EXPECT_LT(id, static_cast<TokenId>(logits.size()));
    ++counts[static_cast<size_t>(id)];
  }
  return counts;
}

// Each count within 5 binomial standard deviations of draws * expected[i];
// expected 0 means the token must never be drawn.
void expect_frequencies(const std::vector<int>& counts, const std::vector<double>& expected, int draws) {
  ASSERT_EQ(counts.size(), expected.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the kept set but was drawn";
      continue;
    }
    const double mean = draws * expected[i];
    const double sigma = std::sqrt(draws * expected[i] * (1.0 - expected[i]));
    EXPECT_NEAR(counts[i], mean, 5.0 * sigma + 1.0) << "token " << i;
  }
}

TEST(SamplingParams, DefaultsAreValid) { EXPECT_NO_THROW(validate(SamplingParams{})); }

TEST(SamplingParams, RejectsBadValues) {
  auto rejects = [](auto mutate) {
    SamplingParams p;
    mutate(p);
    EXPECT_THROW(validate(p), Error);
    EXPECT_THROW(Sampler(p, 10), Error);
  };
  rejects([](SamplingParams& p) { p.temperature = -0.1f; });
  rejects([](SamplingParams& p) { p.temperature = std::nanf(""); });
  rejects([](SamplingParams& p) { p.temperature = std::numeric_limits<float>::infinity(); });
  rejects([](SamplingParams& p) { p.top_p = 0.0f; });
  rejects([](SamplingParams& p) { p.top_p = 1.01f; });
  rejects([](SamplingParams& p) { p.top_p = std::nanf(""); });
  rejects([](SamplingParams& p) { p.min_p = -0.01f; });
  rejects([](SamplingParams& p) { p.min_p = 1.5f; });
  rejects([](SamplingParams& p) { p.repeat_penalty = 0.0f; });
  rejects([](SamplingParams& p) { p.repeat_penalty = -1.0f; });
  rejects([](SamplingParams& p) { p.repeat_last_n = -2; });
  rejects([](SamplingParams& p) { p.presence_penalty = std::nanf(""); });
  rejects([](SamplingParams& p) { p.frequency_penalty = std::numeric_limits<float>::infinity(); });
  EXPECT_THROW(Sampler(SamplingParams{}, 0), Error);
}

TEST(Sampler, GreedyPicksArgmaxWithTiesToLowestId) {
  Sampler sampler(plain(0.0f), 5);
  const std::vector<float> logits{0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(sampler.sample(logits.data(), 5, {}), 1);
  const std::vector<float> all_equal(5, 0.25f);
  EXPECT_EQ(sampler.sample(all_equal.data(), 5, {}), 0);
  const std::vector<float> masked{kNegInf, kNegInf, -7.0f, kNegInf, kNegInf};
  EXPECT_EQ(sampler.sample(masked.data(), 5, {}), 2);
}

TEST(Sampler, TopKOneEqualsGreedy) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  SamplingParams top1 = plain(1.0f);
  top1.top_k = 1;
  Sampler sampler(top1, 200);
  for (int row = 0; row < 200; ++row) {
    std::vector<float> logits(200);
    for (float& x : logits) x = normal(gen);
    const auto argmax = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(sampler.sample(logits.data(), 200, {}), argmax);
  }
}

TEST(Sampler, PlainDrawFollowsSoftmax) {
  const std::vector<double> probs{0.1, 0.2, 0.3, 0.4};
  const int draws = 10000;
  expect_frequencies(draw_counts(plain(), logits_for(probs), draws), probs, draws);
}

TEST(Sampler, TopPKeepsTheMinimalNucleus) {
  // Probabilities 0.4 0.3 0.2 0.07 0.03, scattered over ids. top_p = 0.85:
  // 0.4 + 0.3 = 0.7 < 0.85 <= 0.9, so exactly the three largest survive,
  // renormalised to 4/9, 3/9, 2/9.
  std::vector<double> probs(12, 0.0);
  probs[9] = 0.4;
  probs[2] = 0.3;
  probs[5] = 0.2;
  probs[0] = 0.07;
  probs[11] = 0.03;
  SamplingParams params = plain();
  params.top_p = 0.85f;
  std::vector<double> expected(12, 0.0);
  expected[9] = 4.0 / 9;
  expected[2] = 3.0 / 9;
  expected[5] = 2.0 / 9;
  const int draws = 10000;
  expect_frequencies(draw_counts(params, logits_for(probs), draws), expected, draws);

  params.top_p = 0.35f;  // the top token alone already reaches 0.35
  std::vector<double> only_top(12, 0.0);
  only_top[9] = 1.0;
  expect_frequencies(draw_counts(params, logits_for(probs), 2000), only_top, 2000);
}

TEST(Sampler, TopPAndMinPTogetherKeepTheSmallerSet) {
  // Nucleus at top_p = 0.85 is {0, 1, 2}. min_p = 0.6 keeps p >= 0.24: {0, 1}.
  // min_p = 0.1 keeps p >= 0.04: {0, 1, 2, 3}, so the nucleus decides.
  const auto logits = logits_for({0.4, 0.3, 0.2, 0.07, 0.03});
  SamplingParams params = plain();
  params.top_p = 0.85f;
  params.min_p = 0.6f;
  expect_frequencies(draw_counts(params, logits, 10000), {4.0 / 7, 3.0 / 7, 0.0, 0.0, 0.0}, 10000);
  params.min_p = 0.1f;
  expect_frequencies(draw_counts(params, logits, 10000), {4.0 / 9, 3.0 / 9, 2.0 / 9, 0.0, 0.0}, 10000);
}

TEST(Sampler, TopPOnALargeVocabularyMatchesBruteForceNucleus) {
  const int n_vocab = 20000;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(n_vocab);
  for (float& x : logits) x = normal(gen);
  // Brute force: full sort, then the smallest prefix with mass >= 0.9.
  std::vector<int> order(n_vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  const double max_logit = logits[order[0]];
  double total = 0.0;
  for (float x : logits) total += std::exp(x - max_logit);
  std::vector<bool> in_nucleus(n_vocab, false);
  double cumulative = 0.0;
  for (int id : order) {
    in_nucleus[id] = true;
    cumulative += std::exp(logits[id] - max_logit) / total;
    if (cumulative >= 0.9) break;
  }
  SamplingParams params = plain();
  params.top_p = 0.9f;
  Sampler sampler(params, n_vocab);
  std::vector<bool> drawn(n_vocab, false);
  for (int i = 0; i < 150; ++i) {
    const TokenId id = sampler.sample(logits.data(), n_vocab, {});
    ASSERT_TRUE(in_nucleus[id]) << "drew token " << id << " outside the nucleus";
    drawn[id] = true;
  }
  // With min_p as well, only tokens within a factor min_p of the best survive.
  params.min_p = 0.05f;
  Sampler both(params, n_vocab);
  const double floor = logits[order[0]] + std::log(0.05);
  for (int i = 0; i < 150; ++i) {
    const TokenId id = both.sample(logits.data(), n_vocab, {});
    ASSERT_TRUE(in_nucleus[id] && logits[id] >= floor) << "drew token " << id;
  }
}

TEST(Sampler, TopPOnEqualLogitsKeepsTheLowestIds) {
  // 200 equal tokens, p = 0.3025: 60 tokens hold 0.300 < p, 61 hold 0.305.
  const std::vector<float> logits(200, 0.5f);
  SamplingParams params = plain();
  params.top_p = 0.3025f;
  const auto counts = draw_counts(params, logits, 1000);
  for (size_t id = 61; id < counts.size(); ++id) ASSERT_EQ(counts[id], 0) << id;
  int distinct = 0;
  for (size_t id = 0; id < 61; ++id) distinct += counts[id] > 0;
  EXPECT_GT(distinct, 55);  // ~16 draws each: nearly all appear
}

TEST(Sampler, TopKRenormalises) {
  SamplingParams params = plain();
  params.top_k = 2;
  const int draws = 10000;
  expect_frequencies(draw_counts(params, logits_for({0.1, 0.2, 0.3, 0.4}), draws), {0.0, 0.0, 3.0 / 7, 4.0 / 7}, draws);
}

TEST(Sampler, TopPSeesTheTopKRenormalisedDistribution) {
  // Alone, top_p = 0.72 keeps {0.4, 0.3, 0.2} (0.7 < 0.72). After top_k = 3 the
  // three survivors are renormalised to 4/9, 3/9, 2/9, and 4/9 + 3/9 >= 0.72
  // already: only two tokens remain (penalties -> top-k -> top-p order).
  const auto logits = logits_for({0.4, 0.3, 0.2, 0.1});
  SamplingParams params = plain();
  params.top_p = 0.72f;
  expect_frequencies(draw_counts(params, logits, 10000), {4.0 / 9, 3.0 / 9, 2.0 / 9, 0.0}, 10000);
  params.top_k = 3;
  expect_frequencies(draw_counts(params, logits, 10000), {4.0 / 7, 3.0 / 7, 0.0, 0.0}, 10000);
}

TEST(Sampler, MinPIsRelativeToTheTopToken) {
  // min_p = 0.2 with p_max = 0.5: keep p >= 0.1, i.e. drop 0.05.
  SamplingParams params = plain();
  params.min_p = 0.2f;
  const int draws = 10000;
  expect_frequencies(draw_counts(params, logits_for({0.5, 0.3, 0.15, 0.05}), draws),
                     {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0}, draws);
}

TEST(Sampler, TemperatureShapesTheDraw) {
  // logits {0, ln 4} at T = 2 -> weights {1, 2}.
  const std::vector<float> logits{0.0f, static_cast<float>(std::log(4.0))};
  const int draws = 10000;
  expect_frequencies(draw_counts(plain(2.0f), logits, draws), {1.0 / 3, 2.0 / 3}, draws);
  // T = 0.5 -> weights {1, 16}.
  expect_frequencies(draw_counts(plain(0.5f), logits, draws), {1.0 / 17, 16.0 / 17}, draws);
}

TEST(Sampler, FiltersRunBeforeTemperature) {
  // min-p is decided on the T = 1 distribution: a huge temperature flattens
  // the survivors but cannot bring back the dropped token.
  SamplingParams params = plain(1000.0f);
  params.min_p = 0.2f;
  const int draws = 9000;
  const auto counts = draw_counts(params, logits_for({0.5, 0.3, 0.15, 0.05}), draws);
  expect_frequencies(counts, {1.0 / 3, 1.0 / 3, 1.0 / 3, 0.0}, draws);
}

TEST(Sampler, MaskedTokensAreNeverDrawn) {
  const int draws = 3000;
  expect_frequencies(draw_counts(plain(), {0.0f, kNegInf, 0.0f, kNegInf}, draws), {0.5, 0.0, 0.5, 0.0}, draws);
}

TEST(Sampler, PenaltiesFollowTheLlamaCppFormula) {
  // Window (last 4 of history) = {0, 1, 0, 3}: counts 0:2, 1:1, 3:1; 4 is outside it.
  SamplingParams params = plain();
  params.repeat_penalty = 2.0f;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.25f;
  params.repeat_last_n = 4;
  Sampler sampler(params, 5);
  std::vector<float> logits{2.0f, -2.0f, 1.0f, 0.5f, 3.0f};
  const std::vector<TokenId> history{4, 0, 1, 0, 3};
  sampler.apply_penalties(logits.data(), 5, history);
  EXPECT_FLOAT_EQ(logits[0], 2.0f / 2 - (2 * 0.5f + 0.25f));   // positive: divided
  EXPECT_FLOAT_EQ(logits[1], -2.0f * 2 - (1 * 0.5f + 0.25f));  // negative: multiplied
  EXPECT_FLOAT_EQ(logits[2], 1.0f);                            // not in the window
  EXPECT_FLOAT_EQ(logits[3], 0.5f / 2 - (1 * 0.5f + 0.25f));
  EXPECT_FLOAT_EQ(logits[4], 3.0f);  // only before the window

  // -1: the whole history; 4 is penalised too.
  params.repeat_last_n = -1;
  Sampler whole(params, 5);
  std::vector<float> again{2.0f, -2.0f, 1.0f, 0.5f, 3.0f};
  whole.apply_penalties(again.data(), 5, history);
  EXPECT_FLOAT_EQ(again[4], 3.0f / 2 - (1 * 0.5f + 0.25f));

  // 0: off.
  params.repeat_last_n = 0;
  Sampler off(params, 5);
  std::vector<float> untouched{2.0f, -2.0f, 1.0f, 0.5f, 3.0f};
  off.apply_penalties(untouched.data(), 5, history);
  EXPECT_EQ(untouched, (std::vector<float>{2.0f, -2.0f, 1.0f, 0.5f, 3.0f}));
}

TEST(Sampler, PenaltiesAreAppliedBeforeChoosing) {
  SamplingParams params = plain(0.0f);
  params.repeat_penalty = 1.5f;
  Sampler sampler(params, 3);
  const std::vector<float> logits{3.0f, 2.5f, 0.0f};
  const std::vector<TokenId> history{0};
  EXPECT_EQ(sampler.sample(logits.data(), 3, {}), 0);
  EXPECT_EQ(sampler.sample(logits.data(), 3, history), 1);  // 3 / 1.5 = 2 < 2.5
  EXPECT_EQ(logits[0], 3.0f);                               // the caller's row is untouched
  // Repeated calls give the same answer: the occurrence counters reset.
  EXPECT_EQ(sampler.sample(logits.data(), 3, history), 1);
  EXPECT_EQ(sampler.sample(logits.data(), 3, {}), 0);
}

TEST(Sampler, ExtremeSettingsStayWellDefined) {
  SamplingParams params = plain(1e-45f);  // 1/T overflows: greedy in effect
  params.repeat_penalty = 1e-30f;         // divides positive logits into overflow
  params.frequency_penalty = -3e38f;
  Sampler sampler(params, 3);
  const std::vector<float> logits{1.0f, 2.0f, kNegInf};
  const std::vector<TokenId> history{0, 0, 2};
  EXPECT_EQ(sampler.sample(logits.data(), 3, {}), 1);
  EXPECT_EQ(sampler.sample(logits.data(), 3, history), 0);  // penalty clamps at +FLT_MAX
  std::vector<float> penalised = logits;
  sampler.apply_penalties(penalised.data(), 3, history);
  EXPECT_EQ(penalised[0], std::numeric_limits<float>::max());
  EXPECT_EQ(penalised[2], kNegInf);  // masked stays masked
}

TEST(Sampler, BadInputRaises) {
  Sampler sampler(SamplingParams{}, 4);
  const std::vector<float> with_nan{0.0f, std::nanf(""), 1.0f, 2.0f};
  EXPECT_THROW(sampler.sample(with_nan.data(), 4, {}), Error);
  const std::vector<float> with_inf{0.0f, std::numeric_limits<float>::infinity(), 1.0f, 2.0f};
  EXPECT_THROW(sampler.sample(with_inf.data(), 4, {}), Error);
  const std::vector<float> all_masked(4, kNegInf);
  EXPECT_THROW(sampler.sample(all_masked.data(), 4, {}), Error);
  Sampler greedy(plain(0.0f), 4);
  EXPECT_THROW(greedy.sample(all_masked.data(), 4, {}), Error);
  SamplingParams penalised;
  penalised.repeat_penalty = 1.1f;
  Sampler with_penalty(penalised, 4);
  const std::vector<float> fine{0.0f, 1.0f, 2.0f, 3.0f};
  const std::vector<TokenId> bad_history{1, 7};
  EXPECT_THROW(with_penalty.sample(fine.data(), 4, bad_history), Error);
  const std::vector<TokenId> negative_history{-1};
  EXPECT_THROW(with_penalty.sample(fine.data(), 4, negative_history), Error);
  EXPECT_NO_THROW(with_penalty.sample(fine.data(), 4, std::vector<TokenId>{1, 2}));
}

std::vector<TokenId> sequence(uint64_t seed, int length) {
  SamplingParams params;  // defaults: the full chain
  params.seed = seed;
  params.temperature = 1.5f;
  params.min_p = 0.0f;
  const int n_vocab = 1000;
  std::vector<float> logits(n_vocab);
  std::mt19937 gen(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : logits) x = normal(gen);
  Sampler sampler(params, n_vocab);
  std::vector<TokenId> out;
  for (int i = 0; i < length; ++i) out.push_back(sampler.sample(logits.data(), n_vocab, out));
  return out;
}

TEST(Sampler, SameSeedSameSequence) {
  EXPECT_EQ(sequence(1234, 200), sequence(1234, 200));
  EXPECT_NE(sequence(1234, 200), sequence(1235, 200));
}

TEST(Sampler, ReseedRestartsTheStream) {
  const std::vector<float> logits(50, 0.0f);
  Sampler sampler(plain(), 50);
  std::vector<TokenId> first, second;
  sampler.reseed(99);
  for (int i = 0; i < 50; ++i) first.push_back(sampler.sample(logits.data(), 50, {}));
  sampler.reseed(99);
  for (int i = 0; i < 50; ++i) second.push_back(sampler.sample(logits.data(), 50, {}));
  EXPECT_EQ(first, second);
}

TEST(Sampler, RngIsTheStandardMt19937_64) {
  // [rand.predef]: the 10000th output of a default-constructed mt19937_64 is
  // 9981545732273789042 -- the engine the sampler's reproducibility rests on.
  std::mt19937_64 engine;
  engine.discard(9999);
  EXPECT_EQ(engine(), 9981545732273789042ull);
}

TEST(Sampler, GrowsForALargerVocabulary) {
  Sampler sampler(plain(0.0f), 2);
  std::vector<float> logits(100, 0.0f);
  logits[77] = 1.0f;
  EXPECT_EQ(sampler.sample(logits.data(), 100, {}), 77);
}

// ---------------------------------------------------------------------------

TEST(TokenStats, HandComputedDistribution) {
  // p = {1/2, 1/4, 1/8, 1/8}: entropy 1.75 bits.
  const auto logits = logits_for({0.5, 0.25, 0.125, 0.125}, -7.0);
  const TokenStats stats = compute_token_stats(logits.data(), 4, 1, 3);
  EXPECT_EQ(stats.chosen, 1);
  EXPECT_NEAR(stats.chosen_logprob, std::log(0.25), 1e-6);
  EXPECT_NEAR(stats.entropy, 1.75 * std::log(2.0), 1e-6);
  ASSERT_EQ(stats.top.size(), 3u);
  EXPECT_EQ(stats.top[0].id, 0);
  EXPECT_EQ(stats.top[1].id, 1);
  EXPECT_EQ(stats.top[2].id, 2);  // ties with 3: the lower id wins
  EXPECT_NEAR(stats.top[0].logprob, std::log(0.5), 1e-6);
  EXPECT_NEAR(stats.top[2].logprob, std::log(0.125), 1e-6);
  // DeepConf confidence = -mean(log 1/2, log 1/4, log 1/8) = 2 ln 2.
  EXPECT_NEAR(stats.confidence, 2.0 * std::log(2.0), 1e-6);
  EXPECT_NEAR(*stats.logprob_of(2), std::log(0.125), 1e-6);
  EXPECT_NEAR(*stats.logprob_of(1), std::log(0.25), 1e-6);
  EXPECT_FALSE(stats.logprob_of(3).has_value());
}

TEST(TokenStats, ClampsKAndHandlesMasksAndLargeLogits) {
  const std::vector<float> logits{1000.0f, kNegInf, 1000.0f};
  const TokenStats stats = compute_token_stats(logits.data(), 3, 2, 20);
  ASSERT_EQ(stats.top.size(), 3u);
  EXPECT_NEAR(stats.chosen_logprob, std::log(0.5), 1e-6);
  EXPECT_NEAR(stats.entropy, std::log(2.0), 1e-6);
  EXPECT_EQ(stats.top[2].id, 1);
  EXPECT_EQ(stats.top[2].logprob, kNegInf);
  EXPECT_NEAR(stats.confidence, std::log(2.0), 1e-6);  // the masked entry is skipped
  const TokenStats none = compute_token_stats(logits.data(), 3, 0, 0);
  EXPECT_TRUE(none.top.empty());
  EXPECT_EQ(none.confidence, 0.0f);
  EXPECT_NEAR(log_sum_exp(logits.data(), 3), 1000.0 + std::log(2.0), 1e-3);
}

TEST(TokenStats, TopKOnALargeRowMatchesSorting) {
  const int n = 30000;
  std::vector<float> logits(n);
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> coarse(0, 500);  // many exact ties
  for (float& x : logits) x = static_cast<float>(coarse(gen)) * 0.01f;
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  const TokenStats stats = compute_token_stats(logits.data(), n, 17, 20);
  ASSERT_EQ(stats.top.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(stats.top[i].id, order[i]) << i;
}

TEST(TokenStats, BadInputRaises) {
  const std::vector<float> logits{0.0f, 1.0f};
  EXPECT_THROW(compute_token_stats(logits.data(), 2, 2), Error);
  EXPECT_THROW(compute_token_stats(logits.data(), 2, -1), Error);
  EXPECT_THROW(compute_token_stats(logits.data(), 2, 0, -1), Error);
  EXPECT_THROW(compute_token_stats(logits.data(), 0, 0), Error);
  const std::vector<float> with_nan{0.0f, std::nanf("")};
  EXPECT_THROW(compute_token_stats(with_nan.data(), 2, 0), Error);
  const std::vector<float> masked(2, kNegInf);
  EXPECT_THROW(compute_token_stats(masked.data(), 2, 0), Error);
}

}  // namespace
}  // namespace glassbox
