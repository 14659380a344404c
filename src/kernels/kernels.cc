// Run-time dispatch between the kernel variants, argument checks, and the
// threaded matrix product.
#include "kernels/kernels.h"

#include <cpuid.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/block_layouts.h"
#include "kernels/kernels_internal.h"
#include "tensor/fp16.h"

namespace glassbox::kernels {

using layout::kQ4_KBytes;
using layout::kQ4_KDmin;
using layout::kQ4_KQs;
using layout::kQ4_KScales;
using layout::kQ6_KBytes;
using layout::kQ6_KD;
using layout::kQ6_KScales;
using layout::kQ8_0Bytes;
using layout::kQ8_0Elems;
using layout::kQ8_0Qs;
using layout::kQuadGroups;
using layout::kRows16;
using layout::kRows16Bytes;
using layout::kRows16Dmin;
using layout::kRows16Mins;
using layout::kRows16Qs;
using layout::kRows16Scales;
namespace {

using detail::IsaKernels;

// F16C is read from CPUID directly: clang's __builtin_cpu_supports does not
// know it. (Its usability follows from AVX's, which the builtin checks.)
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx & bit_F16C) != 0;
}

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

// libgcc / compiler-rt only report AVX-512 features when the OS saves the
// AVX-512 register state (XGETBV), so this is safe to trust.
bool cpu_has_avx512() {
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

bool cpu_has_avx512vnni() {
  __builtin_cpu_init();
  return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
}

bool cpu_is_amd_family_19h() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return false;
  const bool amd = ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163;  // "AuthenticAMD"
  if (!amd || __get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  const unsigned family = ((eax >> 8) & 0xF) + ((eax >> 20) & 0xFF);
  return family == 0x19;
}

CpuTuning tuning_for_this_cpu() {
  const bool zen4 = cpu_is_amd_family_19h();
  return {.prefetch_packed = !zen4, .avx512_attention = !zen4};
}

const IsaKernels* best_available() {
  if (cpu_has_avx512vnni()) return &detail::kAvx512VnniKernels;
  if (cpu_has_avx512()) return &detail::kAvx512Kernels;
  if (cpu_has_avx2()) return &detail::kAvx2Kernels;
  return &detail::kScalarKernels;
}

std::atomic<const IsaKernels*> g_active{nullptr};

const IsaKernels& active() {
  const IsaKernels* k = g_active.load(std::memory_order_acquire);
  if (k == nullptr) {
    k = best_available();
    force_cpu_tuning(tuning_for_this_cpu());
    g_active.store(k, std::memory_order_release);
  }
  return *k;
}

bool is_computable(DType type) {
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
    case DType::Q4_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

// Rows per tile in the multi-token product: the dequantized tile should stay
// in L2 (well under 1 MiB) while the tokens stream past it. A multiple of 4
// suits the 4-row register blocking of the SIMD tile kernels.
constexpr int64_t kTileBytes = 192 * 1024;
int64_t tile_rows_for(int64_t n_cols) {
  const int64_t rows = kTileBytes / (std::max<int64_t>(n_cols, 1) * 4);
  return std::clamp<int64_t>(rows / 4 * 4, 4, 64);
}
// Row lengths up to this have their tiles fit in a thread's buffers from
// the first time they grow: which thread takes which rows of a product
// varies from call to call (stealing), so a buffer sized by the first
// product a thread happened to meet would grow again later, in the middle of
// generation.
constexpr int64_t kTileRowLengthBound = 32768;
// A dequantized F32 tile's floats, enough for every row length up to
// kTileRowLengthBound (768 KiB).
constexpr int64_t kF32TileFloats = std::max(kTileBytes / 4, 6 * kTileRowLengthBound);
// The same for the products with token panels, whose kernels take 6 rows
// at a time: a multiple of 6, at least 6. Rows the kernel takes in pieces of
// k (longer than kF32PanelPieceCols) need only a piece of the tile in L2:
// as many rows as the tile buffer holds there, up to 24 (18 at 8960
// columns), so that each piece of a panel read from L3 meets them all
// instead of 6 rows, and a product still has tiles enough to share between
// threads.
int64_t panel_tile_rows(int64_t n_cols) {
  const int64_t n = std::max<int64_t>(n_cols, 1);
  if (n > detail::kF32PanelPieceCols) return std::clamp<int64_t>(kF32TileFloats / n / 6 * 6, 6, 24);
  return std::clamp<int64_t>(kTileBytes / (n * 4) / 6 * 6, 6, 60);
}

}  // namespace

namespace detail {

void check_row_args(DType type, int64_t n) {
  const auto tr = dtype_traits(static_cast<uint32_t>(type));
  if (!tr || !is_computable(type)) {
    throw Error("kernels: unsupported tensor type " +
                (tr ? std::string(tr->name) : "id " + std::to_string(static_cast<uint32_t>(type))));
  }
  if (n < 0 || n % tr->block_elems != 0) {
    throw Error("kernels: row length " + std::to_string(n) + " is not a multiple of the " + std::string(tr->name) +
                " block size " + std::to_string(tr->block_elems));
  }
}

}  // namespace detail

void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n) {
  detail::check_row_args(type, n);
  active().dequantize_row(type, src, dst, n);
}

float dot(DType type, const uint8_t* row, const float* x, int64_t n) {
  detail::check_row_args(type, n);
  return active().dot(type, row, x, n);
}

void matmul(const TensorView& W, const float* X, int64_t n_tokens, float* Y, ThreadPool* pool) {
  if (!W) throw Error("matmul: weight tensor has no data");
  const int64_t n = W.cols();
  const int64_t rows = W.rows();
  detail::check_row_args(W.type, n);
  if (rows < 0 || n_tokens < 0) throw Error("matmul: negative shape");
  if (W.row_stride < row_bytes(W.type, n)) {
    throw Error("matmul: row stride " + std::to_string(W.row_stride) + " is smaller than a " +
                std::string(dtype_name(W.type)) + " row of " + std::to_string(n) + " elements");
  }
  if (rows == 0 || n_tokens == 0) return;
  // The work lambdas capture a single pointer so that std::function keeps
  // them in its small buffer instead of allocating on every call.
  struct Job {
    const IsaKernels* isa;
    const TensorView* W;
    const float* X;
    float* Y;
    int64_t n, rows, n_tokens, tile_rows;
  };
  // Tiles no larger than an even share of the rows, so every thread of the
  // pool gets work even for small matrices.
  const int64_t threads = pool != nullptr ? pool->size() : 1;
  const int64_t share = ((rows + threads - 1) / threads + 3) / 4 * 4;
  const int64_t tile_rows = std::min(tile_rows_for(n), share);
  const Job job{&active(), &W, X, Y, n, rows, n_tokens, tile_rows};
  const Job* j = &job;
  auto run = [pool](int64_t count, const std::function<void(int64_t, int64_t, int)>& fn) {
    if (pool != nullptr) {
      pool->ParallelFor(count, fn);
    } else {
      fn(0, count, 0);
    }
  };

  if (n_tokens == 1) {
    run(rows, [j](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) j->Y[r] = j->isa->dot(j->W->type, j->W->row(r), j->X, j->n);
    });
    return;
  }

  // Prompt processing: each tile of rows is dequantized once into a
  // per-thread buffer and multiplied with every token. The buffer lives as
  // long as the (pool) thread, so steady-state calls do not allocate.
  const int64_t n_tiles = (rows + job.tile_rows - 1) / job.tile_rows;
  run(n_tiles, [j](int64_t begin, int64_t end, int) {
    thread_local std::vector<float> tile;
    const size_t needed = static_cast<size_t>(j->tile_rows * j->n);
    if (tile.size() < needed) tile.resize(needed);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * j->tile_rows;
      const int64_t nr = std::min(j->tile_rows, j->rows - r0);
      for (int64_t r = 0; r < nr; ++r) {
        j->isa->dequantize_row(j->W->type, j->W->row(r0 + r), tile.data() + r * j->n, j->n);
      }
      j->isa->gemm_f32(tile.data(), j->n, nr, j->X, j->n, j->n_tokens, j->n, j->Y + r0, j->rows);
    }
  });
}

// ================================================================ fast path

ActFormat act_format_for(DType weight_type) {
  switch (weight_type) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0:
      return ActFormat::Q8_32;
    case DType::Q4_K:
    case DType::Q6_K:
      return ActFormat::Q8_256;
    default:
      return ActFormat::F32;
  }
}

namespace {

// Whether `isa` multiplies several tokens with `type` in F32 (kernels.h,
// multi_token_f32).
bool f32_tiles(const IsaKernels& isa, DType type) {
  if (isa.gemm_f32_panels == nullptr) return false;
  const auto bit = static_cast<uint32_t>(type);
  return act_format_for(type) == ActFormat::F32 || (bit < 32 && ((isa.f32_tile_types >> bit) & 1u) != 0);
}

}  // namespace

bool multi_token_f32(DType weight_type) { return f32_tiles(active(), weight_type); }

int64_t act_block(ActFormat format) {
  switch (format) {
    case ActFormat::Q8_32:
      return 32;
    case ActFormat::Q8_256:
      return 256;
    default:
      return 1;
  }
}

namespace {

// Grows a vector to at least `size` elements (never shrinks: no allocation
// once the largest size has been seen).
template <typename T>
void ensure_size(std::vector<T>& v, int64_t size) {
  if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
}

}  // namespace

void QuantizedActs::reserve(int64_t max_rows, int64_t max_n) {
  ensure_size(qs_, max_rows * max_n);
  if (max_n % 256 == 0) ensure_size(qs_q4k_, max_rows * max_n);
  ensure_size(scales_, max_rows * (max_n / 32));
  ensure_size(sums_, max_rows * (max_n / 32));
  ensure_size(scaled_sums_, max_rows * (max_n / 16));
  ensure_size(lane_bias_, max_rows * (max_n / 4));
  ensure_size(sub_bias_, max_rows * (max_n / 16));
  ensure_size(lane_scales_, max_rows * (max_n / 4));
  const int64_t padded = (max_n + 511) / 512 * 512;
  ensure_size(qs_lanes_, max_rows * padded);
  ensure_size(group_scales_, max_rows * (padded / 16));
}

void QuantizedActs::quantize(ActFormat format, const float* x, int64_t ldx, int64_t n_rows, int64_t n,
                             ThreadPool* pool) {
  if (format == ActFormat::F32) throw Error("quantize: F32 is not a quantized format");
  if (n <= 0 || n % act_block(format) != 0 || n_rows < 0)
    throw Error("quantize: row length " + std::to_string(n) + " is not a multiple of the block size " +
                std::to_string(act_block(format)));
  reserve(n_rows, n);
  format_ = format;
  rows_ = n_rows;
  n_ = n;
  // The lambda captures one pointer, so that std::function keeps it in its
  // small buffer instead of allocating on every call.
  struct Job {
    QuantizedActs* self;
    const float* x;
    int64_t ldx;
  };
  const Job job{this, x, ldx};
  auto rows = [j = &job](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) j->self->quantize_span(j->x + t * j->ldx, t, 0, j->self->n_);
  };
  if (pool != nullptr && n_rows >= 8) {
    pool->ParallelFor(n_rows, rows);
  } else {
    rows(0, n_rows, 0);
  }
}

void QuantizedActs::quantize_span(const float* x_row, int64_t t, int64_t c0, int64_t c1) {
  const IsaKernels& isa = active();
  const int64_t n = n_, len = c1 - c0;
  isa.quantize_acts(format_, x_row + c0, len, qs_.data() + t * n + c0, scales_.data() + t * (n / 32) + c0 / 32,
                    sums_.data() + t * (n / 32) + c0 / 32, scaled_sums_.data() + t * (n / 16) + c0 / 16,
                    lane_bias_.data() + t * (n / 4) + c0 / 4, lane_scales_.data() + t * (n / 4) + c0 / 4);
  // Each lane bias is -128 times a sum of four values, so a quarter of four
  // of them is exact.
  const int32_t* lane_bias = lane_bias_.data() + t * (n / 4);
  int32_t* sub_bias = sub_bias_.data() + t * (n / 16);
  for (int64_t i = c0 / 16; i < c1 / 16; ++i)
    sub_bias[i] = (lane_bias[4 * i] + lane_bias[4 * i + 1] + lane_bias[4 * i + 2] + lane_bias[4 * i + 3]) / 4;
  if (format_ == ActFormat::Q8_256) {
    // Q4_K keeps sub-blocks 2k and 2k+1 in the low and high nibbles of the
    // same 32 bytes: order the runs so that 64 bytes of nibbles meet 64
    // contiguous activations.
    static constexpr int kOrder[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    const int8_t* src = qs_.data() + t * n;
    int8_t* dst = qs_q4k_.data() + t * n;
    for (int64_t b = c0; b < c1; b += 256)
      for (int k = 0; k < 8; ++k) std::memcpy(dst + b + 32 * k, src + b + 32 * kOrder[k], 32);
  }
  if (isa.lane_layout != nullptr) {
    const int64_t padded = n_padded();
    isa.lane_layout(format_, qs_.data() + t * n + c0, scales_.data() + t * (n / 32) + c0 / 32, len,
                    qs_lanes_.data() + t * padded + c0,
                    // One group scale per 16 values for Q8_256, per 32 for Q8_32.
                    group_scales_.data() + t * (padded / 16) + c0 / (format_ == ActFormat::Q8_256 ? 16 : 32));
  }
}

void QuantizedActs::begin_columns(ActFormat format, int64_t n) {
  if (format == ActFormat::F32) throw Error("quantize: F32 is not a quantized format");
  if (n <= 0 || n % act_block(format) != 0)
    throw Error("quantize: row length " + std::to_string(n) + " is not a multiple of the block size " +
                std::to_string(act_block(format)));
  reserve(1, n);
  format_ = format;
  rows_ = 1;
  n_ = n;
}

void QuantizedActs::quantize_columns(const float* x, int64_t c0, int64_t c1) {
  const int64_t group = lane_group();
  if (rows_ != 1 || c0 < 0 || c0 >= c1 || c1 > n_ || c0 % group != 0 || (c1 % group != 0 && c1 != n_))
    throw Error("quantize: columns [" + std::to_string(c0) + ", " + std::to_string(c1) + ") of a row of " +
                std::to_string(n_) + " are not whole groups of " + std::to_string(group));
  quantize_span(x, 0, c0, c1);
}

namespace {

// Rows x[t * ldx .. + n) for t < rows into panels of 16 tokens (value k of
// token t at [(t / 16) * 16 * n + 16 * k + t % 16], the last panel padded
// with zeros): GemmF32PanelsFn's layout.
void make_f32_panels(const float* x, int64_t ldx, int64_t rows, int64_t n, std::vector<float>& panels,
                     ThreadPool* pool) {
  constexpr int64_t P = detail::kF32PanelTokens;
  const int64_t n_panels = (rows + P - 1) / P;
  panels.resize(static_cast<size_t>(n_panels * P * n));  // within reserve(): no allocation
  auto pack = [&](int64_t begin, int64_t end, int) {
    for (int64_t p = begin; p < end; ++p) {
      float* out = panels.data() + p * P * n;
      // 64 values at a time: their 4 KiB of the panel stay in L1 while the
      // 16 tokens are written into them.
      for (int64_t k0 = 0; k0 < n; k0 += 64) {
        const int64_t k1 = std::min(n, k0 + 64);
        for (int64_t j = 0; j < P; ++j) {
          const int64_t t = p * P + j;
          if (t < rows) {
            for (int64_t k = k0; k < k1; ++k) out[P * k + j] = x[t * ldx + k];
          } else {
            for (int64_t k = k0; k < k1; ++k) out[P * k + j] = 0.0f;
          }
        }
      }
    }
  };
  if (pool != nullptr && n_panels > 1) {
    pool->ParallelFor(n_panels, pack);
  } else {
    pack(0, n_panels, 0);
  }
}

}  // namespace

void Activations::reserve(int64_t max_rows, int64_t max_n, bool f32_panels) {
  // Only the formats whose blocks divide max_n can ever be made.
  if (max_n % 32 == 0) q8_32_.reserve(max_rows, max_n);
  if (max_n % 256 == 0) q8_256_.reserve(max_rows, max_n);
  if (f32_panels && max_rows > 1) {
    const int64_t panels = (max_rows + detail::kF32PanelTokens - 1) / detail::kF32PanelTokens;
    panels_.reserve(static_cast<size_t>(panels * detail::kF32PanelTokens * max_n));
  }
}

void Activations::set(const float* x, int64_t ldx, int64_t n_rows, int64_t n) {
  x_ = x;
  ldx_ = ldx;
  rows_ = n_rows;
  n_ = n;
  have_q8_32_ = have_q8_256_ = have_panels_ = false;
}

void Activations::prepare_for(DType weight_type, ThreadPool* pool) {
  if (act_format_for(weight_type) == ActFormat::F32 || (rows_ > 1 && f32_tiles(active(), weight_type))) {
    if (rows_ > 1 && !have_panels_) {
      make_f32_panels(x_, ldx_, rows_, n_, panels_, pool);
      have_panels_ = true;
    }
    return;
  }
  bool* made = nullptr;
  QuantizedActs* q = form_for(weight_type, &made);
  if (q == nullptr || *made) return;
  q->quantize(act_format_for(weight_type), x_, ldx_, rows_, n_, pool);
  *made = true;
}

int64_t Activations::column_group(DType weight_type) {
  switch (act_format_for(weight_type)) {
    case ActFormat::Q8_32:
      return 512;
    case ActFormat::Q8_256:
      return 256;
    default:
      return 0;
  }
}

QuantizedActs* Activations::form_for(DType weight_type, bool** made) {
  switch (act_format_for(weight_type)) {
    case ActFormat::Q8_32:
      *made = &have_q8_32_;
      return &q8_32_;
    case ActFormat::Q8_256:
      *made = &have_q8_256_;
      return &q8_256_;
    default:
      return nullptr;
  }
}

void Activations::begin_columns(DType weight_type) {
  if (rows_ != 1) throw Error("activations: columns are quantized piece by piece for one row only");
  bool* made = nullptr;
  if (QuantizedActs* q = form_for(weight_type, &made)) q->begin_columns(act_format_for(weight_type), n_);
}

void Activations::prepare_columns(DType weight_type, int64_t c0, int64_t c1) {
  bool* made = nullptr;
  if (QuantizedActs* q = form_for(weight_type, &made)) q->quantize_columns(x_, c0, c1);
}

void Activations::finish_columns(DType weight_type) {
  bool* made = nullptr;
  if (form_for(weight_type, &made) != nullptr) *made = true;
}

const float* Activations::f32_panels() const {
  if (!have_panels_) throw Error("activations: the F32 token panels were not made");
  return panels_.data();
}

const QuantizedActs& Activations::quantized(ActFormat format) const {
  if (format == ActFormat::Q8_32 && have_q8_32_) return q8_32_;
  if (format == ActFormat::Q8_256 && have_q8_256_) return q8_256_;
  throw Error("activations were not prepared for this weight type");
}

namespace {

// Largest number of tokens the tiled product handles at once.
constexpr int kMaxTokenBlock = 256;

// Rows per prepared tile: the tile (1 byte + 1 float per 4 values per row)
// should stay in L2 while a block of tokens streams past it.
int tile_rows_fast(int64_t n) {
  const int64_t rows = (256 * 1024) / (2 * std::max<int64_t>(n, 1));
  return static_cast<int>(std::clamp<int64_t>(rows / 4 * 4, 4, 64));
}

// Tokens per block: their activations (about 3 bytes per value) should stay
// in L2 (about 1 MiB of it) while the tiles of rows pass.
int token_block_fast(int64_t n) {
  const int64_t tokens = (1024 * 1024) / (3 * std::max<int64_t>(n, 1));
  return static_cast<int>(std::clamp<int64_t>(tokens / 4 * 4, 4, kMaxTokenBlock));
}

// Per-thread buffers of the tiled products (grown on first use, then kept).
struct TileBuffers {
  std::vector<uint8_t> values, scratch;
  std::vector<float> lane_scales, offsets, f32;
};

TileBuffers& tile_buffers() {
  thread_local TileBuffers buffers;
  return buffers;
}

// Elements of each buffer a tile of `rows` rows of n values needs (either
// tile layout, see PreparedTile).
struct TileSizes {
  int64_t values, lane_scales, offsets;
};
TileSizes tile_sizes(int64_t rows, int64_t n) {
  const int64_t padded = (n + 511) / 512 * 512;
  return {2 * rows * padded + padded,  // + one row of scratch
          rows * std::max(n / 4, padded / 16), rows * (n / 16)};
}

// A thread's scratch buffer v, grown when it holds fewer than `need`
// elements: to at least `ordinary` at once (see kTileRowLengthBound).
template <typename T>
void grow_scratch(std::vector<T>& v, int64_t need, int64_t ordinary) {
  if (static_cast<int64_t>(v.size()) < need) ensure_size(v, std::max(need, ordinary));
}

TileSizes ordinary_tile_sizes() {
  TileSizes most{0, 0, 0};
  for (int64_t n = 32; n <= kTileRowLengthBound; n += 32) {
    const TileSizes s = tile_sizes(tile_rows_fast(n), n);
    most = {std::max(most.values, s.values), std::max(most.lane_scales, s.lane_scales),
            std::max(most.offsets, s.offsets)};
  }
  return most;
}

// A tile of up to `rows` rows of n values over this thread's buffers, large
// enough for either tile layout (see PreparedTile).
detail::PreparedTile tile_over(TileBuffers& buf, int64_t rows, int64_t n) {
  static const TileSizes kOrdinary = ordinary_tile_sizes();
  const int64_t padded = (n + 511) / 512 * 512;
  const TileSizes need = tile_sizes(rows, n);
  grow_scratch(buf.values, need.values, kOrdinary.values);
  grow_scratch(buf.lane_scales, need.lane_scales, kOrdinary.lane_scales);
  grow_scratch(buf.offsets, need.offsets, kOrdinary.offsets);
  detail::PreparedTile tile;
  tile.values = buf.values.data();
  tile.lane_scales = buf.lane_scales.data();
  tile.offsets = buf.offsets.data();
  tile.scratch = buf.values.data() + 2 * rows * padded;
  return tile;
}

}  // namespace

void prepare_thread_scratch() {
  TileBuffers& buf = tile_buffers();
  tile_over(buf, 1, 32);  // a first growth takes the ordinary sizes
  grow_scratch(buf.f32, kF32TileFloats, kF32TileFloats);
}

namespace {

detail::QRow qrow(const QuantizedActs& x, int64_t t) {
  detail::QRow row;
  row.qs = x.qs(t);
  row.scales = x.scales(t);
  row.sums = x.sums(t);
  row.scaled_sums = x.scaled_sums(t);
  row.lane_bias = x.lane_bias(t);
  row.sub_bias = x.sub_bias(t);
  row.lane_scales = x.lane_scales(t);
  row.qs_q4k = x.format() == ActFormat::Q8_256 ? x.qs_q4k(t) : nullptr;
  row.qs_lanes = x.qs_lanes(t);
  row.group_scales = x.group_scales(t);
  return row;
}

void pack_q4_k_block(const TensorView& W, int64_t g, int64_t b, uint8_t* o) {
  for (int r = 0; r < kRows16; ++r) {
    const uint8_t* block = W.row(g * kRows16 + r) + b * kQ4_KBytes;
    std::memcpy(o + 2 * r, block, 2);
    std::memcpy(o + kRows16Dmin + 2 * r, block + kQ4_KDmin, 2);
    uint8_t scales[8], mins[8];
    layout::q4_k_scales_mins(block + kQ4_KScales, scales, mins);
    for (int j = 0; j < 8; ++j) {
      o[kRows16Scales + 16 * j + r] = scales[j];
      o[kRows16Mins + 16 * j + r] = mins[j];
    }
    for (int group = 0; group < 4; ++group)
      for (int k = 0; k < 8; ++k)
        std::memcpy(o + kRows16Qs + (group * 8 + k) * 64 + 4 * r, block + kQ4_KQs + 32 * group + 4 * k, 4);
  }
}

void pack_q6_k_block(const TensorView& W, int64_t g, int64_t b, uint8_t* o) {
  for (int r = 0; r < kRows16; ++r) {
    const uint8_t* block = W.row(g * kRows16 + r) + b * kQ6_KBytes;
    std::memcpy(o + 2 * r, block + kQ6_KD, 2);
    for (int s = 0; s < 16; ++s) o[layout::kRows16Q6Scales + 16 * s + r] = block[kQ6_KScales + s];
    int q[256];
    for (int i = 0; i < 256; ++i) q[i] = layout::q6_k_value(block, i);
    for (int s = 0; s < 16; ++s) {
      uint8_t* v = o + layout::kRows16Q6Qs + 192 * s + 4 * r;
      const int* e = q + 16 * s;
      for (int k = 0; k < 4; ++k) {
        for (int m = 0; m < 3; ++m)
          v[64 * m + k] = static_cast<uint8_t>(e[4 * m + k] | ((e[12 + k] >> (2 * m)) & 3) << 6);
      }
    }
  }
}

// Q8_0 and Q4_0: each row's scale, then its `steps` runs of four bytes as
// they are stored (block_layouts.h).
template <int kBlockBytes, int kQs, int kSteps>
void pack_block32(const TensorView& W, int64_t g, int64_t b, uint8_t* o) {
  for (int r = 0; r < kRows16; ++r) {
    const uint8_t* block = W.row(g * kRows16 + r) + b * kBlockBytes;
    std::memcpy(o + 2 * r, block, 2);
    for (int k = 0; k < kSteps; ++k) std::memcpy(o + 32 + 64 * k + 4 * r, block + kQs + 4 * k, 4);
  }
}

// Q5_0 block b of 16 rows widened into the Q8_0 form: value j is
// (nibble j | bit j of qh << 4) - 16, nibbles as in Q4_0.
void pack_q5_0_block(const TensorView& W, int64_t g, int64_t b, uint8_t* o) {
  for (int r = 0; r < kRows16; ++r) {
    const uint8_t* block = W.row(g * kRows16 + r) + b * layout::kQ5_0Bytes;
    std::memcpy(o + 2 * r, block, 2);
    const uint32_t qh = layout::load_u32(block + layout::kQ5_0Qh);
    for (int j = 0; j < 32; ++j) {
      const uint8_t byte = block[layout::kQ5_0Qs + j % 16];
      const int q = (j < 16 ? byte & 0x0F : byte >> 4) | static_cast<int>((qh >> j) & 1) << 4;
      o[layout::kRows16Q8Qs + 64 * (j / 4) + 4 * r + j % 4] = static_cast<uint8_t>(static_cast<int8_t>(q - 16));
    }
  }
}

// Every packed form (block_layouts.h): the stored type it holds, its block
// geometry, how a block of 16 rows is written, its scalar reference, the
// IsaKernels entry of its SIMD kernel, and the groups of 16 rows it
// interleaves block by block (kQuadGroups for the quads forms, else 1).
using PackBlockFn = void (*)(const TensorView& W, int64_t g, int64_t b, uint8_t* out);
struct Rows16Form {
  Rows16Layout layout;
  DType type;
  int64_t block_cols;   // columns per packed block
  int64_t block_bytes;  // bytes of a packed block of 16 rows
  PackBlockFn pack_block;
  detail::GemvRows16Fn reference;
  detail::GemvRows16Fn IsaKernels::*kernel;
  int run_groups = 1;
};

constexpr Rows16Form kRows16Forms[] = {
    {Rows16Layout::Q4_K, DType::Q4_K, 256, kRows16Bytes, pack_q4_k_block, detail::reference::gemv_q4_k_rows16,
     &IsaKernels::gemv_q4_k_rows16},
    // After the Q4_K form: the form of a type (rows16_form(DType)) is its
    // first; rows16_layout(W) chooses the quads forms for long rows.
    {Rows16Layout::Q4_K_Quads, DType::Q4_K, 256, kRows16Bytes, pack_q4_k_block, detail::reference::gemv_q4_k_quads,
     &IsaKernels::gemv_q4_k_quads, kQuadGroups},
    {Rows16Layout::Q6_K_SixBit, DType::Q6_K, 256, layout::kRows16Q6Bytes, pack_q6_k_block,
     detail::reference::gemv_q6_k_rows16, &IsaKernels::gemv_q6_k_rows16},
    {Rows16Layout::Q6_K_Quads, DType::Q6_K, 256, layout::kRows16Q6Bytes, pack_q6_k_block,
     detail::reference::gemv_q6_k_quads, &IsaKernels::gemv_q6_k_quads, kQuadGroups},
    {Rows16Layout::Q8_0, DType::Q8_0, 32, layout::kRows16Q8Bytes, pack_block32<kQ8_0Bytes, kQ8_0Qs, 8>,
     detail::reference::gemv_q8_0_rows16, &IsaKernels::gemv_q8_0_rows16},
    {Rows16Layout::Q4_0, DType::Q4_0, 32, layout::kRows16Q4_0Bytes,
     pack_block32<layout::kQ4_0Bytes, layout::kQ4_0Qs, 4>, detail::reference::gemv_q4_0_rows16,
     &IsaKernels::gemv_q4_0_rows16},
    // Widened into the Q8_0 form: the Q8_0 kernels read it.
    {Rows16Layout::Q5_0_AsQ8_0, DType::Q5_0, 32, layout::kRows16Q8Bytes, pack_q5_0_block,
     detail::reference::gemv_q8_0_rows16, &IsaKernels::gemv_q8_0_rows16},
};
static_assert(layout::kRows16Q8Qs == 32 && layout::kRows16Q4_0Qs == 32, "pack_block32 writes the values at 32");

// The table lists the forms in the order of Rows16Layout, so that a form is
// found by its layout directly (one-token products ask for it per claim).
constexpr bool forms_in_layout_order() {
  for (size_t i = 0; i < std::size(kRows16Forms); ++i)
    if (static_cast<size_t>(kRows16Forms[i].layout) != i) return false;
  return true;
}
static_assert(forms_in_layout_order(), "kRows16Forms must list the forms in the order of Rows16Layout");

// The form `layout` names (null: none).
const Rows16Form* rows16_form(Rows16Layout layout) {
  const auto i = static_cast<size_t>(layout);
  return i < std::size(kRows16Forms) ? &kRows16Forms[i] : nullptr;
}

// The form of a type (null: the type has no packed form).
const Rows16Form* rows16_form(DType type) {
  for (const Rows16Form& f : kRows16Forms)
    if (f.type == type) return &f;
  return nullptr;
}

// The stored type a packed form holds (F32, which has none, for no form).
DType rows16_layout_type(Rows16Layout layout) {
  const Rows16Form* f = rows16_form(layout);
  return f != nullptr ? f->type : DType::F32;
}

void check_fast_args(const TensorView& W, const Activations& X) {
  if (!W) throw Error("matmul: weight tensor has no data");
  if (W.rows16 != nullptr && rows16_layout_type(W.rows16_layout) != W.type)
    throw Error("matmul: the packed copy of a " + std::string(dtype_name(W.type)) +
                " matrix is in another type's form");
  detail::check_row_args(W.type, W.cols());
  if (X.n() != W.cols())
    throw Error("matmul: activations have " + std::to_string(X.n()) + " values per row, the matrix " +
                std::to_string(W.cols()));
  if (W.row_stride < row_bytes(W.type, W.cols()))
    throw Error("matmul: row stride " + std::to_string(W.row_stride) + " is smaller than a " +
                std::string(dtype_name(W.type)) + " row of " + std::to_string(W.cols()) + " elements");
}

// Bytes of a packed block (rows16_block_cols columns) for 16 rows of `type`
// (0: no packed layout).
int64_t rows16_block_bytes(DType type) {
  const Rows16Form* f = rows16_form(type);
  return f != nullptr ? f->block_bytes : 0;
}

int64_t rows16_block_cols(DType type) {
  const Rows16Form* f = rows16_form(type);
  return f != nullptr ? f->block_cols : 256;
}

// Bytes of one packed group of 16 rows of n columns.
int64_t rows16_group_bytes(DType type, int64_t n) { return n / rows16_block_cols(type) * rows16_block_bytes(type); }

// Groups of 16 rows a packed form interleaves (block_layouts.h): a product
// over it starts and ends at a run of this many.
int64_t rows16_run_groups(Rows16Layout layout) {
  const Rows16Form* f = rows16_form(layout);
  return f != nullptr ? f->run_groups : 1;
}

// Where block b of group g lies in a packed matrix, in blocks from its start:
// block b of each group of a run in turn.
int64_t rows16_block_index(Rows16Layout layout, int64_t g, int64_t b, int64_t n_blocks) {
  const int64_t run = rows16_run_groups(layout);
  return g / run * run * n_blocks + run * b + g % run;
}

// The rows a one-token product of W works in: a group of 16, or a run of
// its packed form's groups (the quads forms' kernels read whole runs).
int64_t unit_rows(const TensorView& W) {
  return W.rows16 != nullptr ? kRows16 * rows16_run_groups(W.rows16_layout) : kRows16;
}

// The kernel of `isa` for a packed matrix in `layout` (null for no form).
detail::GemvRows16Fn rows16_kernel(const IsaKernels& isa, Rows16Layout layout) {
  const Rows16Form* f = rows16_form(layout);
  return f != nullptr ? isa.*(f->kernel) : nullptr;
}

// Rows [r0, r1) (whole groups of 16) of a packed matrix times x.
void packed_rows16(const IsaKernels& isa, Rows16Layout layout, const uint8_t* packed, int64_t n, int64_t r0, int64_t r1,
                   const detail::QRow& x, float* y) {
  const int64_t group_bytes = rows16_group_bytes(rows16_layout_type(layout), n);
  rows16_kernel(isa, layout)(packed + r0 / kRows16 * group_bytes, (r1 - r0) / kRows16, n, x, y + r0);
}

// Rows [r0, r1) of W times tokens [t0, t1) of X (no argument checks).
void fast_block(const IsaKernels& isa, const TensorView& W, const Activations& X, int64_t r0, int64_t r1, int64_t t0,
                int64_t t1, float* Y, int64_t ldy) {
  const int64_t n = W.cols();
  const ActFormat format = act_format_for(W.type);
  if (format == ActFormat::F32 || (X.rows() > 1 && f32_tiles(isa, W.type))) {
    if (X.rows() == 1) {
      if (isa.gemv_long_rows != nullptr && (W.type == DType::F16 || W.type == DType::BF16) &&
          4 * n >= detail::kLongRowActBytes) {
        isa.gemv_long_rows(W.type, W.row(r0), W.row_stride, r1 - r0, n, X.f32(), Y + r0);
        return;
      }
      for (int64_t r = r0; r < r1; ++r) Y[r] = isa.dot(W.type, W.row(r), X.f32(), n);
      return;
    }
    TileBuffers& buf = tile_buffers();
    const int64_t tile_rows = isa.gemm_f32_panels != nullptr ? panel_tile_rows(n) : tile_rows_for(n);
    grow_scratch(buf.f32, tile_rows * n, kF32TileFloats);
    for (int64_t r = r0; r < r1; r += tile_rows) {
      const int64_t nr = std::min(tile_rows, r1 - r);
      for (int64_t i = 0; i < nr; ++i) isa.dequantize_row(W.type, W.row(r + i), buf.f32.data() + i * n, n);
      if (isa.gemm_f32_panels != nullptr) {
        isa.gemm_f32_panels(buf.f32.data(), n, nr, X.f32_panels(), t0, t1 - t0, n, Y + t0 * ldy + r, ldy);
      } else {
        isa.gemm_f32(buf.f32.data(), n, nr, X.f32() + t0 * X.ldx(), X.ldx(), t1 - t0, n, Y + t0 * ldy + r, ldy);
      }
    }
    return;
  }
  const QuantizedActs& q = X.quantized(format);
  if (q.rows() == 1) {
    const detail::QRow x = qrow(q, 0);
    if (W.rows16 != nullptr && r0 % unit_rows(W) == 0 && r1 % unit_rows(W) == 0) {
      packed_rows16(isa, W.rows16_layout, W.rows16, n, r0, r1, x, Y);
      return;
    }
    if (isa.gemv(W.type, W.row(r0), W.row_stride, r1 - r0, n, x, Y + r0)) return;
  } else if (isa.prepare_tile == nullptr) {
    for (int64_t t = t0; t < t1; ++t) {
      const detail::QRow x = qrow(q, t);
      isa.gemv(W.type, W.row(r0), W.row_stride, r1 - r0, n, x, Y + t * ldy + r0);
    }
    return;
  }
  // Prepared tiles (also one token on an ISA without a direct kernel).
  const int tile_rows = tile_rows_fast(n);
  detail::PreparedTile tile = tile_over(tile_buffers(), tile_rows, n);
  for (int64_t r = r0; r < r1; r += tile_rows) {
    const int nr = static_cast<int>(std::min<int64_t>(tile_rows, r1 - r));
    isa.prepare_tile(W.type, W.row(r), W.row_stride, nr, n, tile);
    for (int64_t t = t0; t < t1; t += kMaxTokenBlock) {
      const int nt = static_cast<int>(std::min<int64_t>(kMaxTokenBlock, t1 - t));
      isa.gemm_tile(tile, qrow(q, t), nt, Y + t * ldy + r, ldy);
    }
  }
}

}  // namespace

float dot_q8(DType type, const uint8_t* w, const QuantizedActs& x, int64_t row) {
  detail::check_row_args(type, x.n());
  if (act_format_for(type) != x.format() || x.format() == ActFormat::F32)
    throw Error("dot_q8: activations are not in the format " + std::string(dtype_name(type)) + " needs");
  if (row < 0 || row >= x.rows()) throw Error("dot_q8: activation row out of range");
  const detail::QRow q = qrow(x, row);
  float y = 0.0f;
  const IsaKernels& isa = active();
  if (isa.gemv(type, w, 0, 1, x.n(), q, &y)) return y;
  // No direct kernel: one prepared row.
  detail::PreparedTile tile = tile_over(tile_buffers(), 1, x.n());
  isa.prepare_tile(type, w, 0, 1, x.n(), tile);
  isa.gemm_tile(tile, q, 1, &y, 1);
  return y;
}

void matmul_fast_rows(const TensorView& W, const Activations& X, int64_t r0, int64_t r1, float* Y, int64_t ldy) {
  check_fast_args(W, X);
  if (r0 < 0 || r1 > W.rows() || r0 > r1) throw Error("matmul: row range out of bounds");
  if (r0 == r1 || X.rows() == 0) return;
  fast_block(active(), W, X, r0, r1, 0, X.rows(), Y, ldy);
}

namespace {

// One token: every thread streams one contiguous run of rows (all tasks'
// rows in order), front to back, so that the kernels' prefetching runs on
// from one claim into the next; a thread done with its run takes rows from
// the back of another's. Chunks handed out in turn would start a cold
// stream every few tens of kilobytes, each waiting on memory before its
// prefetches are ahead: 5-10% of a decode step on the development VM.
//
// Runs are counted in units of 16 rows (the packed layouts' groups). Each
// claim takes a quarter of what is left of the run, at most a piece of 1/8
// of the thread's share: so that a run ends in single units and the thread
// done first waits less for the other. Equal pieces to the end left the
// caller waiting 290 us per 0.6B token at the sections' ends, these 190
// (bench/README.md, "Serial steps and section ends"). Pieces of at most 1/8
// rather than 1/32 (fewer kernel calls, each a restart of the stream) made
// tokens 2.3% faster in the AMD host's fast memory phase, the same in its
// slow one, paired per token (bench/README.md, session 18).
struct alignas(64) UnitRange {
  std::atomic<uint64_t> bounds;  // front (high 32 bits), back (low 32 bits)
};
constexpr int kMaxStreamThreads = 256;
constexpr int64_t kPiecesPerThread = 8;

inline uint64_t pack_bounds(uint32_t front, uint32_t back) { return uint64_t{front} << 32 | back; }

int64_t units_of(const TensorView& W) { return (W.rows() + unit_rows(W) - 1) / unit_rows(W); }

// Thread t's run of n_units: [run_start(t), run_start(t + 1)).
int64_t run_start(int64_t n_units, int t, int threads) { return n_units * t / threads; }

// Claims units from the front of r (its owner) or the back (a thief): a
// quarter of what is left, between 1 and `most`. Returns the count (0: r is
// empty) and sets `first`.
int64_t claim_units(UnitRange& r, bool front, int64_t most, int64_t& first) {
  uint64_t b = r.bounds.load(std::memory_order_relaxed);
  for (;;) {
    const uint32_t f = static_cast<uint32_t>(b >> 32), e = static_cast<uint32_t>(b);
    if (f >= e) return 0;
    const auto k = static_cast<uint32_t>(std::clamp<int64_t>((e - f) / 4, 1, most));
    const uint64_t next = front ? pack_bounds(f + k, e) : pack_bounds(f, e - k);
    if (r.bounds.compare_exchange_weak(b, next, std::memory_order_acq_rel, std::memory_order_relaxed)) {
      first = front ? f : e - k;
      return k;
    }
  }
}

// Every thread's run of n_units, whole, before a section.
void start_runs(UnitRange* ranges, int64_t n_units, int threads) {
  for (int t = 0; t < threads; ++t)
    ranges[t].bounds.store(pack_bounds(static_cast<uint32_t>(run_start(n_units, t, threads)),
                                       static_cast<uint32_t>(run_start(n_units, t + 1, threads))),
                           std::memory_order_relaxed);
}

// Thread `thread`'s part of a section: its own run from the front, then the
// other runs from the back; run(u, end) computes units [u, end).
template <typename Run>
void run_claims(UnitRange* ranges, int threads, int64_t most, int thread, Run run) {
  int64_t first = 0;
  for (int64_t k; (k = claim_units(ranges[thread], true, most, first)) > 0;) run(first, first + k);
  for (int v = 1; v < threads; ++v) {
    UnitRange& victim = ranges[(thread + v) % threads];
    for (int64_t k; (k = claim_units(victim, false, most, first)) > 0;) run(first, first + k);
  }
}

void matvec_streams(const IsaKernels& isa, std::span<const MatmulTask> tasks, ThreadPool& pool) {
  const int threads = pool.size();
  int64_t n_units = 0;
  for (const MatmulTask& task : tasks) n_units += units_of(*task.W);
  UnitRange ranges[kMaxStreamThreads];
  start_runs(ranges, n_units, threads);
  struct Job {
    const IsaKernels* isa;
    std::span<const MatmulTask> tasks;
    UnitRange* ranges;
    int64_t most;  // units per claim at most
    int threads;
  };
  const Job job{&isa, tasks, ranges, std::max<int64_t>(1, n_units / (threads * kPiecesPerThread)), threads};
  // Units [u, end) of the task list: one kernel call per task they touch.
  auto run_units = [](const Job& j, int64_t u, int64_t end) {
    for (const MatmulTask& task : j.tasks) {
      const int64_t in_task = units_of(*task.W);
      if (u < in_task) {
        const int64_t stop = std::min(end, in_task);
        const int64_t unit = unit_rows(*task.W);
        fast_block(*j.isa, *task.W, *task.X, u * unit, std::min(task.W->rows(), stop * unit), 0, 1, task.Y, task.ldy);
        u = stop;
      }
      if (u >= end) return;
      u -= in_task;
      end -= in_task;
    }
  };
  auto work = [j = &job, run_units](int64_t, int64_t, int thread) {
    run_claims(j->ranges, j->threads, j->most, thread,
               [j, run_units](int64_t u, int64_t end) { run_units(*j, u, end); });
  };
  pool.ParallelFor(threads, work);
}

// swiglu_fast's parallel section: the runs and claims of matvec_streams over
// the units of 16 rows of the gate matrix followed by those of the up matrix
// (with two threads, one streams the gate matrix and the other the up
// matrix), and each group of rows finished on the spot by the thread that
// completes it, gate and up both: SwiGLU on its rows, and the group's
// columns of `hidden` quantized. A group's count of rows still to come (its
// gate rows and its up rows) is decremented with acquire-release, so the
// thread that takes it to zero sees the other threads' values of the group.
// Paired per token on the AMD host, these runs against runs over the gate
// matrix's units with each unit's gate and up rows computed together (two
// streams per thread, in claims of 1/8 or of all of a thread's share alike):
// tokens 1.5% faster in the fast memory phase, 1% in the slow
// (bench/README.md, session 19).
constexpr int64_t kMaxSwigluGroups = 1024;
// Rows per finished group when the down product takes F32 activations (no
// column groups to quantize): SwiGLU in pieces of this many rows.
constexpr int64_t kSwigluRowsPerGroup = 256;

int64_t swiglu_group_rows(DType down_type) {
  const int64_t group = Activations::column_group(down_type);
  return group > 0 ? group : kSwigluRowsPerGroup;
}

// swiglu_streams' section: what its threads share. (Free functions rather
// than lambdas: GCC 12 with the sanitizers took the copied empty closures
// for uninitialised values.)
struct SwigluJob {
  const IsaKernels* isa;
  const TensorView *W_gate, *W_up;
  const Activations* X;
  float *gate, *up;
  Activations* hidden;
  DType down_type;
  int64_t group, gate_units;
  std::atomic<int64_t>* rows_left;
  UnitRange* ranges;
  int64_t most;
  int threads;
};

// Rows [r0, r1) of one matrix done: finish the groups this completes.
void swiglu_finish(const SwigluJob& j, int64_t r0, int64_t r1) {
  const int64_t rows = j.W_gate->rows();
  for (int64_t g = r0 / j.group; g * j.group < r1; ++g) {
    const int64_t c0 = g * j.group, c1 = std::min(rows, c0 + j.group);
    const int64_t mine = std::min(r1, c1) - std::max(r0, c0);
    if (j.rows_left[g].fetch_sub(mine, std::memory_order_acq_rel) != mine) continue;
    j.isa->silu_mul(j.gate + c0, j.up + c0, c1 - c0);
    j.hidden->prepare_columns(j.down_type, c0, c1);  // nothing to do for F32 activations
  }
}

// Units [u, end) of the list: gate units, then up units.
void swiglu_units(const SwigluJob& j, int64_t u, int64_t end) {
  const int64_t rows = j.W_gate->rows(), unit = unit_rows(*j.W_gate);
  if (u < j.gate_units) {
    const int64_t r0 = u * unit, r1 = std::min(rows, std::min(end, j.gate_units) * unit);
    fast_block(*j.isa, *j.W_gate, *j.X, r0, r1, 0, 1, j.gate, rows);
    swiglu_finish(j, r0, r1);
  }
  if (end > j.gate_units) {
    const int64_t r0 = (std::max(u, j.gate_units) - j.gate_units) * unit,
                  r1 = std::min(rows, (end - j.gate_units) * unit);
    fast_block(*j.isa, *j.W_up, *j.X, r0, r1, 0, 1, j.up, rows);
    swiglu_finish(j, r0, r1);
  }
}

void swiglu_streams(const IsaKernels& isa, const TensorView& W_gate, const TensorView& W_up, const Activations& X,
                    float* gate, float* up, Activations& hidden, DType down_type, ThreadPool& pool) {
  const int threads = pool.size();
  const int64_t rows = W_gate.rows(), gate_units = units_of(W_gate), n_units = 2 * gate_units;
  UnitRange ranges[kMaxStreamThreads];
  start_runs(ranges, n_units, threads);
  const int64_t group = swiglu_group_rows(down_type);
  const int64_t n_groups = (rows + group - 1) / group;
  std::atomic<int64_t> rows_left[kMaxSwigluGroups];
  for (int64_t g = 0; g < n_groups; ++g)
    rows_left[g].store(2 * (std::min(rows, (g + 1) * group) - g * group), std::memory_order_relaxed);
  const SwigluJob job{.isa = &isa,
                      .W_gate = &W_gate,
                      .W_up = &W_up,
                      .X = &X,
                      .gate = gate,
                      .up = up,
                      .hidden = &hidden,
                      .down_type = down_type,
                      .group = group,
                      .gate_units = gate_units,
                      .rows_left = rows_left,
                      .ranges = ranges,
                      .most = std::max<int64_t>(1, n_units / (threads * kPiecesPerThread)),
                      .threads = threads};
  auto work = [j = &job](int64_t, int64_t, int thread) {
    run_claims(j->ranges, j->threads, j->most, thread, [j](int64_t u, int64_t end) { swiglu_units(*j, u, end); });
  };
  pool.ParallelFor(threads, work);
}

// Where the one-token kernels read unit u (16 rows) of W: the packed copy
// when there is one (whole groups of 16 rows), else the stored rows.
const uint8_t* unit_address(const TensorView& W, int64_t u, int64_t& unit_bytes) {
  if (W.rows16 != nullptr) {
    unit_bytes = rows16_group_bytes(W.type, W.cols()) * rows16_run_groups(W.rows16_layout);
    return W.rows16 + u * unit_bytes;
  }
  unit_bytes = kRows16 * W.row_stride;
  return W.row(u * kRows16);
}

}  // namespace

void prefetch_next_product(ThreadPool& pool, std::span<const TensorView* const> weights, int64_t bytes) {
  const int threads = pool.size();
  if (threads < 2 || threads > kMaxStreamThreads || bytes <= 0) return;
  int64_t n_units = 0;
  for (const TensorView* W : weights) n_units += units_of(*W);
  for (int t = 0; t < threads; ++t) {
    int64_t u = run_start(n_units, t, threads);
    const int64_t run_units = run_start(n_units, t + 1, threads) - u;
    for (const TensorView* W : weights) {
      const int64_t in_w = units_of(*W);
      if (u < in_w) {
        int64_t unit_bytes = 0;
        const uint8_t* at = unit_address(*W, u, unit_bytes);
        pool.PrefetchAfterNextJob(t, at, std::min(bytes, std::min(run_units, in_w - u) * unit_bytes));
        break;
      }
      u -= in_w;
    }
  }
}

void matmul_fast(std::span<const MatmulTask> tasks, ThreadPool* pool) {
  if (tasks.empty()) return;
  const int64_t n_tokens = tasks[0].X->rows();
  for (const MatmulTask& task : tasks) {
    check_fast_args(*task.W, *task.X);
    if (task.X->rows() != n_tokens) throw Error("matmul: tasks with different numbers of tokens");
    task.X->prepare_for(task.W->type, pool);
  }
  if (n_tokens == 0) return;
  const IsaKernels& isa = active();
  const int threads = pool != nullptr ? pool->size() : 1;
  if (n_tokens == 1 && threads > 1 && threads <= kMaxStreamThreads) {
    matvec_streams(isa, tasks, *pool);
    return;
  }

  // Work items: chunks of rows of each task (for several tokens, times
  // blocks of tokens, token block outermost so that the threads share the
  // block's activations while it is hot).
  struct Chunk {
    int task;
    int64_t r0, r1;
  };
  constexpr int kMaxChunks = 4096;
  Chunk chunks[kMaxChunks];
  int n_chunks = 0;
  int64_t total_rows = 0;
  for (const MatmulTask& task : tasks) total_rows += task.W->rows();
  // Matrix-vector: chunks small enough to balance the threads, at least 16
  // rows. Matrix-matrix: one prepared tile each.
  int64_t token_block = n_tokens;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const TensorView& W = *tasks[i].W;
    int64_t chunk_rows;
    if (n_tokens == 1) {
      // Whole runs of the packed form (16 rows, or 64 in the quads forms).
      const int64_t unit = unit_rows(W);
      chunk_rows = std::max<int64_t>(unit, total_rows / (threads * 16)) / unit * unit;
    } else if (act_format_for(W.type) == ActFormat::F32 || f32_tiles(isa, W.type)) {
      // Dequantized F32 tiles; F32 tokens (4 bytes a value) in blocks that
      // stay in L2 with the tile.
      if (isa.gemm_f32_panels != nullptr) {
        // The kernel keeps one panel of 16 tokens in L2 at a time: blocks
        // as long as the matrix is, each tile dequantized once.
        chunk_rows = panel_tile_rows(W.cols());
      } else {
        chunk_rows = tile_rows_for(W.cols()) * 2;
        token_block =
            std::min<int64_t>(token_block, std::clamp<int64_t>((1024 * 1024) / (4 * W.cols()) / 12 * 12, 12, 252));
      }
    } else if (isa.prepare_tile == nullptr) {
      chunk_rows = tile_rows_for(W.cols()) * 2;
    } else {
      chunk_rows = tile_rows_fast(W.cols());
      token_block = std::min<int64_t>(token_block, token_block_fast(W.cols()));
    }
    // Few chunks of few rows for small matrices.
    chunk_rows = std::max<int64_t>(chunk_rows, (W.rows() + kMaxChunks / static_cast<int64_t>(tasks.size()) - 1) /
                                                   (kMaxChunks / static_cast<int64_t>(tasks.size())));
    for (int64_t r = 0; r < W.rows(); r += chunk_rows)
      chunks[n_chunks++] = {static_cast<int>(i), r, std::min(W.rows(), r + chunk_rows)};
  }
  struct Job {
    const IsaKernels* isa;
    std::span<const MatmulTask> tasks;
    const Chunk* chunks;
    int64_t n_chunks, n_tokens, token_block;
  };
  const Job job{&isa, tasks, chunks, n_chunks, n_tokens, token_block};
  const int64_t n_items = n_chunks * ((n_tokens + token_block - 1) / token_block);
  auto work = [j = &job](int64_t begin, int64_t end, int) {
    for (int64_t item = begin; item < end; ++item) {
      const Chunk& c = j->chunks[item % j->n_chunks];
      const int64_t t0 = item / j->n_chunks * j->token_block;
      const MatmulTask& task = j->tasks[static_cast<size_t>(c.task)];
      fast_block(*j->isa, *task.W, *task.X, c.r0, c.r1, t0, std::min(j->n_tokens, t0 + j->token_block), task.Y,
                 task.ldy);
    }
  };
  if (pool != nullptr) {
    pool->ParallelForDynamic(n_items, 1, work);
  } else {
    work(0, n_items, 0);
  }
}

namespace {

// Whether any value of the Q8_0 rows is -128 (which the packed form cannot
// hold, block_layouts.h).
bool q8_0_has_minus_128(const TensorView& W) {
  for (int64_t r = 0; r < W.rows(); ++r) {
    const uint8_t* row = W.row(r);
    for (int64_t b = 0; b < W.cols() / kQ8_0Elems; ++b) {
      const uint8_t* qs = row + b * kQ8_0Bytes + kQ8_0Qs;
      uint8_t any = 0;
      for (int i = 0; i < kQ8_0Elems; ++i) any |= static_cast<uint8_t>(qs[i] == 0x80);
      if (any) return true;
    }
  }
  return false;
}

}  // namespace

bool can_pack_rows16(const TensorView& W) {
  if (!W || rows16_block_bytes(W.type) == 0 || W.cols() % rows16_block_cols(W.type) != 0 || W.cols() <= 0 ||
      W.rows() % kRows16 != 0 || W.rows() <= 0)
    return false;
  return W.type != DType::Q8_0 || !q8_0_has_minus_128(W);
}

Rows16Layout rows16_layout(DType type) {
  const Rows16Form* f = rows16_form(type);
  return f != nullptr ? f->layout : Rows16Layout::Q4_K;
}

bool have_fast_rows16(DType type) {
  const Rows16Form* f = rows16_form(type);
  if (f == nullptr) return false;
  const Rows16Layout layout = rows16_layout(type);
  return rows16_kernel(active(), layout) != rows16_form(layout)->reference;
}

int64_t rows16_bytes(const TensorView& W) { return W.rows() / kRows16 * rows16_group_bytes(W.type, W.cols()); }

void pack_rows16(const TensorView& W, uint8_t* out, Rows16Layout layout) {
  if (!can_pack_rows16(W))
    throw Error(
        "pack_rows16: needs a Q4_K or Q6_K matrix with a multiple of 16 rows and of 256 columns, a Q4_0 or Q5_0 one "
        "with a multiple of 16 rows, or a Q8_0 one with a multiple of 16 rows and no value -128");
  if (rows16_layout_type(layout) != W.type)
    throw Error("pack_rows16: that packed form is another type's than " + std::string(dtype_name(W.type)));
  if (W.rows() % (kRows16 * rows16_run_groups(layout)) != 0)
    throw Error("pack_rows16: that packed form needs a multiple of " +
                std::to_string(kRows16 * rows16_run_groups(layout)) + " rows; this matrix has " +
                std::to_string(W.rows()));
  const int64_t n_blocks = W.cols() / rows16_block_cols(W.type), block_bytes = rows16_block_bytes(W.type);
  for (int64_t g = 0; g < W.rows() / kRows16; ++g) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      rows16_form(layout)->pack_block(W, g, b, out + rows16_block_index(layout, g, b, n_blocks) * block_bytes);
    }
  }
}

Rows16Layout rows16_layout(const TensorView& W) {
  if (W.cols() >= kQuadsMinCols) {
    // The type's form that interleaves groups, where W's rows are whole runs
    // of it and the active instruction set has its own kernel for it.
    for (const Rows16Form& f : kRows16Forms)
      if (f.type == W.type && f.run_groups > 1 && W.rows() % (kRows16 * f.run_groups) == 0 &&
          active().*(f.kernel) != f.reference)
        return f.layout;
  }
  return rows16_layout(W.type);
}

void attach_rows16(TensorView& W, uint8_t* out) {
  const Rows16Layout layout = rows16_layout(W);
  pack_rows16(W, out, layout);
  W.rows16 = out;
  W.rows16_layout = layout;
}

void gemv_rows16(Rows16Layout layout, const uint8_t* packed, int64_t n, int64_t r0, int64_t r1, const Activations& x,
                 float* y) {
  if (rows16_kernel(active(), layout) == nullptr) throw Error("gemv_rows16: not a packed form");
  const DType type = rows16_layout_type(layout);
  const int64_t run_rows = kRows16 * rows16_run_groups(layout);
  if (n <= 0 || n % rows16_block_cols(type) != 0 || r0 % run_rows != 0 || r1 % run_rows != 0 || r0 > r1)
    throw Error("gemv_rows16: rows must be whole runs of " + std::to_string(run_rows) +
                " (the form's groups of 16) and n a multiple of " + std::to_string(rows16_block_cols(type)));
  const QuantizedActs& q = x.quantized(act_format_for(type));
  if (q.n() != n || q.rows() < 1) throw Error("gemv_rows16: activations do not match the matrix");
  packed_rows16(active(), layout, packed, n, r0, r1, qrow(q, 0), y);
}

void matmul_fast(const TensorView& W, Activations& X, float* Y, ThreadPool* pool) {
  const MatmulTask task{&W, &X, Y, W.rows()};
  matmul_fast(std::span<const MatmulTask>(&task, 1), pool);
}

void swiglu_fast(const TensorView& W_gate, const TensorView& W_up, Activations& X, float* gate, float* up,
                 Activations& hidden, DType down_type, ThreadPool* pool) {
  check_fast_args(W_gate, X);
  check_fast_args(W_up, X);
  const int64_t rows = W_gate.rows();
  if (W_up.rows() != rows) throw Error("swiglu: gate and up matrices have different row counts");
  if (X.rows() != 1) throw Error("swiglu: fused for one token only");
  if (hidden.f32() != gate || hidden.rows() != 1 || hidden.n() != rows)
    throw Error("swiglu: the hidden activations must be set to the gate row");
  const int64_t group = swiglu_group_rows(down_type);
  const IsaKernels& isa = active();
  const int threads = pool != nullptr ? pool->size() : 1;
  // The section's units cover the gate and up matrices alike: packed forms
  // with different run sizes (a gate in a quads form beside an up matrix of
  // the other type in its own form) take the two products one after the
  // other.
  if (threads < 2 || threads > kMaxStreamThreads || (rows + group - 1) / group > kMaxSwigluGroups ||
      unit_rows(W_gate) != unit_rows(W_up)) {
    const MatmulTask tasks[] = {{&W_gate, &X, gate, rows}, {&W_up, &X, up, rows}};
    matmul_fast(tasks, pool);
    isa.silu_mul(gate, up, rows);
    hidden.prepare_for(down_type, nullptr);
    return;
  }
  X.prepare_for(W_gate.type, pool);
  X.prepare_for(W_up.type, pool);
  hidden.begin_columns(down_type);
  swiglu_streams(isa, W_gate, W_up, X, gate, up, hidden, down_type, *pool);
  hidden.finish_columns(down_type);
}

// ================================================================ attention

void attention(const AttentionArgs& a, AttentionScratch& scratch) {
  if (a.kv_type != DType::F32 && a.kv_type != DType::F16 && a.kv_type != DType::Q8_0)
    throw Error("attention: KV cache must be F32, F16 or Q8_0");
  if (a.head_dim <= 0 || a.n_heads <= 0 || a.n_tokens < 0 || a.n_past < 0) throw Error("attention: bad shape");
  if (a.kv_type == DType::Q8_0 && (a.head_dim % 32 != 0 || a.kv_stride % 32 != 0))
    throw Error("attention: a Q8_0 KV cache needs head sizes that are multiples of 32 (head size " +
                std::to_string(a.head_dim) + ")");
  if (a.n_tokens == 0) return;
  active().attention(a, scratch);
}

int64_t kv_row_bytes(DType kv_type, int64_t n) {
  switch (kv_type) {
    case DType::F32:
      return 4 * n;
    case DType::F16:
      return 2 * n;
    case DType::Q8_0:
      return n / 32 * 34;
    default:
      throw Error("KV cache type " + std::string(dtype_name(kv_type)) + " is not supported (F32, F16 or Q8_0)");
  }
}

void quantize_q8_0_row(const float* x, int64_t n, uint8_t* blocks) {
  if (n < 0 || n % 32 != 0) throw Error("quantize_q8_0_row: " + std::to_string(n) + " values, not a multiple of 32");
  alignas(32) int8_t qs[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    float scale = 0;
    detail::reference::quantize_q8_32(x + 32 * b, 32, qs, &scale);
    const uint16_t d = f32_to_fp16(scale);  // scale is fp16-exact
    std::memcpy(blocks + 34 * b, &d, 2);
    std::memcpy(blocks + 34 * b + 2, qs, 32);
  }
}

void silu_mul(float* g, const float* u, int64_t n) { active().silu_mul(g, u, n); }

void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps) {
  active().rms_norm(x, w, out, n, eps);
}

SoftmaxSums softmax_sums(const float* x, int64_t n) {
  if (n < 1) throw Error("softmax_sums: empty row");
  return active().softmax_sums(x, n);
}

int64_t find_above(const float* x, int64_t from, int64_t n, float threshold) {
  return from >= n ? n : active().find_above(x, std::max<int64_t>(from, 0), n, threshold);
}

void f32_to_f16_row(const float* x, uint16_t* out, int64_t n) { active().f32_to_f16(x, out, n); }
void f16_to_f32_row(const uint16_t* x, float* out, int64_t n) { active().f16_to_f32(x, out, n); }

void gemm_f32_panels(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0, int64_t n_tokens,
                     int64_t n, float* Y, int64_t ldy) {
  const detail::GemmF32PanelsFn fn = active().gemm_f32_panels;
  (fn != nullptr ? fn : detail::reference::gemm_f32_panels)(W, ldw, n_rows, panels, t0, n_tokens, n, Y, ldy);
}

void scalar::gemm_f32_panels(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0,
                             int64_t n_tokens, int64_t n, float* Y, int64_t ldy) {
  detail::reference::gemm_f32_panels(W, ldw, n_rows, panels, t0, n_tokens, n, Y, ldy);
}

void gemv_long_rows(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const float* x,
                    float* y) {
  if (type != DType::F16 && type != DType::BF16) throw Error("gemv_long_rows: needs F16 or BF16 rows");
  const IsaKernels& isa = active();
  if (isa.gemv_long_rows != nullptr) {
    isa.gemv_long_rows(type, w, row_stride, n_rows, n, x, y);
    return;
  }
  for (int64_t r = 0; r < n_rows; ++r) y[r] = isa.dot(type, w + r * row_stride, x, n);
}

std::string_view active_isa() { return active().name; }

CpuTuning cpu_tuning() {
  return {.prefetch_packed = detail::g_prefetch_packed.load(std::memory_order_relaxed),
          .avx512_attention = detail::g_avx512_attention.load(std::memory_order_relaxed)};
}

void force_cpu_tuning(CpuTuning tuning) {
  detail::g_prefetch_packed.store(tuning.prefetch_packed, std::memory_order_relaxed);
  detail::g_avx512_attention.store(tuning.avx512_attention, std::memory_order_relaxed);
}

bool force_isa(std::string_view name) {
  const IsaKernels* k = nullptr;
  if (name == "scalar") {
    k = &detail::kScalarKernels;
  } else if (name == "avx2" && cpu_has_avx2()) {
    k = &detail::kAvx2Kernels;
  } else if (name == "avx512" && cpu_has_avx512()) {
    k = &detail::kAvx512Kernels;
  } else if (name == "avx512vnni" && cpu_has_avx512vnni()) {
    k = &detail::kAvx512VnniKernels;
  } else if (name == "auto") {
    k = best_available();
  }
  if (k == nullptr) return false;
  force_cpu_tuning(tuning_for_this_cpu());
  g_active.store(k, std::memory_order_release);
  return true;
}

}  // namespace glassbox::kernels
