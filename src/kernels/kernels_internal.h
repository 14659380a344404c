// Internal interface between the dispatcher (kernels.cc) and the per-ISA
// kernel files. Each ISA file is compiled with its own instruction-set flags
// and exposes one constant table; nothing in it runs before the dispatcher
// has checked the CPU (a table of function pointers is constant-initialized
// data, not code).
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "kernels/kernels.h"
#include "tensor/dtype.h"

namespace glassbox::kernels::detail {

// Arguments are validated by the public entry points before these run:
// `type` is one of the supported types and `n` a multiple of its block size.
using DequantizeFn = void (*)(DType type, const uint8_t* src, float* dst, int64_t n);
using DotFn = float (*)(DType type, const uint8_t* row, const float* x, int64_t n);
// Dense F32 tile product: Y[t * ldy + r] = sum_k W[r * ldw + k] * X[t * ldx + k]
// for r < n_rows, t < n_tokens, k < n.
using GemmF32Fn = void (*)(const float* W, int64_t ldw, int64_t n_rows, const float* X, int64_t ldx, int64_t n_tokens,
                           int64_t n, float* Y, int64_t ldy);

// Tokens per panel of the F32 token panels (Activations::f32_panels).
inline constexpr int kF32PanelTokens = 16;
// Rows longer than this are multiplied with the panels in pieces of k
// (kernels_avx2.cc), so that a piece of a panel and of the tile share L2.
inline constexpr int64_t kF32PanelPieceCols = 4096;
// Dense F32 tile product with the tokens in panels: Y[t * ldy + r] =
// sum_k W[r * ldw + k] * x_{t0 + t}[k] for r < n_rows, t < n_tokens, where
// value k of token u is panels[(u / 16) * 16 * n + 16 * k + u % 16] (tokens
// interleaved in groups of 16, so that one vector load holds 8 tokens' value
// k and a broadcast weight feeds them all: no horizontal sums, and each
// weight and activation loaded serves several multiply-adds). A last panel
// is padded with zeros to 16 tokens. Each (r, t) is summed in order of k by
// fused multiply-adds from zero, so every implementation gives the same
// bits, whatever n_rows, t0 and n_tokens are.
using GemmF32PanelsFn = void (*)(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0,
                                 int64_t n_tokens, int64_t n, float* Y, int64_t ldy);

// The loops of a GemmF32PanelsFn, shared by the SIMD kernels: rows longer
// than kF32PanelPieceCols in pieces of k (all panels against a piece of the
// tile's rows, then the next piece), and for each piece and panel, every
// group of `block_rows` rows. Calls
//   block(W + r * ldw + k0, rows, panel + 16 * k0, kn, first, last, resume, Y + t * ldy + r)
// for rows [r, r + rows) and the panel's tokens in lanes [first, last)
// (Y's token t = t0 + t), k in [k0, k0 + kn); `resume` (k0 > 0): add to
// the sums in Y, continuing each lane's chain where the last piece left it.
template <typename Block>
void for_each_panel_block(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0,
                          int64_t n_tokens, int64_t n, float* Y, int64_t ldy, int64_t block_rows, Block block) {
  const int64_t n_pieces = (n + kF32PanelPieceCols - 1) / kF32PanelPieceCols;
  const int64_t piece = (n + n_pieces - 1) / n_pieces;
  for (int64_t k0 = 0; k0 < n; k0 += piece) {
    const int64_t kn = piece < n - k0 ? piece : n - k0;
    for (int64_t u = t0; u < t0 + n_tokens;) {
      const int64_t p = u / kF32PanelTokens;
      const int first = static_cast<int>(u - p * kF32PanelTokens);
      const int64_t end = t0 + n_tokens - p * kF32PanelTokens;
      const int last = static_cast<int>(end < kF32PanelTokens ? end : kF32PanelTokens);
      const float* panel = panels + p * kF32PanelTokens * n + kF32PanelTokens * k0;
      for (int64_t r = 0; r < n_rows; r += block_rows) {
        const int rows = static_cast<int>(block_rows < n_rows - r ? block_rows : n_rows - r);
        block(W + r * ldw + k0, rows, panel, kn, first, last, k0 > 0, Y + (u - t0) * ldy + r);
      }
      u = p * kF32PanelTokens + last;
    }
  }
}

// One-token products of F16 and BF16 rows whose F32 activations do not stay
// in L1 beside the weights streaming past (4n bytes >= kLongRowActBytes, an
// FFN's down projection): y[r] = row r . x for r < n_rows, several rows at
// a time sharing each load of x. Each row's sum is formed the same way
// whatever rows it is computed with, so that the result of a row does not
// depend on where a thread's range starts.
inline constexpr int64_t kLongRowActBytes = 16 * 1024;
using GemvLongRowsFn = void (*)(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n,
                                const float* x, float* y);

// ---- fast path (quantized activations)

// One row of quantized activations (see QuantizedActs).
struct QRow {
  const int8_t* qs;
  const float* scales;
  const int32_t* sums;
  const float* scaled_sums;
  const int32_t* lane_bias;
  const int32_t* sub_bias;
  const float* lane_scales;
  const int8_t* qs_q4k;    // Q8_256 only
  const int8_t* qs_lanes;  // lane-major copy (ISAs with lane_layout)
  const float* group_scales;
};

// Quantizes one row of n values into every array of a QRow.
using QuantizeActsFn = void (*)(ActFormat format, const float* x, int64_t n, int8_t* qs, float* scales, int32_t* sums,
                                float* scaled_sums, int32_t* lane_bias, float* lane_scales);

// Weight rows unpacked into one uniform layout for the matrix-matrix
// kernel, whatever their stored type: per row, n bytes of values (2n in
// AVX2's signed tiles), n / 4 float lane-scale slots (one per 32-bit lane of
// a dot-product instruction) and n / 16 offset slots (the minimums of types
// that have them, per 16 values). What each ISA keeps in them for each
// stored `type` is its own (an ISA's prepare_tile and gemm_tile go together). AVX2, which has no
// dot-product instruction for two full-range bytes (vpmaddubsw saturates
// pairs above 32767), keeps the values small:
// - Q4_K: the nibbles (0..15); in each block's 64 lane-scale slots the
//   eight 6-bit sub-block scales as integers (in both 16-bit halves, bit
//   patterns in the float array), then d; offsets dmin * min.
// - Q6_K: q = w + 32 (0..63), the -32 applied through the activations'
//   lane bias / 4; each lane's sub-block scale as an integer as above, d
//   in the block's first offset slot.
// - Q8_0, Q4_0, Q5_0: twice the bytes, 64 per block of 32: |w| (0..128)
//   then w's sign mask (0xFF where w < 0); in lane_scales the row's n / 32
//   block scales d, then the n / 32 products d x (sum of |w| over the
//   block's negative w), which correct for the mask's -1s (kernels_avx2.cc).
// Q4_K and Q6_K then sum each block of 256 in integers.
struct PreparedTile {
  int64_t n = 0;
  int n_rows = 0;
  DType type = DType::F32;       // the stored type the rows came from
  uint8_t* values = nullptr;     // [n_rows][n] (or [n_rows][2n], see above)
  float* lane_scales = nullptr;  // [n_rows][n / 4]
  float* offsets = nullptr;      // [n_rows][n / 16]
  // Lane-major tiles (group > 0): values are stored in groups of `group`
  // values (256 for K-quants, 512 for the 32-value block types), the row
  // padded to whole groups (n_pad). Within a group, 32-bit lane l of every
  // 64-byte chunk holds values of the same scale block (sub-block l of 16
  // values for K-quants, block l of 32 otherwise), so integer sums can run
  // over the whole group before one float scaling. lane_scales then holds
  // 16 floats per group (the scale of each lane's block), values are
  // unsigned (signed types shifted by 128), and offsets (per 16 values, as
  // above) carry the shift, Q4_K's minimums and Q6_K's -32. The tokens' side
  // is QRow::qs_lanes / group_scales in the same order.
  int64_t group = 0;
  int64_t n_pad = 0;
  uint8_t* scratch = nullptr;  // n_pad bytes the preparation may use
};

// Fills `tile` (whose buffers are large enough) from n_rows stored rows.
using PrepareTileFn = void (*)(DType type, const uint8_t* w, int64_t row_stride, int n_rows, int64_t n,
                               PreparedTile& tile);
// Y[t * ldy + r] = row r of the tile . token t for r < tile.n_rows,
// t < n_tokens, where token t's arrays follow x's at the strides of
// QuantizedActs (t * n values: qs + t*n, lane_scales + t*n/4, ...).
// The result of each (r, t) is computed the same way whatever n_rows and
// n_tokens are (batch invariance).
using GemmTileFn = void (*)(const PreparedTile& tile, const QRow& x, int n_tokens, float* Y, int64_t ldy);
// Matrix-vector product of n_rows stored rows with one activation row:
// y[r] for r < n_rows. Returns false when this ISA has no direct kernel for
// the type (the caller then goes through a prepared tile).
using GemvFn = bool (*)(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const QRow& x,
                        float* y);
// Writes the lane-major copy of a quantized row (qs_lanes, group_scales;
// see PreparedTile) from its qs and scales.
using LaneLayoutFn = void (*)(ActFormat format, const int8_t* qs, const float* scales, int64_t n, int8_t* qs_lanes,
                              float* group_scales);
using AttentionFn = void (*)(const AttentionArgs& args, AttentionScratch& scratch);
using SiluMulFn = void (*)(float* g, const float* u, int64_t n);
using F32ToF16Fn = void (*)(const float* x, uint16_t* out, int64_t n);
using F16ToF32Fn = void (*)(const uint16_t* x, float* out, int64_t n);
// y[16 g + i] for the n_groups groups of 16 rows at `packed` (the layouts of
// pack_rows16, kernels.h, block_layouts.h), n values per row.
using GemvRows16Fn = void (*)(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y);
using RmsNormFn = void (*)(const float* x, const float* w, float* out, int64_t n, float eps);
using SoftmaxSumsFn = SoftmaxSums (*)(const float* x, int64_t n);
using FindAboveFn = int64_t (*)(const float* x, int64_t from, int64_t n, float threshold);

struct IsaKernels {
  std::string_view name;
  DequantizeFn dequantize_row;
  DotFn dot;
  GemvLongRowsFn gemv_long_rows;  // nullptr: one-token F16 and BF16 products row by row with dot
  GemmF32Fn gemm_f32;
  GemmF32PanelsFn gemm_f32_panels;  // nullptr: the fast path uses gemm_f32
  // The quantized types whose products of several tokens multiply in F32
  // (dequantized tiles times token panels) instead of 8-bit integers, as a
  // set of bits 1 << type: where the ISA has no 8-bit dot-product
  // instruction, the F32 kernel does more multiply-adds per cycle than
  // those types' integer tiles (bench/README.md).
  uint32_t f32_tile_types;
  QuantizeActsFn quantize_acts;
  LaneLayoutFn lane_layout;    // nullptr: this ISA's tiles do not use it
  PrepareTileFn prepare_tile;  // nullptr: no tiled path (scalar reference per pair)
  GemmTileFn gemm_tile;
  GemvFn gemv;
  AttentionFn attention;
  SiluMulFn silu_mul;
  F32ToF16Fn f32_to_f16;
  F16ToF32Fn f16_to_f32;
  GemvRows16Fn gemv_q4_k_rows16;
  // Rows16Layout::Q4_K_Quads: n_groups a multiple of 4, packed at the start
  // of a run of four; the scalar reference where the ISA has no kernel
  // (then the loader packs long Q4_K rows in the Q4_K form).
  GemvRows16Fn gemv_q4_k_quads;
  GemvRows16Fn gemv_q6_k_rows16;
  GemvRows16Fn gemv_q6_k_quads;  // Rows16Layout::Q6_K_Quads, as gemv_q4_k_quads
  // Packed Q8_0 (Rows16Layout::Q8_0); the scalar reference where the stored
  // rows' kernel is as fast (then the loader does not pack Q8_0).
  GemvRows16Fn gemv_q8_0_rows16;
  GemvRows16Fn gemv_q4_0_rows16;  // Rows16Layout::Q4_0, the same way
  RmsNormFn rms_norm;
  SoftmaxSumsFn softmax_sums;
  FindAboveFn find_above;
};

// Whether the AVX-512 kernels of packed matrices (Q4_K, Q6_K; their copies
// lie in huge pages) prefetch their weights in software. On the Intel host
// they were tuned on this streamed them 3.5-4.5% faster from DRAM; on an
// AMD Zen 4 core the hardware prefetchers do better alone, as they do for
// the AVX2 kernels there (qwen3-0.6b Q4_K_M tg128 87-88 t/s with, 97-102
// without; bench/README.md). Set from the CPU with the instruction set
// (kernels.cc, kernels::CpuTuning); the kernels read it once per call.
inline std::atomic<bool> g_prefetch_packed{true};
// Whether the AVX-512 attention (512-bit conversions of an F16 cache's
// keys and values) is the faster: on an AMD Zen 4 core the AVX2 kernel is
// (qwen3-0.6b Q4_K_M tg32 at depth 4096: 26.8 t/s against 39.1;
// bench/README.md), as 512-bit vcvtph2ps streams slower there. Set with
// g_prefetch_packed, from the same CPU check.
inline std::atomic<bool> g_avx512_attention{true};

extern const IsaKernels kScalarKernels;
extern const IsaKernels kAvx2Kernels;        // needs AVX2, FMA, F16C
extern const IsaKernels kAvx512Kernels;      // needs AVX-512 F, BW, VL, DQ
extern const IsaKernels kAvx512VnniKernels;  // needs AVX-512 F, BW, VL, DQ, VNNI

// The AVX-512 exact-path functions, shared by the two AVX-512 tables.
namespace avx512 {
void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n);
float dot(DType type, const uint8_t* row, const float* x, int64_t n);
void gemm_f32(const float* W, int64_t ldw, int64_t n_rows, const float* X, int64_t ldx, int64_t n_tokens, int64_t n,
              float* Y, int64_t ldy);
void gemm_f32_panels(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0, int64_t n_tokens,
                     int64_t n, float* Y, int64_t ldy);
void attention(const AttentionArgs& args, AttentionScratch& scratch);
void silu_mul(float* g, const float* u, int64_t n);
void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps);
void f32_to_f16(const float* x, uint16_t* out, int64_t n);
void f16_to_f32(const uint16_t* x, float* out, int64_t n);
}  // namespace avx512

// AVX2 functions the AVX-512 tables take as well. The logit-row scans: a row
// of logits (0.6 MB for a 152K vocabulary) is read once or twice per
// generated token, and these run at a small fraction of the token's time
// already.
namespace avx2 {
SoftmaxSums softmax_sums(const float* x, int64_t n);
// Attention over a Q8_0 cache (the AVX-512 tables have no kernel of their own).
void attention(const AttentionArgs& args, AttentionScratch& scratch);
int64_t find_above(const float* x, int64_t from, int64_t n, float threshold);
// The AVX2 dot product (every type) and the F16/BF16 long-row kernel, which
// the AVX-512 tables take for F16 and BF16 rows.
float dot(DType type, const uint8_t* row, const float* x, int64_t n);
void gemv_long_rows(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const float* x,
                    float* y);
// The packed Q8_0 one-token kernel, which AVX-512 without VNNI takes too.
void gemv_q8_0_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y);
}  // namespace avx2
// Scalar fast-path pieces used by the scalar table and by tests.
namespace reference {
void gemm_f32_panels(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0, int64_t n_tokens,
                     int64_t n, float* Y, int64_t ldy);
void quantize_acts_row(ActFormat format, const float* x, int64_t n, int8_t* qs, float* scales, int32_t* sums,
                       float* scaled_sums, int32_t* lane_bias, float* lane_scales);
bool gemv(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const QRow& x, float* y);
void gemv_q4_k_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y);
void gemv_q4_k_quads(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y);
void gemv_q6_k_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y);
void gemv_q6_k_quads(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y);
void gemv_q8_0_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y);
void gemv_q4_0_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y);
void attention(const AttentionArgs& args, AttentionScratch& scratch);
// ggml's x86 quantize_row_q8_0 (n a multiple of 32): scales[b] = fp16(amax / 127)
// as a float, qs = x * (127 / amax) rounded to nearest even.
void quantize_q8_32(const float* x, int64_t n, int8_t* qs, float* scales);
}  // namespace reference

// Makes the compiler treat each vector as computed here, so that a value
// loaded once stays in a register. GCC 12 otherwise folds the load into
// every instruction that uses it (vpand mem, ...), and a weight vector used
// by two instructions is read from L1 twice: the packed one-token kernels
// were bound by those loads (the AVX-512 Q4_K kernel 19% faster from L2
// with each vector loaded once; bench/README.md, session 19). An empty asm
// statement: no instruction. In an anonymous namespace so that every ISA
// file has its own copy (no inline function compiled for AVX-512 may be
// linked into another file).
namespace {
template <typename Vector>
inline void keep_one_in_register(Vector& v) {
  asm("" : "+v"(v));
}
template <typename... Vectors>
inline void keep_in_register(Vectors&... v) {
  (keep_one_in_register(v), ...);
}
}  // namespace

// Throws glassbox::Error unless `type` is computable and `n` is a
// non-negative multiple of its block size.
void check_row_args(DType type, int64_t n);

}  // namespace glassbox::kernels::detail
