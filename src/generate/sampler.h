// Token sampling with the semantics of llama.cpp's default sampler chain:
//
//   penalties -> top-k -> top-p -> min-p -> temperature -> draw
//
// Filters work on the (penalised) logits at temperature 1; the temperature
// only shapes the final draw, as in llama.cpp. temperature == 0 means greedy:
// the argmax of the penalised logits, ties going to the lowest id.
//
// Cost per call is linear in the vocabulary plus a sort of the survivors only:
// top-k selects with a bounded heap, top-p finds the logit band where the
// nucleus ends from a histogram of probability mass, min-p is a threshold.
// Ties are broken towards the lower id everywhere and the draw walks the
// survivors in a canonical order (by id, or fully sorted), so results never
// depend on the standard library's sort or partition algorithms.
//
// The draw uses std::mt19937_64 (whose output sequence the C++ standard fixes)
// and a uniform double made from its top 53 bits by hand, not
// std::uniform_real_distribution (whose algorithm is up to the library), so a
// seed gives the same tokens run after run, and across standard libraries
// (up to last-bit differences of exp() in the C maths library).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "tokenizer/tokenizer.h"  // TokenId

namespace glassbox {

struct SamplingParams {
  float temperature = 0.8f;        // 0: greedy; < 0 is invalid
  int top_k = 40;                  // <= 0: off
  float top_p = 0.95f;             // in (0, 1]; 1: off
  float min_p = 0.05f;             // in [0, 1]; 0: off (relative to the most likely token)
  float repeat_penalty = 1.0f;     // > 0; 1: off. Logit > 0 is divided by it, <= 0 multiplied
  int repeat_last_n = 64;          // window of history the penalties look at; 0: off, -1: all
  float presence_penalty = 0.0f;   // subtracted once from every token seen in the window
  float frequency_penalty = 0.0f;  // subtracted once per occurrence in the window
  uint64_t seed = 42;
};

// Throws glassbox::Error naming the first bad field.
void validate(const SamplingParams& params);

class Sampler {
 public:
  static constexpr int kMassBuckets = 1024;  // top-p histogram resolution

  // n_vocab sizes the candidate buffers so that sample() does not allocate;
  // a later call with a larger vocabulary grows them once.
  Sampler(const SamplingParams& params, int n_vocab);

  // Picks the next token from one row of logits (not modified). history is
  // the token sequence so far (the penalties look at its last repeat_last_n
  // entries). Throws glassbox::Error on NaN/+inf logits, a row with no finite
  // logit, or history ids outside [0, n_vocab).
  TokenId sample(const float* logits, int n_vocab, std::span<const TokenId> history);

  // The penalty stage on its own, in place on a full row (what sample() does
  // to its private copy first). Exposed for tests and for the token trace.
  void apply_penalties(float* logits, int n_vocab, std::span<const TokenId> history);

  const SamplingParams& params() const { return params_; }
  void reseed(uint64_t seed) { rng_.seed(seed); }

 private:
  struct Candidate {
    TokenId id;
    float logit;
  };
  void ensure_capacity(int n_vocab);
  // Sorts candidates_[sorted_count_, end) far enough that the first
  // `wanted` entries are the largest in descending order.
  void sort_prefix(size_t wanted);
  double uniform01();

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> work_logits_;                     // penalised copy of the row, by id
  std::vector<Candidate> candidates_;                  // surviving candidates
  std::vector<float> weights_;                         // unnormalised draw weights of the candidates
  std::array<double, kMassBuckets> mass_by_bucket_{};  // top-p: probability mass per logit band
  std::vector<int32_t> occurrences_;                   // per id counts inside the penalty window
  size_t candidate_count_ = 0;
  size_t sorted_count_ = 0;  // leading candidates known to be in final order
};

// ---------------------------------------------------------------------------
// Per-token statistics for the token trace, computed on the raw model
// distribution (softmax of the logits at temperature 1, no penalties).

struct TokenLogprob {
  TokenId id;
  float logprob;  // natural log
};

struct TokenStats {
  TokenId chosen = -1;
  float chosen_logprob = 0.0f;    // log p(chosen)
  float entropy = 0.0f;           // of the whole distribution, in nats
  std::vector<TokenLogprob> top;  // the k most likely, descending, ties by lower id
  // DeepConf token confidence: -mean(logprob) over `top` (higher = the model
  // is more peaked). Entries with logprob -inf (masked tokens) are skipped.
  float confidence = 0.0f;

  // Log-probability of `id` if it is the chosen token or among `top`.
  std::optional<float> logprob_of(TokenId id) const;
};

// k is clamped to n_vocab. Throws glassbox::Error if chosen is out of range,
// k < 0, or the row holds NaN/+inf or no finite value.
TokenStats compute_token_stats(const float* logits, int n_vocab, TokenId chosen, int k = 20);

// log(sum(exp(logits))) computed stably; -inf entries contribute nothing.
double log_sum_exp(const float* logits, int n_vocab);

}  // namespace glassbox
