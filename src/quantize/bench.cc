#include "quantize/bench.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <utility>

#include "base/error.h"
#include "base/large_buffer.h"
#include "base/thread_pool.h"

namespace glassbox::bench {

namespace {

// The probe's read loop in the widest loads the CPU has. A plain x86-64
// build issues 16-byte loads, which do not saturate memory: measured on the
// 2-vCPU development VM, 13.6 GB/s with SSE2 loads against 24 GB/s with
// AVX-512 loads (2 threads, 1 GiB), so the bandwidth "limit" would read low.
__attribute__((target("avx512f"))) uint64_t sum_words_avx512(const uint64_t* w, int64_t begin, int64_t end) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = begin;
  for (; i + 32 <= end; i += 32) {
    a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(w + i));
    a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(w + i + 8));
    a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(w + i + 16));
    a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(w + i + 24));
  }
  // Stored and added, not _mm512_reduce_add_epi64: GCC 12 warns inside it.
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
  uint64_t total = 0;
  for (uint64_t v : lanes) total += v;
  for (; i < end; ++i) total += w[i];
  return total;
}

__attribute__((target("avx2"))) uint64_t sum_words_avx2(const uint64_t* w, int64_t begin, int64_t end) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 12)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  uint64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < end; ++i) total += w[i];
  return total;
}

uint64_t sum_words_generic(const uint64_t* w, int64_t begin, int64_t end) {
  // Eight independent sums keep enough loads in flight that the loop is
  // limited by memory, not by the add chain.
  uint64_t acc[8] = {};
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += w[i + k];
  }
  for (; i < end; ++i) acc[0] += w[i];
  uint64_t total = 0;
  for (uint64_t a : acc) total += a;
  return total;
}

using SumWordsFn = uint64_t (*)(const uint64_t*, int64_t, int64_t);

SumWordsFn widest_sum_words() {
  if (__builtin_cpu_supports("avx512f")) return sum_words_avx512;
  if (__builtin_cpu_supports("avx2")) return sum_words_avx2;
  return sum_words_generic;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

uint64_t matrix_bytes(const TensorView& w) {
  return w ? static_cast<uint64_t>(row_bytes(w.type, w.cols())) * static_cast<uint64_t>(w.rows()) : 0;
}

std::vector<TokenId> random_tokens(std::mt19937_64& rng, int n, int n_vocab) {
  std::uniform_int_distribution<TokenId> pick(0, n_vocab - 1);
  std::vector<TokenId> tokens(static_cast<size_t>(n));
  for (TokenId& t : tokens) t = pick(rng);
  return tokens;
}

void report(const SpeedOptions& options, std::string_view test, int rep, int reps) {
  if (options.progress) options.progress(test, rep, reps);
}

// A test's name and depth as llama-bench prints them ("tg128 @ d4096").
void name_test(TestResult& r, const std::string& base, int depth) {
  r.name = depth > 0 ? base + " @ d" + std::to_string(depth) : base;
  r.n_depth = depth;
}

// The test's context: options.depth random tokens (their own generator, so
// that the timed tokens are the same at every depth), evaluated once; each
// repetition then truncates back to them.
void fill_context(Context& ctx, const SpeedOptions& options, const std::string& test) {
  ctx.truncate(0);
  if (options.depth <= 0) return;
  if (options.depth >= ctx.n_ctx())
    throw Error("bench: a depth of " + std::to_string(options.depth) + " leaves no room in a context of " +
                std::to_string(ctx.n_ctx()));
  if (options.progress) options.progress(test + ": filling the context", -1, options.repetitions);
  std::mt19937_64 rng(options.seed + 2);
  ctx.eval(random_tokens(rng, options.depth, ctx.n_vocab()));
}

void finish(TestResult& r, int n_tokens) {
  for (double s : r.seconds) r.tokens_per_sec.push_back(s > 0 ? n_tokens / s : 0.0);
  r.tps = mean_sd(r.tokens_per_sec);
}

}  // namespace

MeanSd mean_sd(const std::vector<double>& values) {
  MeanSd r;
  if (values.empty()) return r;
  double sum = 0;
  for (double v : values) sum += v;
  r.mean = sum / static_cast<double>(values.size());
  if (values.size() > 1) {
    double sq = 0;
    for (double v : values) sq += (v - r.mean) * (v - r.mean);
    r.sd = std::sqrt(sq / static_cast<double>(values.size() - 1));
  }
  return r;
}

WeightFootprint weight_footprint(const Model& model) {
  WeightFootprint f;
  for (const gguf::TensorInfo& t : model.file().tensors()) {
    f.file_tensor_bytes += t.nbytes;
    f.n_params += static_cast<uint64_t>(t.elements());
  }
  const Weights& w = model.weights();
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      f.bytes_per_token += matrix_bytes(*m);
    }
  }
  f.bytes_per_token += matrix_bytes(w.output);
  f.bytes_per_token += static_cast<uint64_t>(row_bytes(w.token_embd.type, w.token_embd.cols()));
  return f;
}

TestResult bench_prompt(Context& ctx, int n_prompt, const SpeedOptions& options) {
  TestResult r;
  name_test(r, "pp" + std::to_string(n_prompt), options.depth);
  r.n_prompt = n_prompt;
  std::mt19937_64 rng(options.seed);
  const int n_vocab = ctx.n_vocab();
  fill_context(ctx, options, r.name);
  for (int rep = 0; rep <= options.repetitions; ++rep) {  // rep 0: warm-up
    const std::vector<TokenId> tokens = random_tokens(rng, n_prompt, n_vocab);
    ctx.truncate(options.depth);
    const auto start = Clock::now();
    ctx.eval(tokens);
    const double s = seconds_since(start);
    if (rep > 0) r.seconds.push_back(s);
    report(options, r.name, rep, options.repetitions);
  }
  finish(r, n_prompt);
  return r;
}

namespace {

// One timed repetition of a tg test: `tokens` one at a time after the
// test's depth, each token's time (its hook's work included) into r, or with
// `hooked` into it for the odd tokens (which run the hook).
void generation_repetition(Context& ctx, int depth, const std::vector<TokenId>& tokens, const TokenHook* hook,
                           TestResult& r, TestResult* hooked = nullptr) {
  ctx.truncate(depth);
  const int n_vocab = ctx.n_vocab();
  double seconds[2] = {0, 0};
  auto token_start = Clock::now();
  for (size_t i = 0; i < tokens.size(); ++i) {
    ctx.eval(std::span(&tokens[i], 1));
    const bool with_hook = hook != nullptr && (hooked == nullptr || i % 2 == 1);
    if (with_hook) (*hook)(ctx.logits(), n_vocab, tokens[(i + 1) % tokens.size()]);
    const auto now = Clock::now();
    const double s = std::chrono::duration<double>(now - token_start).count();
    TestResult& into = hooked != nullptr && with_hook ? *hooked : r;
    into.token_seconds.push_back(s);
    seconds[&into == &r ? 0 : 1] += s;
    token_start = now;
  }
  r.seconds.push_back(seconds[0]);  // the tokens' sum
  if (hooked != nullptr) hooked->seconds.push_back(seconds[1]);
}

TestResult generation_result(int n_gen, const SpeedOptions& options) {
  TestResult r;
  name_test(r, "tg" + std::to_string(n_gen), options.depth);
  r.n_gen = n_gen;
  r.token_seconds.reserve(static_cast<size_t>(n_gen) * static_cast<size_t>(std::max(options.repetitions, 0)));
  return r;
}

// The context at its depth; then a few tokens bring every weight page in
// and start the threads.
void generation_warm_up(Context& ctx, std::mt19937_64& rng, int n_gen, const SpeedOptions& options,
                        const std::string& test) {
  fill_context(ctx, options, test);
  for (TokenId t : random_tokens(rng, std::min(n_gen, 4), ctx.n_vocab())) ctx.eval(std::span(&t, 1));
}

void read_beside(const SpeedOptions& options, TestResult& r) {
  if (options.read_beside) r.reads_beside.push_back(options.read_beside());
}

}  // namespace

std::vector<RepetitionShare> repetition_shares(const TestResult& t, uint64_t bytes_per_token, double steady_ratio) {
  std::vector<RepetitionShare> shares;
  if (t.reads_beside.size() != t.tokens_per_sec.size() + 1) return shares;
  for (size_t i = 0; i < t.tokens_per_sec.size(); ++i) {
    RepetitionShare s;
    s.weight_bytes_per_second = t.tokens_per_sec[i] * static_cast<double>(bytes_per_token);
    s.read_before = t.reads_beside[i];
    s.read_after = t.reads_beside[i + 1];
    const double faster = std::max(s.read_before, s.read_after);
    s.fraction = faster > 0 ? s.weight_bytes_per_second / faster : 0.0;
    s.steady = faster > 0 && std::min(s.read_before, s.read_after) >= steady_ratio * faster;
    shares.push_back(s);
  }
  return shares;
}

TestResult bench_generation(Context& ctx, int n_gen, const SpeedOptions& options) {
  TestResult r = generation_result(n_gen, options);
  std::mt19937_64 rng(options.seed + 1);
  generation_warm_up(ctx, rng, n_gen, options, r.name);
  report(options, r.name, 0, options.repetitions);
  for (int rep = 1; rep <= options.repetitions; ++rep) {
    read_beside(options, r);
    generation_repetition(ctx, options.depth, random_tokens(rng, n_gen, ctx.n_vocab()), nullptr, r);
    report(options, r.name, rep, options.repetitions);
  }
  read_beside(options, r);
  finish(r, n_gen);
  return r;
}

std::pair<TestResult, TestResult> bench_generation_paired(Context& ctx, int n_gen, const SpeedOptions& options,
                                                          const TokenHook& hook, const std::string& suffix) {
  if (n_gen < 2) throw Error("bench: a tg test with and without a hook needs 2 tokens or more");
  TestResult plain = generation_result(n_gen, options);
  TestResult hooked = generation_result(n_gen, options);
  name_test(hooked, "tg" + std::to_string(n_gen) + suffix, options.depth);
  const std::string name = plain.name + " / " + hooked.name;
  std::mt19937_64 rng(options.seed + 1);
  generation_warm_up(ctx, rng, n_gen, options, name);
  report(options, name, 0, options.repetitions);
  for (int rep = 1; rep <= options.repetitions; ++rep) {
    read_beside(options, plain);
    generation_repetition(ctx, options.depth, random_tokens(rng, n_gen, ctx.n_vocab()), &hook, plain, &hooked);
    report(options, name, rep, options.repetitions);
  }
  read_beside(options, plain);
  hooked.reads_beside = plain.reads_beside;
  finish(plain, n_gen - n_gen / 2);
  finish(hooked, n_gen / 2);
  return {std::move(plain), std::move(hooked)};
}

ReadProbe::ReadProbe(ThreadPool& pool, uint64_t bytes) {
  const uint64_t n_words = std::max<uint64_t>(bytes / sizeof(uint64_t), 1);
  // In huge pages like the packed weights and the KV cache (see
  // base/large_buffer.h): the limit is what the machine can read at best.
  try {
    words_ = LargeArray<uint64_t>(n_words);
  } catch (const Error& e) {
    throw Error(std::string("bench: bandwidth probe: ") + e.what());
  }
  uint64_t* words = words_.data();
  // First touch by the threads that will read: pages land on their node.
  pool.ParallelFor(static_cast<int64_t>(n_words), [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) words[i] = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull;
  });
}

Bandwidth ReadProbe::measure(ThreadPool& pool, int runs) {
  Bandwidth b;
  b.threads = pool.size();
  b.runs = std::max(1, runs);
  b.buffer_bytes = buffer_bytes();
  const uint64_t* words = words_.data();
  const int64_t n = static_cast<int64_t>(words_.size());
  std::vector<uint64_t> sums(static_cast<size_t>(pool.size()), 0);
  const SumWordsFn sum_words = widest_sum_words();
  double best = 0;
  for (int run = 0; run < b.runs; ++run) {
    const auto start = Clock::now();
    pool.ParallelFor(n, [&](int64_t begin, int64_t end, int thread) {
      sums[static_cast<size_t>(thread)] += sum_words(words, begin, end);
    });
    const double s = seconds_since(start);
    if (s > 0) {
      best = std::max(best, static_cast<double>(b.buffer_bytes) / s);
      b.run_bytes_per_second.push_back(static_cast<double>(b.buffer_bytes) / s);
    }
  }
  // Publish the sums so the reads cannot be optimised away.
  volatile uint64_t sink = 0;
  for (uint64_t s : sums) sink = sink + s;
  b.bytes_per_second = best;
  return b;
}

}  // namespace glassbox::bench
