#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "base/error.h"

namespace glassbox {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// top-p histogram: logits within kBucketSpan of the maximum fall into
// Sampler::kMassBuckets equal bands; the last band also takes everything lower.
constexpr float kBucketSpan = 32.0f;

// Rejects NaN and +inf: they come from a broken model or file, and would make
// every later comparison or softmax meaningless. -inf is a legitimate mask.
void check_logit(float value, int id) {
  if (std::isnan(value) || value == std::numeric_limits<float>::infinity()) {
    throw Error("logits row holds a non-finite value (" + std::to_string(value) + ") at token " + std::to_string(id));
  }
}

void check_row_size(int n_vocab) {
  if (n_vocab <= 0) throw Error("logits row size must be positive, got " + std::to_string(n_vocab));
}

}  // namespace

void validate(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
    throw Error("temperature must be a finite number >= 0, got " + std::to_string(p.temperature));
  }
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    throw Error("top_p must be in (0, 1], got " + std::to_string(p.top_p));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    throw Error("min_p must be in [0, 1], got " + std::to_string(p.min_p));
  }
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) {
    throw Error("repeat_penalty must be a finite number > 0, got " + std::to_string(p.repeat_penalty));
  }
  if (p.repeat_last_n < -1) {
    throw Error("repeat_last_n must be -1 (whole history), 0 (off) or positive, got " +
                std::to_string(p.repeat_last_n));
  }
  if (!std::isfinite(p.presence_penalty)) throw Error("presence_penalty must be finite");
  if (!std::isfinite(p.frequency_penalty)) throw Error("frequency_penalty must be finite");
}

Sampler::Sampler(const SamplingParams& params, int n_vocab) : params_(params), rng_(params.seed) {
  validate(params_);
  check_row_size(n_vocab);
  ensure_capacity(n_vocab);
}

void Sampler::ensure_capacity(int n_vocab) {
  const size_t n = static_cast<size_t>(n_vocab);
  if (work_logits_.size() < n) {
    work_logits_.resize(n);
    candidates_.resize(n);
    weights_.resize(n);
    occurrences_.resize(n, 0);
  }
}

void Sampler::apply_penalties(float* logits, int n_vocab, std::span<const TokenId> history) {
  check_row_size(n_vocab);
  const bool off = params_.repeat_last_n == 0 || (params_.repeat_penalty == 1.0f && params_.presence_penalty == 0.0f &&
                                                  params_.frequency_penalty == 0.0f);
  if (off || history.empty()) return;
  ensure_capacity(n_vocab);
  size_t window = history.size();
  if (params_.repeat_last_n > 0) window = std::min(window, static_cast<size_t>(params_.repeat_last_n));
  const std::span<const TokenId> recent = history.last(window);
  // Validate every id before touching the counters so an error leaves them clean.
  for (TokenId id : recent) {
    if (id < 0 || id >= n_vocab) {
      throw Error("token history holds id " + std::to_string(id) + " outside the vocabulary of " +
                  std::to_string(n_vocab));
    }
  }
  for (TokenId id : recent) ++occurrences_[id];
  // Each distinct id is penalised once; zeroing its counter marks it done and
  // leaves the buffer ready for the next call.
  for (TokenId id : recent) {
    const int32_t count = occurrences_[id];
    if (count == 0) continue;
    occurrences_[id] = 0;
    float& logit = logits[id];
    if (logit == -std::numeric_limits<float>::infinity()) continue;  // masked stays masked
    // In double and clamped: extreme (but valid) penalties must not turn a
    // logit into +-inf or NaN, which the later stages cannot rank.
    double value = logit;
    if (value <= 0.0) {
      value *= params_.repeat_penalty;
    } else {
      value /= params_.repeat_penalty;
    }
    value -= double(count) * params_.frequency_penalty + params_.presence_penalty;
    constexpr double kFloatMax = std::numeric_limits<float>::max();
    logit = static_cast<float>(std::clamp(value, -kFloatMax, kFloatMax));
  }
}

namespace {
// Descending logit; equal logits keep the lower id first so that every order
// (and hence every draw) is fully determined.
struct ByLogitDescending {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};
}  // namespace

void Sampler::sort_prefix(size_t wanted) {
  wanted = std::min(wanted, candidate_count_);
  if (wanted <= sorted_count_) return;
  // Grow the sorted prefix geometrically: a nucleus usually holds a few
  // hundred tokens, so this avoids sorting a 150k vocabulary in full. Each
  // step is a linear selection of the next block, then a sort of the block.
  const size_t step = std::max({wanted - sorted_count_, sorted_count_, size_t{64}});
  const size_t end = std::min(candidate_count_, sorted_count_ + step);
  const auto first = candidates_.begin() + static_cast<std::ptrdiff_t>(sorted_count_);
  const auto middle = candidates_.begin() + static_cast<std::ptrdiff_t>(end);
  const auto last = candidates_.begin() + static_cast<std::ptrdiff_t>(candidate_count_);
  if (middle != last) std::nth_element(first, middle, last, ByLogitDescending{});
  std::sort(first, middle, ByLogitDescending{});
  sorted_count_ = end;
}

double Sampler::uniform01() {
  // 53 random bits -> a double in [0, 1), the same on every platform.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

TokenId Sampler::sample(const float* logits, int n_vocab, std::span<const TokenId> history) {
  check_row_size(n_vocab);
  ensure_capacity(n_vocab);
  float* work = work_logits_.data();
  for (int id = 0; id < n_vocab; ++id) {
    const float value = logits[id];
    // One comparison per entry on the common path: it fails for NaN and +inf only.
    if (!(value <= std::numeric_limits<float>::max())) {
      if (value != kNegInf) check_logit(value, id);
    }
    work[id] = value;
  }
  apply_penalties(work, n_vocab, history);

  // A positive temperature so small that 1/T overflows is greedy in effect.
  if (params_.temperature <= 0.0f || !std::isfinite(1.0f / params_.temperature)) {
    int best = 0;
    for (int id = 1; id < n_vocab; ++id) {
      if (work[id] > work[best]) best = id;  // strict: ties stay with the lowest id
    }
    if (work[best] == kNegInf) throw Error("every logit is -inf: nothing can be sampled");
    return best;
  }

  // Candidates: the finite logits, or with top-k only the k best of them,
  // selected in one pass with a bounded heap whose front is the weakest kept.
  candidate_count_ = 0;
  sorted_count_ = 0;
  auto begin = candidates_.begin();
  const ByLogitDescending better;
  const bool use_top_k = params_.top_k > 0 && params_.top_k < n_vocab;
  if (use_top_k) {
    const auto k = static_cast<size_t>(params_.top_k);
    for (int id = 0; id < n_vocab; ++id) {
      const float value = work[id];
      if (value == kNegInf) continue;
      if (candidate_count_ < k) {
        candidates_[candidate_count_++] = Candidate{id, value};
        if (candidate_count_ == k) std::make_heap(begin, begin + static_cast<std::ptrdiff_t>(k), better);
      } else if (value > candidates_[0].logit) {
        // Ids rise through the loop, so an equal logit never outranks a kept one.
        std::pop_heap(begin, begin + static_cast<std::ptrdiff_t>(k), better);
        candidates_[k - 1] = Candidate{id, value};
        std::push_heap(begin, begin + static_cast<std::ptrdiff_t>(k), better);
      }
    }
    std::sort(begin, begin + static_cast<std::ptrdiff_t>(candidate_count_), better);
    sorted_count_ = candidate_count_;
  } else {
    for (int id = 0; id < n_vocab; ++id) {
      if (work[id] != kNegInf) candidates_[candidate_count_++] = Candidate{id, work[id]};
    }
  }
  if (candidate_count_ == 0) throw Error("every logit is -inf: nothing can be sampled");

  // top-p: the smallest prefix (in probability order) whose mass reaches p.
  if (params_.top_p < 1.0f && candidate_count_ > 1) {
    const bool sorted = sorted_count_ == candidate_count_;
    float max_logit = kNegInf;
    for (size_t i = 0; i < candidate_count_; ++i) max_logit = std::max(max_logit, candidates_[i].logit);
    // Unsorted (no top-k): a histogram of probability mass by logit tells
    // which logit band the nucleus ends in, so only the tokens above that
    // band need sorting -- not the whole vocabulary (llama.cpp buckets too).
    auto bucket_of = [max_logit](float logit) {
      const float scaled = (max_logit - logit) * (kMassBuckets / kBucketSpan);
      return scaled >= kMassBuckets - 1 ? kMassBuckets - 1 : static_cast<int>(scaled);
    };
    if (!sorted) mass_by_bucket_.fill(0.0);
    double total = 0.0;
    for (size_t i = 0; i < candidate_count_; ++i) {
      const double weight = std::exp(candidates_[i].logit - max_logit);
      total += weight;
      if (!sorted) mass_by_bucket_[static_cast<size_t>(bucket_of(candidates_[i].logit))] += weight;
    }
    if (!sorted) {
      // The margin keeps the chosen band safely past p despite the different
      // summation order of the exact walk below.
      int last_band = kMassBuckets - 1;
      double band_mass = 0.0;
      for (int b = 0; b < kMassBuckets; ++b) {
        band_mass += mass_by_bucket_[static_cast<size_t>(b)];
        if (band_mass / total >= double(params_.top_p) + 1e-6) {
          last_band = b;
          break;
        }
      }
      // min-p survivors are a prefix of the sorted order too, so the final
      // set is the shorter prefix: apply its bound here as well.
      // The rest is dropped; the filter keeps id order (std::partition's
      // order is up to the library, and the draw walks in this order).
      const float min_p_floor = params_.min_p > 0.0f ? max_logit + std::log(params_.min_p) : kNegInf;
      size_t kept = 0;
      for (size_t i = 0; i < candidate_count_; ++i) {
        const Candidate c = candidates_[i];
        if (c.logit >= min_p_floor && bucket_of(c.logit) <= last_band) candidates_[kept++] = c;
      }
      candidate_count_ = kept;
    }
    double cumulative = 0.0;
    for (size_t i = 0; i < candidate_count_; ++i) {
      sort_prefix(i + 1);
      cumulative += std::exp(candidates_[i].logit - max_logit) / total;
      if (cumulative >= params_.top_p) {
        candidate_count_ = i + 1;
        break;
      }
    }
    sorted_count_ = std::min(sorted_count_, candidate_count_);
  }

  // min-p: keep tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p).
  if (params_.min_p > 0.0f && candidate_count_ > 1) {
    float max_logit = kNegInf;
    for (size_t i = 0; i < candidate_count_; ++i) max_logit = std::max(max_logit, candidates_[i].logit);
    const float threshold = max_logit + std::log(params_.min_p);
    size_t kept = 0;
    for (size_t i = 0; i < candidate_count_; ++i) {
      if (candidates_[i].logit >= threshold) candidates_[kept++] = candidates_[i];
    }
    candidate_count_ = kept;  // the maximum always passes, so kept >= 1
  }

  // temperature + draw
  float max_logit = kNegInf;
  for (size_t i = 0; i < candidate_count_; ++i) max_logit = std::max(max_logit, candidates_[i].logit);
  const float inv_temperature = 1.0f / params_.temperature;
  float* weights = weights_.data();
  double total = 0.0;
  for (size_t i = 0; i < candidate_count_; ++i) {
    weights[i] = std::exp((candidates_[i].logit - max_logit) * inv_temperature);
    total += weights[i];
  }
  const double target = uniform01() * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < candidate_count_; ++i) {
    cumulative += weights[i];
    if (target < cumulative) return candidates_[i].id;
  }
  // Rounding left target at (or past) the sum: the last candidate with
  // weight owns that edge.
  size_t last = candidate_count_ - 1;
  while (last > 0 && weights[last] == 0.0f) --last;
  return candidates_[last].id;
}

// ---------------------------------------------------------------------------

std::optional<float> TokenStats::logprob_of(TokenId id) const {
  if (id == chosen) return chosen_logprob;
  for (const TokenLogprob& entry : top) {
    if (entry.id == id) return entry.logprob;
  }
  return std::nullopt;
}

namespace {
float checked_row_max(const float* logits, int n_vocab) {
  check_row_size(n_vocab);
  float max_logit = kNegInf;
  for (int id = 0; id < n_vocab; ++id) {
    check_logit(logits[id], id);
    max_logit = std::max(max_logit, logits[id]);
  }
  return max_logit;
}

double log_sum_exp_with_max(const float* logits, int n_vocab, float max_logit) {
  if (max_logit == kNegInf) return -std::numeric_limits<double>::infinity();
  double sum = 0.0;
  for (int id = 0; id < n_vocab; ++id) sum += std::exp(double(logits[id]) - max_logit);
  return max_logit + std::log(sum);
}
}  // namespace

double log_sum_exp(const float* logits, int n_vocab) {
  return log_sum_exp_with_max(logits, n_vocab, checked_row_max(logits, n_vocab));
}

TokenStats compute_token_stats(const float* logits, int n_vocab, TokenId chosen, int k) {
  const float max_logit = checked_row_max(logits, n_vocab);
  if (max_logit == kNegInf) throw Error("every logit is -inf: no distribution to describe");
  if (chosen < 0 || chosen >= n_vocab) {
    throw Error("chosen token " + std::to_string(chosen) + " is outside the vocabulary of " + std::to_string(n_vocab));
  }
  if (k < 0) throw Error("top-k size must be >= 0, got " + std::to_string(k));
  k = std::min(k, n_vocab);

  const double log_z = log_sum_exp_with_max(logits, n_vocab, max_logit);
  TokenStats stats;
  stats.chosen = chosen;
  stats.chosen_logprob = static_cast<float>(double(logits[chosen]) - log_z);

  // H = -sum p log p with log p = logit - log_z; masked tokens (p = 0) add 0.
  double entropy = 0.0;
  for (int id = 0; id < n_vocab; ++id) {
    if (logits[id] == kNegInf) continue;
    const double logprob = double(logits[id]) - log_z;
    entropy -= std::exp(logprob) * logprob;
  }
  stats.entropy = static_cast<float>(std::max(entropy, 0.0));

  // Top-k by a bounded heap whose front is the weakest kept entry.
  struct Entry {
    TokenId id;
    float logit;
  };
  std::vector<Entry> heap;
  heap.reserve(static_cast<size_t>(k));
  const ByLogitDescending better;
  for (int id = 0; id < n_vocab && k > 0; ++id) {
    const Entry entry{id, logits[id]};
    if (heap.size() < static_cast<size_t>(k)) {
      heap.push_back(entry);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(entry, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = entry;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  stats.top.reserve(heap.size());
  double logprob_sum = 0.0;
  int finite_count = 0;
  for (const Entry& entry : heap) {
    const double logprob = double(entry.logit) - log_z;
    stats.top.push_back(TokenLogprob{entry.id, static_cast<float>(logprob)});
    if (entry.logit != kNegInf) {
      logprob_sum += logprob;
      ++finite_count;
    }
  }
  stats.confidence = finite_count > 0 ? static_cast<float>(-logprob_sum / finite_count) : 0.0f;
  return stats;
}

}  // namespace glassbox
