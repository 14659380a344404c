// Kernel micro-benchmarks: dot (one row after another, one thread) and
// matmul (1 and 16 tokens, one thread and a 2-thread pool) for every
// computable type and every ISA this CPU runs, on random weights shaped
// 1024x1024 and 1024x3072 (rows x cols); the fast path (Fast/), its
// one-token products on the packed copies (Packed/),
// attention, and products streaming from memory (Stream/, LongRows/); the
// row kernels between the products (RmsNorm/, SiluMul/, QuantizeActs/,
// Dequantize/, SoftmaxSums/, FindAbove/, F32ToF16/, F16ToF32/) per ISA, the
// scalar reference among them, and the fused SwiGLU section against its
// steps apart (Swiglu/).
//
//   kernels_bench --benchmark_filter='Dot/Q4_K'   (one family)
//   kernels_bench --benchmark_min_time=0.05       (a quick pass)
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "tensor/fp16.h"

namespace {

using glassbox::DType;
namespace kernels = glassbox::kernels;

struct Shape {
  int64_t rows, cols;
};

// Random weights: random bytes with finite fp16 scales (and finite values for
// the float types), as in kernels_test.
std::vector<uint8_t> random_weights(DType type, Shape shape, std::mt19937& rng) {
  const int64_t row_bytes = glassbox::row_bytes(type, shape.cols);
  std::vector<uint8_t> bytes(static_cast<size_t>(row_bytes * shape.rows));
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  auto put16 = [&](size_t at, uint16_t v) { std::memcpy(&bytes[at], &v, 2); };
  const auto tr = glassbox::traits(type);
  for (size_t at = 0; at < bytes.size(); at += static_cast<size_t>(tr.block_bytes)) {
    switch (type) {
      case DType::F32: {
        const float f = value(rng);
        std::memcpy(&bytes[at], &f, 4);
        break;
      }
      case DType::F16:
        put16(at, glassbox::f32_to_fp16(value(rng)));
        break;
      case DType::BF16:
        put16(at, glassbox::f32_to_bf16(value(rng)));
        break;
      case DType::Q4_0:
      case DType::Q5_0:
        put16(at, glassbox::f32_to_fp16(0.01f * value(rng)));
        break;
      case DType::Q8_0:
        put16(at, glassbox::f32_to_fp16(0.01f * value(rng)));
        // No -128, as ggml's quantizer writes (and the packed form needs).
        for (size_t i = at + 2; i < at + 34; ++i)
          if (bytes[i] == 0x80) bytes[i] = 0x81;
        break;
      case DType::Q4_K:
        put16(at, glassbox::f32_to_fp16(0.01f * value(rng)));
        put16(at + 2, glassbox::f32_to_fp16(0.01f * value(rng)));
        break;
      case DType::Q6_K:
        put16(at + 208, glassbox::f32_to_fp16(0.01f * value(rng)));
        break;
      default:
        break;
    }
  }
  return bytes;
}

struct Case {
  DType type;
  Shape shape;
  std::string isa;
};

void set_counters(benchmark::State& state, const Case& c, int64_t weight_bytes, int64_t n_tokens) {
  state.SetBytesProcessed(state.iterations() * weight_bytes);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(c.shape.rows * c.shape.cols * n_tokens) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void bench_dot(benchmark::State& state, Case c) {
  if (!kernels::force_isa(c.isa)) {
    state.SkipWithError("ISA not available");
    return;
  }
  std::mt19937 rng(42);
  const auto weights = random_weights(c.type, c.shape, rng);
  std::vector<float> x(static_cast<size_t>(c.shape.cols), 0.5f);
  const int64_t row_bytes = glassbox::row_bytes(c.type, c.shape.cols);
  for (auto _ : state) {
    float sum = 0;
    for (int64_t r = 0; r < c.shape.rows; ++r)
      sum += kernels::dot(c.type, &weights[r * row_bytes], x.data(), c.shape.cols);
    benchmark::DoNotOptimize(sum);
  }
  set_counters(state, c, static_cast<int64_t>(weights.size()), 1);
}

void bench_matmul(benchmark::State& state, Case c) {
  if (!kernels::force_isa(c.isa)) {
    state.SkipWithError("ISA not available");
    return;
  }
  const int64_t n_tokens = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  std::mt19937 rng(42);
  const auto weights = random_weights(c.type, c.shape, rng);
  const glassbox::TensorView W = glassbox::TensorView::matrix(c.type, weights.data(), c.shape.cols, c.shape.rows,
                                                              glassbox::row_bytes(c.type, c.shape.cols));
  std::vector<float> X(static_cast<size_t>(n_tokens * c.shape.cols), 0.25f);
  std::vector<float> Y(static_cast<size_t>(n_tokens * c.shape.rows));
  glassbox::ThreadPool pool(threads);
  for (auto _ : state) {
    kernels::matmul(W, X.data(), n_tokens, Y.data(), threads > 1 ? &pool : nullptr);
    benchmark::DoNotOptimize(Y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, c, static_cast<int64_t>(weights.size()), n_tokens);
}

// The fast path: activations quantized once per call (included in the
// time, as in the forward pass), then the integer product.
void bench_fast(benchmark::State& state, Case c) {
  if (!kernels::force_isa(c.isa)) {
    state.SkipWithError("ISA not available");
    return;
  }
  const int64_t n_tokens = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  std::mt19937 rng(42);
  const auto weights = random_weights(c.type, c.shape, rng);
  const glassbox::TensorView W = glassbox::TensorView::matrix(c.type, weights.data(), c.shape.cols, c.shape.rows,
                                                              glassbox::row_bytes(c.type, c.shape.cols));
  std::vector<float> X(static_cast<size_t>(n_tokens * c.shape.cols));
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (float& v : X) v = value(rng);
  std::vector<float> Y(static_cast<size_t>(n_tokens * c.shape.rows));
  glassbox::ThreadPool pool(threads);
  kernels::Activations acts;
  for (auto _ : state) {
    acts.set(X.data(), c.shape.cols, n_tokens, c.shape.cols);
    kernels::matmul_fast(W, acts, Y.data(), threads > 1 ? &pool : nullptr);
    benchmark::DoNotOptimize(Y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, c, static_cast<int64_t>(weights.size()), n_tokens);
}

// The one-token product on the packed copy the engine makes for generation
// (kernels::pack_rows16, in the form this ISA reads), one thread: the
// kernels' compute rate with the matrix in cache.
// `layout`: in that form rather than the one the loader would choose
// (PackedForm/: the Q4_K form and the quads form side by side on the long
// rows the quads are for).
void bench_packed_in(benchmark::State& state, Case c, std::optional<glassbox::Rows16Layout> layout) {
  if (!kernels::force_isa(c.isa)) {
    state.SkipWithError("ISA not available");
    return;
  }
  std::mt19937 rng(42);
  const auto weights = random_weights(c.type, c.shape, rng);
  glassbox::TensorView W = glassbox::TensorView::matrix(c.type, weights.data(), c.shape.cols, c.shape.rows,
                                                        glassbox::row_bytes(c.type, c.shape.cols));
  std::vector<uint8_t> packed(static_cast<size_t>(kernels::rows16_bytes(W)));
  if (layout) {
    kernels::pack_rows16(W, packed.data(), *layout);
    W.rows16 = packed.data();
    W.rows16_layout = *layout;
  } else {
    kernels::attach_rows16(W, packed.data());
  }
  std::vector<float> X(static_cast<size_t>(c.shape.cols));
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (float& v : X) v = value(rng);
  std::vector<float> Y(static_cast<size_t>(c.shape.rows));
  kernels::Activations acts;
  for (auto _ : state) {
    acts.set(X.data(), c.shape.cols, 1, c.shape.cols);
    kernels::matmul_fast(W, acts, Y.data(), nullptr);
    benchmark::DoNotOptimize(Y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, c, static_cast<int64_t>(packed.size()), 1);
}

void bench_packed(benchmark::State& state, Case c) { bench_packed_in(state, c, std::nullopt); }

// The F32 tile product over token panels alone (kernels::gemm_f32_panels):
// a tile of F32 rows against 64 tokens, one thread, everything in cache: the
// kernel's compute rate (against the core's FMA peak), without the
// dequantizing and panel making that bench_fast includes.
void bench_f32_panels(benchmark::State& state, Case c) {
  if (!kernels::force_isa(c.isa)) {
    state.SkipWithError("ISA not available");
    return;
  }
  const int64_t rows = c.shape.rows, n = c.shape.cols, n_tokens = 64;
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> W(static_cast<size_t>(rows * n)), X(static_cast<size_t>(n_tokens * n));
  for (float& v : W) v = value(rng);
  for (float& v : X) v = value(rng);
  kernels::Activations acts;
  acts.set(X.data(), n, n_tokens, n);
  acts.prepare_for(DType::F32, nullptr);
  std::vector<float> Y(static_cast<size_t>(n_tokens * rows));
  for (auto _ : state) {
    kernels::gemm_f32_panels(W.data(), n, rows, acts.f32_panels(), 0, n_tokens, n, Y.data(), rows);
    benchmark::DoNotOptimize(Y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(static_cast<double>(2 * rows * n * n_tokens), benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

// Matrix-vector products streaming from memory: 48 matrices of 3072 x 1024
// (about 85 MB in Q4_K, more than caches hold), one after another as in a
// forward pass, against a plain read of the same bytes (the bound).
struct StreamSet {
  std::vector<std::vector<uint8_t>> weights;
  std::vector<glassbox::TensorView> views;
};

StreamSet& stream_set(DType type) {
  static std::map<DType, StreamSet> sets;
  StreamSet& s = sets[type];
  if (s.weights.empty()) {
    std::mt19937 rng(7);
    const Shape shape{3072, 1024};
    for (int i = 0; i < 48; ++i) {
      s.weights.push_back(random_weights(type, shape, rng));
      s.views.push_back(glassbox::TensorView::matrix(type, s.weights.back().data(), shape.cols, shape.rows,
                                                     glassbox::row_bytes(type, shape.cols)));
    }
  }
  return s;
}

void bench_stream(benchmark::State& state, DType type) {
  const int threads = static_cast<int>(state.range(0));
  const bool read_only = state.range(1) != 0;
  StreamSet& set = stream_set(type);
  std::vector<float> X(1024), Y(3072);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (float& v : X) v = value(rng);
  glassbox::ThreadPool pool(threads);
  kernels::Activations acts;
  int64_t bytes = 0;
  for (auto _ : state) {
    for (const auto& W : set.views) {
      if (read_only) {
        // Sum 64-byte lines: the memory system's read rate.
        const int64_t size = W.row_stride * W.rows();
        std::atomic<uint64_t> total{0};
        pool.ParallelFor(size / 64, [&](int64_t b, int64_t e, int) {
          uint64_t sum = 0;
          for (int64_t i = b; i < e; ++i) {
            uint64_t v;
            std::memcpy(&v, W.data + 64 * i, 8);
            sum += v;
          }
          total += sum;
        });
        benchmark::DoNotOptimize(total.load());
      } else {
        acts.set(X.data(), 1024, 1, 1024);
        kernels::matmul_fast(W, acts, Y.data(), threads > 1 ? &pool : nullptr);
        benchmark::DoNotOptimize(Y.data());
      }
      bytes += W.row_stride * W.rows();
    }
  }
  state.SetBytesProcessed(bytes);
}

// One-token F16 products of long rows streaming from memory: 12 matrices of
// 1536 x 8960 (an FFN's down projection in DeepSeek-R1-Distill-Qwen-1.5B's
// shape, 330 MB), 2 threads, each taking 16 rows at a time: one row at a
// time with kernels::dot (mode 0), the long-row kernel that the fast path
// uses for them (mode 1), or a plain read of the same bytes (mode 2).
void bench_long_rows(benchmark::State& state) {
  const int mode = static_cast<int>(state.range(0));
  static std::vector<std::vector<uint8_t>> weights;
  const Shape shape{1536, 8960};
  const int64_t stride = glassbox::row_bytes(DType::F16, shape.cols);
  if (weights.empty()) {
    std::mt19937 rng(11);
    for (int i = 0; i < 12; ++i) weights.push_back(random_weights(DType::F16, shape, rng));
  }
  std::vector<float> X(static_cast<size_t>(shape.cols)), Y(static_cast<size_t>(shape.rows));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (float& v : X) v = value(rng);
  glassbox::ThreadPool pool(2);
  int64_t bytes = 0;
  for (auto _ : state) {
    for (const auto& w : weights) {
      std::atomic<uint64_t> total{0};
      pool.ParallelFor(shape.rows / 16, [&](int64_t b, int64_t e, int) {
        uint64_t sum = 0;
        for (int64_t g = b; g < e; ++g) {
          const uint8_t* rows = w.data() + 16 * g * stride;
          if (mode == 0) {
            for (int64_t r = 0; r < 16; ++r)
              Y[16 * g + r] = kernels::dot(DType::F16, rows + r * stride, X.data(), shape.cols);
          } else if (mode == 1) {
            kernels::gemv_long_rows(DType::F16, rows, stride, 16, shape.cols, X.data(), Y.data() + 16 * g);
          } else {
            for (int64_t i = 0; i < 16 * stride; i += 64) {
              uint64_t v;
              std::memcpy(&v, rows + i, 8);
              sum += v;
            }
          }
        }
        total += sum;
      });
      benchmark::DoNotOptimize(total.load());
      benchmark::DoNotOptimize(Y.data());
      bytes += stride * shape.rows;
    }
  }
  state.SetBytesProcessed(bytes);
}

// Causal attention of one KV head over a context of `past` positions, its
// cache in F16 or Q8_0.
struct AttentionCase {
  std::string isa;
  DType kv_type;
};
void bench_attention(benchmark::State& state, AttentionCase c) {
  const std::string& isa = c.isa;
  if (!kernels::force_isa(isa)) {
    state.SkipWithError("ISA not available");
    return;
  }
  const int n_tokens = static_cast<int>(state.range(0));
  const int past = static_cast<int>(state.range(1));
  const int heads = 2, dim = 128;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(n_tokens * heads * dim)), out(q.size());
  for (float& v : q) v = value(rng);
  // The cache in the benchmark's type (F16 or Q8_0 rows of dim values).
  const DType kv_type = c.kv_type;
  const int64_t row_bytes = kernels::kv_row_bytes(kv_type, dim);
  std::vector<uint8_t> k(static_cast<size_t>((past + n_tokens) * row_bytes)), v(k.size());
  std::vector<float> row(dim);
  for (int j = 0; j < past + n_tokens; ++j) {
    for (std::vector<uint8_t>* cache : {&k, &v}) {
      for (float& x : row) x = value(rng);
      uint8_t* dst = cache->data() + j * row_bytes;
      if (kv_type == DType::Q8_0) {
        kernels::quantize_q8_0_row(row.data(), dim, dst);
      } else {
        for (int d = 0; d < dim; ++d) {
          const uint16_t h = glassbox::f32_to_fp16(row[d]);
          std::memcpy(dst + 2 * d, &h, 2);
        }
      }
    }
  }
  kernels::AttentionArgs a{q.data(), heads * dim, dim,      out.data(), heads * dim, dim, n_tokens, heads,
                           dim,      past,        k.data(), v.data(),   kv_type,     dim, 0.088f};
  kernels::AttentionScratch scratch;
  for (auto _ : state) {
    kernels::attention(a, scratch);
    benchmark::DoNotOptimize(out.data());
  }
  const double pairs = static_cast<double>(n_tokens) * heads * (past + (n_tokens + 1) / 2.0);
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * dim * pairs * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// The row kernels between the products, one thread, in cache: each ISA's
// variant beside the scalar reference (the "scalar" ISA runs it).
std::vector<float> random_floats(int64_t n, uint32_t seed, float lo = -4.0f, float hi = 4.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(lo, hi);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = value(rng);
  return x;
}

bool use_isa(benchmark::State& state, const std::string& isa) {
  if (kernels::force_isa(isa)) return true;
  state.SkipWithError("ISA not available");
  return false;
}

// Bytes read and written per call and values per call, as rates.
void set_row_bytes(benchmark::State& state, int64_t bytes) {
  state.SetBytesProcessed(state.iterations() * bytes);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void bench_rms_norm(benchmark::State& state, std::string isa) {
  if (!use_isa(state, isa)) return;
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 1), w = random_floats(n, 2, 0.5f, 1.5f);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    kernels::rms_norm(x.data(), w.data(), out.data(), n, 1e-6f);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_row_bytes(state, 3 * 4 * n);
}

void bench_silu_mul(benchmark::State& state, std::string isa) {
  if (!use_isa(state, isa)) return;
  const int64_t n = state.range(0);
  const auto g0 = random_floats(n, 1), u = random_floats(n, 2);
  std::vector<float> g(g0);
  for (auto _ : state) {
    // In place: restore the gate values each time (a copy in L1, small
    // beside the exponentials).
    std::memcpy(g.data(), g0.data(), g.size() * sizeof(float));
    kernels::silu_mul(g.data(), u.data(), n);
    benchmark::DoNotOptimize(g.data());
    benchmark::ClobberMemory();
  }
  set_row_bytes(state, 3 * 4 * n);
}

// One token's activations quantized for a product with `weight_type`
// (Activations::prepare_for: the blocks and every derived array the
// active ISA's kernels read), as the forward pass does before each product.
void bench_quantize_acts(benchmark::State& state, std::string isa, DType weight_type) {
  if (!use_isa(state, isa)) return;
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 3);
  kernels::Activations acts;
  acts.reserve(1, n);
  for (auto _ : state) {
    acts.set(x.data(), n, 1, n);
    acts.prepare_for(weight_type, nullptr);
    benchmark::DoNotOptimize(&acts);
    benchmark::ClobberMemory();
  }
  set_row_bytes(state, 4 * n);
}

void bench_dequantize(benchmark::State& state, std::string isa, DType type) {
  if (!use_isa(state, isa)) return;
  const int64_t n = state.range(0);
  std::mt19937 rng(5);
  const auto row = random_weights(type, Shape{1, n}, rng);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    kernels::dequantize_row(type, row.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_row_bytes(state, static_cast<int64_t>(row.size()) + 4 * n);
}

// A row of logits (a vocabulary's worth): the sums behind a token's
// log-probability and the entropy, and the top-k scan.
void bench_softmax_sums(benchmark::State& state, std::string isa) {
  if (!use_isa(state, isa)) return;
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 4, -20.0f, 20.0f);
  for (auto _ : state) benchmark::DoNotOptimize(kernels::softmax_sums(x.data(), n));
  set_row_bytes(state, 4 * n);
}

void bench_find_above(benchmark::State& state, std::string isa) {
  if (!use_isa(state, isa)) return;
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 4, -20.0f, 20.0f);
  // Above every value: the whole row is scanned, as after the first k.
  for (auto _ : state) benchmark::DoNotOptimize(kernels::find_above(x.data(), 0, n, 21.0f));
  set_row_bytes(state, 4 * n);
}

void bench_f16_rows(benchmark::State& state, std::string isa, bool to_f16) {
  if (!use_isa(state, isa)) return;
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 6);
  std::vector<uint16_t> h(static_cast<size_t>(n));
  kernels::f32_to_f16_row(x.data(), h.data(), n);
  std::vector<float> back(static_cast<size_t>(n));
  for (auto _ : state) {
    if (to_f16) {
      kernels::f32_to_f16_row(x.data(), h.data(), n);
      benchmark::DoNotOptimize(h.data());
    } else {
      kernels::f16_to_f32_row(h.data(), back.data(), n);
      benchmark::DoNotOptimize(back.data());
    }
    benchmark::ClobberMemory();
  }
  set_row_bytes(state, 6 * n);
}

// One token's gate and up products with SwiGLU and the down product's
// quantizing, packed Q4_K matrices of rows x cols (in cache): the fused
// section (kernels::swiglu_fast, fused = 1) against the same work as three
// steps (both products in one section, then SiLU times up and the
// quantizing on the calling thread, fused = 0).
void bench_swiglu(benchmark::State& state, Shape shape) {
  const bool fused = state.range(0) != 0;
  const int threads = static_cast<int>(state.range(1));
  kernels::force_isa("auto");
  std::mt19937 rng(8);
  const auto gate_rows = random_weights(DType::Q4_K, shape, rng), up_rows = random_weights(DType::Q4_K, shape, rng);
  const int64_t stride = glassbox::row_bytes(DType::Q4_K, shape.cols);
  glassbox::TensorView G = glassbox::TensorView::matrix(DType::Q4_K, gate_rows.data(), shape.cols, shape.rows, stride);
  glassbox::TensorView U = glassbox::TensorView::matrix(DType::Q4_K, up_rows.data(), shape.cols, shape.rows, stride);
  std::vector<uint8_t> packed_g(static_cast<size_t>(kernels::rows16_bytes(G))), packed_u(packed_g.size());
  kernels::attach_rows16(G, packed_g.data());
  kernels::attach_rows16(U, packed_u.data());
  const auto x = random_floats(shape.cols, 9, -1.0f, 1.0f);
  std::vector<float> gate(static_cast<size_t>(shape.rows)), up(gate.size());
  glassbox::ThreadPool pool(threads);
  kernels::Activations acts, hidden;
  hidden.reserve(1, shape.rows);
  for (auto _ : state) {
    acts.set(x.data(), shape.cols, 1, shape.cols);
    hidden.set(gate.data(), shape.rows, 1, shape.rows);
    if (fused) {
      kernels::swiglu_fast(G, U, acts, gate.data(), up.data(), hidden, DType::Q4_K, &pool);
    } else {
      const kernels::MatmulTask tasks[] = {{&G, &acts, gate.data(), shape.rows}, {&U, &acts, up.data(), shape.rows}};
      kernels::matmul_fast(tasks, &pool);
      kernels::silu_mul(gate.data(), up.data(), shape.rows);
      hidden.prepare_for(DType::Q4_K, nullptr);
    }
    benchmark::DoNotOptimize(&hidden);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(packed_g.size() + packed_u.size()));
}

}  // namespace

int main(int argc, char** argv) {
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,
                         DType::Q5_0, DType::Q8_0, DType::Q4_K, DType::Q6_K};
  const Shape shapes[] = {{1024, 1024}, {1024, 3072}};
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    if (!kernels::force_isa(isa)) continue;  // only what this CPU runs
    for (DType type : types) {
      for (Shape shape : shapes) {
        const Case c{type, shape, isa};
        const std::string suffix = std::string(glassbox::dtype_name(type)) + "/" + isa + "/" +
                                   std::to_string(shape.rows) + "x" + std::to_string(shape.cols);
        benchmark::RegisterBenchmark(("Dot/" + suffix).c_str(), bench_dot, c)->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("Matmul/" + suffix).c_str(), bench_matmul, c)
            ->ArgsProduct({{1, 16}, {1, 2}})
            ->ArgNames({"tokens", "threads"})
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  // Fast path, shaped like Qwen3-0.6B's matrices (rows x cols): Q/O, FFN
  // gate/up, FFN down.
  const Shape fast_shapes[] = {{2048, 1024}, {3072, 1024}, {1024, 3072}};
  for (const char* isa : {"avx2", "avx512", "avx512vnni"}) {
    if (!kernels::force_isa(isa)) continue;
    for (DType type : types) {
      for (Shape shape : fast_shapes) {
        const Case c{type, shape, isa};
        const std::string suffix = std::string(glassbox::dtype_name(type)) + "/" + isa + "/" +
                                   std::to_string(shape.rows) + "x" + std::to_string(shape.cols);
        benchmark::RegisterBenchmark(("Fast/" + suffix).c_str(), bench_fast, c)
            ->ArgsProduct({{1, 64}, {1, 2}})
            ->ArgNames({"tokens", "threads"})
            ->Unit(benchmark::kMicrosecond);
      }
    }
    // Tiles as the prompt products make them (rows x columns: the 0.6B
    // model's 1024 columns, the 1.5B model's 1536 and its FFN's 8960), where
    // this ISA has the kernel.
    for (Shape shape : {Shape{48, 1024}, Shape{30, 1536}, Shape{6, 8960}}) {
      if (!kernels::multi_token_f32(DType::F32)) break;
      const std::string suffix = std::string(isa) + "/" + std::to_string(shape.rows) + "x" + std::to_string(shape.cols);
      benchmark::RegisterBenchmark(("F32Panels/" + suffix).c_str(), bench_f32_panels, Case{DType::F32, shape, isa})
          ->Unit(benchmark::kMicrosecond);
    }
    {
      // 1024 x 1024 stays in a 1 MiB L2 (the compute rate); the others
      // come from L3, as the model's matrices do.
      for (DType type : {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::Q4_0, DType::Q5_0}) {
        if (!kernels::have_fast_rows16(type)) continue;
        for (Shape shape : {Shape{1024, 1024}, fast_shapes[0], fast_shapes[1], fast_shapes[2]}) {
          const std::string suffix = std::string(glassbox::dtype_name(type)) + "/" + isa + "/" +
                                     std::to_string(shape.rows) + "x" + std::to_string(shape.cols);
          benchmark::RegisterBenchmark(("Packed/" + suffix).c_str(), bench_packed, Case{type, shape, isa})
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
    // Each type's form against its quads form on the down projections' rows
    // (qwen3-0.6b: 1024 x 3072; r1-distill-1.5b: 1536 x 8960), where this
    // ISA packs the quads.
    for (auto [type, plain, quads] :
         {std::tuple{DType::Q4_K, glassbox::Rows16Layout::Q4_K, glassbox::Rows16Layout::Q4_K_Quads},
          std::tuple{DType::Q6_K, glassbox::Rows16Layout::Q6_K_SixBit, glassbox::Rows16Layout::Q6_K_Quads}}) {
      for (Shape shape : {Shape{1024, 3072}, Shape{1536, 8960}}) {
        // The choice reads the shape only.
        if (kernels::rows16_layout(glassbox::TensorView::matrix(type, nullptr, shape.cols, shape.rows,
                                                                glassbox::row_bytes(type, shape.cols))) != quads)
          break;
        for (auto [name, layout] : {std::pair{"", plain}, std::pair{"_Quads", quads}}) {
          const std::string label = std::string("PackedForm/") + std::string(glassbox::dtype_name(type)) + name + "/" +
                                    isa + "/" + std::to_string(shape.rows) + "x" + std::to_string(shape.cols);
          benchmark::RegisterBenchmark(label.c_str(), bench_packed_in, Case{type, shape, isa}, layout)
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
    for (DType kv_type : {DType::F16, DType::Q8_0}) {
      benchmark::RegisterBenchmark(
          (std::string("Attention/") + std::string(glassbox::dtype_name(kv_type)) + "/" + isa).c_str(), bench_attention,
          AttentionCase{isa, kv_type})
          ->ArgsProduct({{1, 64}, {0, 512, 4096}})
          ->ArgNames({"tokens", "past"})
          ->Unit(benchmark::kMicrosecond);
    }
  }
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    if (!kernels::force_isa(isa)) continue;
    const std::string is(isa);
    auto row_bench = [](const std::string& name, auto fn, std::initializer_list<int64_t> sizes) {
      auto* b = benchmark::RegisterBenchmark(name.c_str(), fn)->ArgName("n")->Unit(benchmark::kNanosecond);
      for (int64_t n : sizes) b->Arg(n);
    };
    // The 0.6B and 1.5B models' hidden sizes, FFN sizes, vocabulary.
    row_bench("RmsNorm/" + is, [is](benchmark::State& s) { bench_rms_norm(s, is); }, {1024, 1536});
    row_bench("SiluMul/" + is, [is](benchmark::State& s) { bench_silu_mul(s, is); }, {3072, 8960});
    for (auto [label, weight_type] : {std::pair{"Q8_32", DType::Q8_0}, std::pair{"Q8_256", DType::Q4_K}})
      row_bench(std::string("QuantizeActs/") + label + "/" + is,
                [is, weight_type](benchmark::State& s) { bench_quantize_acts(s, is, weight_type); },
                {1024, 3072, 8960});
    for (DType type : {DType::F16, DType::BF16, DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K})
      row_bench(std::string("Dequantize/") + std::string(glassbox::dtype_name(type)) + "/" + is,
                [is, type](benchmark::State& s) { bench_dequantize(s, is, type); }, {1024, 8960 / 256 * 256});
    row_bench("SoftmaxSums/" + is, [is](benchmark::State& s) { bench_softmax_sums(s, is); }, {151936});
    row_bench("FindAbove/" + is, [is](benchmark::State& s) { bench_find_above(s, is); }, {151936});
    row_bench("F32ToF16/" + is, [is](benchmark::State& s) { bench_f16_rows(s, is, true); }, {4096});
    row_bench("F16ToF32/" + is, [is](benchmark::State& s) { bench_f16_rows(s, is, false); }, {4096});
  }
  for (Shape shape : {Shape{3072, 1024}, Shape{8960, 1536}}) {
    benchmark::RegisterBenchmark(
        ("Swiglu/Q4_K/" + std::to_string(shape.rows) + "x" + std::to_string(shape.cols)).c_str(),
        [shape](benchmark::State& s) { bench_swiglu(s, shape); })
        ->ArgsProduct({{0, 1}, {1, 2}})
        ->ArgNames({"fused", "threads"})
        ->Unit(benchmark::kMicrosecond);
  }
  kernels::force_isa("auto");
  for (DType type : {DType::Q4_K, DType::Q6_K, DType::Q8_0}) {
    benchmark::RegisterBenchmark((std::string("Stream/") + std::string(glassbox::dtype_name(type))).c_str(),
                                 bench_stream, type)
        ->ArgsProduct({{1, 2}, {0, 1}})
        ->ArgNames({"threads", "read_only"})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("LongRows/F16/1536x8960", bench_long_rows)
      ->Arg(0)
      ->Arg(1)
      ->Arg(2)
      ->ArgName("mode")
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
