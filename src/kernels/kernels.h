// Numeric kernels over typed weight rows. Every kernel has a plain scalar
// reference (namespace `scalar`) and SIMD variants (AVX2, AVX-512) chosen at
// run time from the CPU's features; tests compare each against the reference.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/tensor_view.h"

namespace glassbox {
class ThreadPool;
}

namespace glassbox::kernels {

// Scalar references: straightforward code that follows ggml's block layouts.
namespace scalar {
// Dequantizes `n` elements (a multiple of the type's block size) to float.
void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n);
// Dot product of a stored weight row with float activations, summed in float
// after dequantizing each block (F32 activations, no activation quantization).
float dot(DType type, const uint8_t* row, const float* x, int64_t n);
}  // namespace scalar

// Dispatched versions (best variant for this CPU).
void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n);
float dot(DType type, const uint8_t* row, const float* x, int64_t n);

// Y[t][r] = dot(W.row(r), X[t]) for t < n_tokens, r < W.rows().
// X is [n_tokens][W.cols()] row-major, Y is [n_tokens][W.rows()].
// Work is split over rows with the pool (nullptr: run on the calling thread).
// For n_tokens > 1 each tile of rows is dequantized once into a per-thread
// F32 buffer and reused for every token; results equal per-token dot up to
// float rounding. Throws glassbox::Error for an unsupported type, a row
// length that is not a multiple of the block size, or a too-small row_stride.
void matmul(const TensorView& W, const float* X, int64_t n_tokens, float* Y, ThreadPool* pool);

// ============================================================== fast path
//
// The "fast" precision quantizes activations to 8-bit blocks as ggml does
// (its vec_dot_type) and multiplies them with the stored integer weights in
// integer arithmetic, scaling once per block. Logits move by about 0.1
// compared with F32 activations (tests/data/reference/MODELS.md), the same
// as llama.cpp's own CPU path. Where floats are the faster way to multiply
// several tokens (multi_token_f32: F32, F16 and BF16 weights; Q8_0, Q4_0,
// Q5_0 and Q6_K on AVX2), prompts multiply dequantized weights with F32
// activations instead, exactly. The functions above (F32 activations) are
// the exact path.

// How the fast path feeds activations to a weight type.
enum class ActFormat : uint8_t {
  F32,     // F32, F16, BF16 weights: activations stay float (memory-bound anyway)
  Q8_32,   // Q8_0, Q4_0, Q5_0: blocks of 32, scale rounded to fp16 (ggml's Q8_0)
  Q8_256,  // Q4_K, Q6_K: blocks of 256, one float scale (ggml's Q8_K)
};
ActFormat act_format_for(DType weight_type);
// Values per quantization block of a format (1 for F32).
int64_t act_block(ActFormat format);

// Rows of quantized activations, n values each. Per row:
//   qs[n]          int8 values
//   scales[n/32]   scale of each run of 32 values (a Q8_256 block repeats its
//                  scale in its 8 runs): value ≈ qs * scale
//   sums[n/32]     sum of the 32 qs of each run
// and derived data the SIMD kernels use:
//   scaled_sums[n/16] scale * (sum of the 16 qs) of each run of 16, as float
//   lane_bias[n/4]    -128 * (sum of each 4 consecutive qs)
//   sub_bias[n/16]    -32 * (sum of each 16 consecutive qs): the -32 of a
//                     Q6_K sub-block's q - 32, made once per row here rather
//                     than once per call of the one-token kernels, which
//                     take a few rows at a time
//   lane_scales[n/4]  the scale of each 4 consecutive values (one entry per
//                     32-bit lane of a dot-product instruction)
//   qs_q4k[n]         (Q8_256 only) qs with the runs of 32 of each block of
//                     256 in Q4_K's nibble order: 0, 2, 1, 3, 4, 6, 5, 7.
//   qs_lanes[n_pad], group_scales[n_pad/16]: the lane-major copy some
//                     ISAs' matrix-matrix kernels read (see
//                     kernels_internal.h; empty where unused).
// Storage grows only when a call needs more than before: steady-state calls
// do not allocate.
class QuantizedActs {
 public:
  void reserve(int64_t max_rows, int64_t max_n);
  // Quantizes rows x[t * ldx .. t * ldx + n) for t < n_rows. Throws
  // glassbox::Error when n is not a multiple of the format's block.
  void quantize(ActFormat format, const float* x, int64_t ldx, int64_t n_rows, int64_t n, ThreadPool* pool);
  // The same for one row made piece by piece: begin_columns() sizes the
  // storage; then quantize_columns() makes columns [c0, c1) of the row x
  // points to (c0 a multiple of lane_group(), c1 too or the row's end), the
  // same bits as quantize() gives them. Pieces may be done by different
  // threads at once; each must be done before the row is read.
  void begin_columns(ActFormat format, int64_t n);
  void quantize_columns(const float* x, int64_t c0, int64_t c1);

  ActFormat format() const { return format_; }
  int64_t rows() const { return rows_; }
  int64_t n() const { return n_; }
  const int8_t* qs(int64_t row) const { return qs_.data() + row * n_; }
  const float* scales(int64_t row) const { return scales_.data() + row * (n_ / 32); }
  const int32_t* sums(int64_t row) const { return sums_.data() + row * (n_ / 32); }
  const float* scaled_sums(int64_t row) const { return scaled_sums_.data() + row * (n_ / 16); }
  const int32_t* lane_bias(int64_t row) const { return lane_bias_.data() + row * (n_ / 4); }
  const int32_t* sub_bias(int64_t row) const { return sub_bias_.data() + row * (n_ / 16); }
  const float* lane_scales(int64_t row) const { return lane_scales_.data() + row * (n_ / 4); }
  const int8_t* qs_q4k(int64_t row) const { return qs_q4k_.data() + row * n_; }
  // Values per lane-major group (256 for Q8_256, 512 for Q8_32) and the
  // row length padded to whole groups.
  int64_t lane_group() const { return format_ == ActFormat::Q8_256 ? 256 : 512; }
  int64_t n_padded() const { return (n_ + lane_group() - 1) / lane_group() * lane_group(); }
  const int8_t* qs_lanes(int64_t row) const { return qs_lanes_.data() + row * n_padded(); }
  const float* group_scales(int64_t row) const { return group_scales_.data() + row * (n_padded() / 16); }

 private:
  // Columns [c0, c1) of row t (whole lane groups, or up to the row's end).
  void quantize_span(const float* x_row, int64_t t, int64_t c0, int64_t c1);

  ActFormat format_ = ActFormat::Q8_32;
  int64_t rows_ = 0, n_ = 0;
  std::vector<int8_t> qs_, qs_q4k_, qs_lanes_;
  std::vector<float> scales_, scaled_sums_, lane_scales_, group_scales_;
  std::vector<int32_t> sums_, lane_bias_, sub_bias_;
};

// The input of fast matrix products: float rows, plus their quantized forms,
// each made at most once per set().
class Activations {
 public:
  // Sizes the forms for up to max_rows rows of max_n values, so that later
  // calls do not allocate; f32_panels: also the token panels of the weight
  // types multiplied in F32 (multi_token_f32).
  void reserve(int64_t max_rows, int64_t max_n, bool f32_panels = false);
  // x stays owned by the caller and must outlive the products.
  void set(const float* x, int64_t ldx, int64_t n_rows, int64_t n);
  // Makes the form that `weight_type` needs (no-op when it exists).
  void prepare_for(DType weight_type, ThreadPool* pool);
  // The same for a single row that several threads write piece by piece:
  // after set(), begin_columns(); then each thread calls prepare_columns()
  // for the columns it has finished (a multiple of column_group() wide);
  // then finish_columns() marks the form made. The quantizing then happens
  // in parallel, where the values were written, instead of on one thread
  // after them. column_group(): 0 when `weight_type` needs no quantized form.
  static int64_t column_group(DType weight_type);
  void begin_columns(DType weight_type);
  void prepare_columns(DType weight_type, int64_t c0, int64_t c1);
  void finish_columns(DType weight_type);
  const QuantizedActs& quantized(ActFormat format) const;
  // The rows in panels of 16 tokens (value k of token t at
  // [(t / 16) * 16 * n + 16 * k + t % 16], the last panel padded with
  // zeros), made by prepare_for() when there are several rows, for a weight
  // type with F32 activations or one multi_token_f32 names.
  const float* f32_panels() const;
  const float* f32() const { return x_; }
  int64_t ldx() const { return ldx_; }
  int64_t rows() const { return rows_; }
  int64_t n() const { return n_; }

 private:
  // The quantized form `weight_type` reads and its made-flag (nullptr: F32).
  QuantizedActs* form_for(DType weight_type, bool** made);

  const float* x_ = nullptr;
  int64_t ldx_ = 0, rows_ = 0, n_ = 0;
  QuantizedActs q8_32_, q8_256_;
  std::vector<float> panels_;
  bool have_q8_32_ = false, have_q8_256_ = false, have_panels_ = false;
};

namespace scalar {
// Reference quantization (ggml's quantize_row_q8_0 / q8_K rounding): fills
// qs[n], scales[n/32], sums[n/32].
void quantize_acts(ActFormat format, const float* x, int64_t n, int8_t* qs, float* scales, int32_t* sums);
// Reference fast dot product of a weight row with row `row` of x: exact
// integer sums per block, scaled and summed in double.
float dot_q8(DType type, const uint8_t* w, const QuantizedActs& x, int64_t row);
}  // namespace scalar

// Dispatched fast dot product of one weight row with row `row` of x (whose
// format must be act_format_for(type) and n the row length).
float dot_q8(DType type, const uint8_t* w, const QuantizedActs& x, int64_t row);

// Fast product for rows [r0, r1) of W and every row of X (already prepared
// for W's type): Y[t * ldy + r] = W.row(r) . X.row(t). Single-threaded: the
// caller splits rows. The result of each (r, t) does not depend on r0, r1,
// the number of rows of X beyond 1, or the thread doing it (batch-invariant
// for any number of tokens >= 2; one token takes the matrix-vector kernels,
// which round differently).
void matmul_fast_rows(const TensorView& W, const Activations& X, int64_t r0, int64_t r1, float* Y, int64_t ldy);

// Sizes the calling thread's scratch memory of the products (the prepared
// tiles) for every row length up to 32768, so that products on this thread
// allocate nothing afterwards. Thread pools running products call it on
// each worker thread at its start, the caller of a forward pass on its own.
void prepare_thread_scratch();

// Several products in one parallel section (e.g. Q, K and V from one input).
struct MatmulTask {
  const TensorView* W;
  Activations* X;
  float* Y;
  int64_t ldy;
};
// Prepares every task's activations, then computes all rows of all tasks
// with the pool (nullptr: the calling thread).
void matmul_fast(std::span<const MatmulTask> tasks, ThreadPool* pool);
void matmul_fast(const TensorView& W, Activations& X, float* Y, ThreadPool* pool);

// A SwiGLU feed-forward's input for one token (X has one row), fused:
// gate = W_gate x and up = W_up x (W_gate and W_up of the same shape), then
// gate[r] = silu(gate[r]) * up[r], and `hidden` (set() to gate, one row of
// W_gate.rows() values) quantized for `down_type`, so that the down product
// finds its form made. The same bits as the three steps one after another.
// With a pool, one parallel section: each thread applies SwiGLU to the rows
// it has just computed (gate and up taken 16 rows at a time, in pairs) and
// quantizes every column group it is the last to finish, instead of the
// calling thread doing both for the whole row after the section while the
// other threads wait.
void swiglu_fast(const TensorView& W_gate, const TensorView& W_up, Activations& X, float* gate, float* up,
                 Activations& hidden, DType down_type, ThreadPool* pool);

// For one-token products: tells the pool's threads where their runs of the
// product over `weights` (in task order) will start, so that each brings the
// first `bytes` of its run into its cache after its part of the pool's next
// parallel section, while it waits (ThreadPool::PrefetchAfterNextJob). Call
// it before that section, with the weights of the product after it.
constexpr int64_t kNextProductPrefetchBytes = 64 * 1024;
void prefetch_next_product(ThreadPool& pool, std::span<const TensorView* const> weights,
                           int64_t bytes = kNextProductPrefetchBytes);

// Q4_K, Q6_K, Q8_0, Q4_0 and Q5_0 matrices packed for the matrix-vector
// product (one token): rows in groups of 16, one 32-bit lane per row, scales
// (and Q4_K's minimums) unpacked. The layouts are in block_layouts.h; Q4_K's
// is 2.8% larger than its rows, Q5_0's (widened to Q8_0's form) 55%, the
// others the same size. Needs a row count that is a multiple of 16, and for
// Q8_0 no value -128 (ggml's quantizer never writes one; this reads the
// whole matrix to check).
bool can_pack_rows16(const TensorView& W);
// Whether the active instruction set has a SIMD kernel for the packed form
// of `type` (elsewhere it runs a scalar reference: not worth packing for).
bool have_fast_rows16(DType type);
// The packed form of `type` (every instruction set's kernel reads it).
Rows16Layout rows16_layout(DType type);
// The packed form for W: its type's, except Q4_K and Q6_K rows of
// kQuadsMinCols columns or more (and a multiple of 64 rows) in their quads
// forms where the active instruction set has kernels for them
// (block_layouts.h).
constexpr int64_t kQuadsMinCols = 2048;
Rows16Layout rows16_layout(const TensorView& W);
int64_t rows16_bytes(const TensorView& W);
// Writes rows16_bytes(W) bytes to out in `layout`; throws glassbox::Error
// when can_pack_rows16(W) is false, the layout is for another type, or
// (the quads forms) the rows are not a multiple of 64.
void pack_rows16(const TensorView& W, uint8_t* out, Rows16Layout layout);
// Packs W into out (rows16_bytes(W) bytes) in rows16_layout(W) and makes
// that W's packed copy (rows16, rows16_layout).
void attach_rows16(TensorView& W, uint8_t* out);
// y[r] for r in [r0, r1) (whole runs of the form: multiples of 16 rows, of
// 64 in the quads forms) of the packed matrix in `layout`
// (n columns) times row 0 of x, prepared for that type. Single-threaded,
// like matmul_fast_rows.
void gemv_rows16(Rows16Layout layout, const uint8_t* packed, int64_t n, int64_t r0, int64_t r1, const Activations& x,
                 float* y);

// ============================================================== attention

// Scratch memory of the attention kernel, reusable across calls.
struct AttentionScratch {
  std::vector<float> buf;
};

// Causal softmax attention of the query heads that share one KV head.
// Query token t (t < n_tokens) sits at position n_past + t and sees keys
// 0 .. n_past + t. q for (token t, head h < n_heads) is at
// q + t * q_token_stride + h * q_head_stride (head_dim floats); the output
// goes to the same place in `out`. Key / value j is at k + j * kv_stride
// elements of kv_type: F32, F16, or Q8_0 (ggml's blocks of 32 values with
// an fp16 scale, 34 bytes; head_dim and kv_stride multiples of 32). Scores
// are scaled by `scale`. With a Q8_0 cache the query is quantized to 8 bits
// per block of 32 (quantize_q8_0_row's rounding) and meets the keys in
// integer sums, as llama.cpp's q8_0 x q8_0 dot product does.
// Memory use is independent of the context length (keys go in blocks with
// an online softmax).
struct AttentionArgs {
  const float* q;
  int64_t q_token_stride, q_head_stride;
  float* out;
  int64_t out_token_stride, out_head_stride;
  int n_tokens, n_heads, head_dim;
  int n_past;
  const void* k;
  const void* v;
  DType kv_type;
  int64_t kv_stride;
  float scale;
};
void attention(const AttentionArgs& args, AttentionScratch& scratch);
// Bytes of a KV cache row of n values: F32, F16 or Q8_0 (n a multiple of 32).
int64_t kv_row_bytes(DType kv_type, int64_t n);
// ggml's Q8_0 blocks for n floats (n a multiple of 32): per block the scale
// amax / 127 as fp16, then the 32 values times 127 / amax rounded to nearest
// even (ggml's x86 quantize_row_q8_0). Writes kv_row_bytes(Q8_0, n) bytes.
void quantize_q8_0_row(const float* x, int64_t n, uint8_t* blocks);
namespace scalar {
// Reference: two passes per query in double precision.
void attention(const AttentionArgs& args);
}  // namespace scalar

// g[i] = silu(g[i]) * u[i] = g[i] / (1 + e^-g[i]) * u[i] (SwiGLU).
void silu_mul(float* g, const float* u, int64_t n);
namespace scalar {
void silu_mul(float* g, const float* u, int64_t n);
}  // namespace scalar

// out = x / sqrt(mean(x^2) + eps) * w over n values (out may be x). The sum
// of squares is taken in double precision, as ggml does.
void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps);
namespace scalar {
void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps);
}  // namespace scalar

// ============================================================== logit rows
//
// What a token's log-probability and the entropy of the next-token
// distribution need from a row of logits x[0 .. n): its maximum m, and over
// the entries with x - m >= -87 (smaller ones are below float's range and
// count as 0, as masked -inf logits do):
//   sum = sum of e^(x - m),   weighted = sum of e^(x - m) (x - m)  (<= 0)
// so that log Z = m + log(sum) and the entropy is log(sum) - weighted / sum.
// `finite` is false when some x is NaN or +inf; the sums are then not
// computed. When every x is -inf, max is -inf and both sums are 0.
struct SoftmaxSums {
  float max = 0;
  double sum = 0;
  double weighted = 0;
  bool finite = true;
};
SoftmaxSums softmax_sums(const float* x, int64_t n);
// The first i in [from, n) with x[i] > threshold (NaN never is), or n: the
// scan of a top-k search, which rarely finds anything once k entries are
// kept.
int64_t find_above(const float* x, int64_t from, int64_t n, float threshold);
namespace scalar {
// Reference: e^(x - m) in double precision, summed in double.
SoftmaxSums softmax_sums(const float* x, int64_t n);
int64_t find_above(const float* x, int64_t from, int64_t n, float threshold);
}  // namespace scalar

// Converts n floats to fp16 (round to nearest even) and back.
void f32_to_f16_row(const float* x, uint16_t* out, int64_t n);
void f16_to_f32_row(const uint16_t* x, float* out, int64_t n);

// Whether the fast path multiplies several tokens with `weight_type` in F32
// on the active instruction set (dequantized tiles times
// Activations::f32_panels()) instead of with 8-bit activations: F32, F16
// and BF16 weights; and Q8_0, Q4_0, Q5_0 and Q6_K on AVX2, which, without
// an 8-bit dot-product instruction, does more float multiply-adds per cycle
// than its 8-bit tiles of those types (bench/README.md). One token always
// takes the matrix-vector kernels.
bool multi_token_f32(DType weight_type);

// The F32 tile product of the fast path (several tokens, the types of
// multi_token_f32) with the tokens in panels of 16, Activations::f32_panels():
// Y[t * ldy + r] = sum_k W[r * ldw + k] * (value k of token t0 + t) for
// r < n_rows, t < n_tokens, each summed in order of k by fused multiply-adds
// from zero (the same bits on every instruction set). The active instruction
// set's kernel, or the reference where it has none (it then multiplies
// tokens in rows, gemm_f32, in matmul_fast).
void gemm_f32_panels(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0, int64_t n_tokens,
                     int64_t n, float* Y, int64_t ldy);
namespace scalar {
void gemm_f32_panels(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0, int64_t n_tokens,
                     int64_t n, float* Y, int64_t ldy);
}  // namespace scalar

// The one-token product of F16 or BF16 rows that the fast path uses when
// the activations are 16 KiB or more (kernels_internal.h, GemvLongRowsFn):
// y[r] = row r (of n_rows, row_stride bytes apart) . x. The active
// instruction set's kernel, or its dot per row where it has none.
void gemv_long_rows(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const float* x,
                    float* y);

// Name of the instruction set the dispatcher picked ("avx512vnni", "avx512",
// "avx2", "scalar").
std::string_view active_isa();
// Forces a variant (for tests and benchmarks); returns false if unavailable.
// "auto" restores the automatic choice. Process-wide: do not call while other
// threads run kernels.
bool force_isa(std::string_view name);

// Choices made for the CPU along with the instruction set, which change
// speed, not results: whether the AVX-512 kernels of packed Q4_K and Q6_K
// copies prefetch their weights in software, and whether attention takes
// the AVX-512 kernel (else AVX2's). Both off on AMD family 19h (Zen 4),
// where they measured slower (bench/README.md). force_isa sets them from the
// CPU again; tests force each way to run every kernel.
struct CpuTuning {
  bool prefetch_packed = true;
  bool avx512_attention = true;
};
CpuTuning cpu_tuning();
void force_cpu_tuning(CpuTuning tuning);

}  // namespace glassbox::kernels
