// AVX2 + FMA + F16C kernels. This file is compiled with -mavx2 -mfma -mf16c
// (see CMakeLists.txt) and its functions run only after the dispatcher has
// checked the CPU. Everything here has internal linkage so no AVX2 code can
// leak into the scalar path through a shared inline function.
//
// Dequantization reproduces the scalar reference bit for bit (same float
// operations, no contraction: the file is built with -ffp-contract=off).
// Dot products dequantize in registers and accumulate with FMA in several
// lanes; they differ from the reference only by float rounding.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/block_layouts.h"
#include "kernels/kernels_internal.h"

namespace glassbox::kernels {
namespace {

using namespace layout;

float half_at(const uint8_t* p) { return _cvtsh_ss(load_u16(p)); }

float bf16_at(const uint8_t* p) {
  const uint32_t bits = static_cast<uint32_t>(load_u16(p)) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__m128i load_8_bytes(const uint8_t* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }
__m128i load_16_bytes(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
__m256i load_32_bytes(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Low 8 bytes of v as signed / unsigned integers, converted to floats.
__m256 s8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }
__m256 u8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
__m128i high_8_bytes(__m128i v) { return _mm_srli_si128(v, 8); }

__m256 f16x8_at(const uint8_t* p) { return _mm256_cvtph_ps(load_16_bytes(p)); }
__m256 bf16x8_at(const uint8_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load_16_bytes(p)), 16));
}

// Lane mask selecting the first `count` (< 8) floats, for masked tail loads.
__m256i first_lanes(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Q4_0 / Q5_0 nibbles of a 16-byte group: low nibbles (elements 0..15) and
// high nibbles (16..31), each as 16 unsigned bytes.
void split_nibbles(__m128i v, __m128i* low, __m128i* high) {
  const __m128i m4 = _mm_set1_epi8(0x0F);
  *low = _mm_and_si128(v, m4);
  *high = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
}

// The 32 integer values of a Q5_0 block, as four vectors of 8 floats.
// Element j gets bit j of qh as its fifth bit.
void q5_0_values(const uint8_t* block, __m256 out[4]) {
  const uint32_t qh = load_u32(block + kQ5_0Qh);
  __m128i low, high;
  split_nibbles(load_16_bytes(block + kQ5_0Qs), &low, &high);
  const __m128i groups[4] = {low, high_8_bytes(low), high, high_8_bytes(high)};
  const __m256i qh_all = _mm256_set1_epi32(static_cast<int>(qh));
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i sixteen = _mm256_set1_epi32(16);
  for (int g = 0; g < 4; ++g) {
    const int s = 8 * g;
    const __m256i shifts = _mm256_setr_epi32(s, s + 1, s + 2, s + 3, s + 4, s + 5, s + 6, s + 7);
    const __m256i fifth_bit = _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(qh_all, shifts), one), 4);
    const __m256i q = _mm256_or_si256(_mm256_cvtepu8_epi32(groups[g]), fifth_bit);
    out[g] = _mm256_cvtepi32_ps(_mm256_sub_epi32(q, sixteen));
  }
}

// The 32 integer values of a Q4_0 block (q - 8), as four vectors of 8 floats.
void q4_0_values(const uint8_t* block, __m256 out[4]) {
  __m128i low, high;
  split_nibbles(load_16_bytes(block + kQ4_0Qs), &low, &high);
  const __m128i eight = _mm_set1_epi8(8);
  low = _mm_sub_epi8(low, eight);
  high = _mm_sub_epi8(high, eight);
  out[0] = s8_to_ps(low);
  out[1] = s8_to_ps(high_8_bytes(low));
  out[2] = s8_to_ps(high);
  out[3] = s8_to_ps(high_8_bytes(high));
}

void q8_0_values(const uint8_t* block, __m256 out[4]) {
  for (int g = 0; g < 4; ++g) out[g] = s8_to_ps(load_8_bytes(block + kQ8_0Qs + 8 * g));
}

// One half (128 elements) of a Q6_K block as four vectors of 32 signed bytes
// (q - 32); vector k holds elements 32k..32k+31 of the half.
void q6_k_half_values(const uint8_t* ql, const uint8_t* qh, __m256i q[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(3);
  const __m256i ql0 = load_32_bytes(ql);
  const __m256i ql1 = load_32_bytes(ql + 32);
  const __m256i high = load_32_bytes(qh);
  // 16-bit shifts are safe here: every byte is masked after shifting, and the
  // bits kept come from the same byte.
  const __m256i low_bits[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                               _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
  const __m256i high_bits[4] = {_mm256_and_si256(high, m2), _mm256_and_si256(_mm256_srli_epi16(high, 2), m2),
                                _mm256_and_si256(_mm256_srli_epi16(high, 4), m2),
                                _mm256_and_si256(_mm256_srli_epi16(high, 6), m2)};
  const __m256i bias = _mm256_set1_epi8(32);
  for (int k = 0; k < 4; ++k) {
    q[k] = _mm256_sub_epi8(_mm256_or_si256(low_bits[k], _mm256_slli_epi16(high_bits[k], 4)), bias);
  }
}

// d * scale and dmin * min of the eight Q4_K sub-blocks, computed as the
// reference computes them (one float multiplication each).
void q4_k_block_scales(const uint8_t* block, float scale[8], float min[8]) {
  uint8_t sc[8], mn[8];
  q4_k_scales_mins(block + kQ4_KScales, sc, mn);
  const __m256 d = _mm256_set1_ps(half_at(block));
  const __m256 dmin = _mm256_set1_ps(half_at(block + kQ4_KDmin));
  const __m128i sc_bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc));
  const __m128i mn_bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn));
  _mm256_storeu_ps(scale, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc_bytes))));
  _mm256_storeu_ps(min, _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mn_bytes))));
}

// d * scale of the sixteen Q6_K sub-blocks, as the reference computes them.
void q6_k_block_scales(const uint8_t* block, float scale[16]) {
  const __m256 d = _mm256_set1_ps(half_at(block + kQ6_KD));
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kQ6_KScales));
  _mm256_storeu_ps(scale, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes))));
  _mm256_storeu_ps(scale + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(bytes, 8)))));
}

// ---------------------------------------------------------------- dequantize

void dequantize_row_avx2(DType type, const uint8_t* src, float* dst, int64_t n) {
  switch (type) {
    case DType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16: {
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, f16x8_at(src + 2 * i));
      for (; i < n; ++i) dst[i] = half_at(src + 2 * i);
      return;
    }
    case DType::BF16: {
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, bf16x8_at(src + 2 * i));
      for (; i < n; ++i) dst[i] = bf16_at(src + 2 * i);
      return;
    }
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0: {
      const int64_t block_bytes = type == DType::Q4_0 ? kQ4_0Bytes : type == DType::Q5_0 ? kQ5_0Bytes : kQ8_0Bytes;
      for (int64_t b = 0; b < n / 32; ++b, src += block_bytes, dst += 32) {
        __m256 q[4];
        if (type == DType::Q4_0) {
          q4_0_values(src, q);
        } else if (type == DType::Q5_0) {
          q5_0_values(src, q);
        } else {
          q8_0_values(src, q);
        }
        const __m256 d = _mm256_set1_ps(half_at(src));
        for (int g = 0; g < 4; ++g) _mm256_storeu_ps(dst + 8 * g, _mm256_mul_ps(q[g], d));
      }
      return;
    }
    case DType::Q4_K: {
      const __m256i m4 = _mm256_set1_epi8(0x0F);
      for (int64_t b = 0; b < n / kQ4_KElems; ++b, src += kQ4_KBytes, dst += kQ4_KElems) {
        float scales[8], mins[8];
        q4_k_block_scales(src, scales, mins);
        for (int pair = 0; pair < 4; ++pair) {
          const __m256i v = load_32_bytes(src + kQ4_KQs + 32 * pair);
          const __m256i nibbles[2] = {_mm256_and_si256(v, m4), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)};
          for (int h = 0; h < 2; ++h) {
            const __m256 scale = _mm256_set1_ps(scales[2 * pair + h]);
            const __m256 min = _mm256_set1_ps(mins[2 * pair + h]);
            const __m128i lo = _mm256_castsi256_si128(nibbles[h]);
            const __m128i hi = _mm256_extracti128_si256(nibbles[h], 1);
            const __m128i groups[4] = {lo, high_8_bytes(lo), hi, high_8_bytes(hi)};
            float* out = dst + 64 * pair + 32 * h;
            for (int g = 0; g < 4; ++g) {
              _mm256_storeu_ps(out + 8 * g, _mm256_sub_ps(_mm256_mul_ps(scale, u8_to_ps(groups[g])), min));
            }
          }
        }
      }
      return;
    }
    case DType::Q6_K: {
      for (int64_t b = 0; b < n / kQ6_KElems; ++b, src += kQ6_KBytes, dst += kQ6_KElems) {
        float scales[16];
        q6_k_block_scales(src, scales);
        for (int half = 0; half < 2; ++half) {
          __m256i q[4];
          q6_k_half_values(src + 64 * half, src + kQ6_KQh + 32 * half, q);
          const float* half_scales = scales + 8 * half;
          for (int k = 0; k < 4; ++k) {
            const __m128i lo = _mm256_castsi256_si128(q[k]);
            const __m128i hi = _mm256_extracti128_si256(q[k], 1);
            const __m256 scale_lo = _mm256_set1_ps(half_scales[2 * k]);
            const __m256 scale_hi = _mm256_set1_ps(half_scales[2 * k + 1]);
            float* out = dst + 128 * half + 32 * k;
            _mm256_storeu_ps(out + 0, _mm256_mul_ps(scale_lo, s8_to_ps(lo)));
            _mm256_storeu_ps(out + 8, _mm256_mul_ps(scale_lo, s8_to_ps(high_8_bytes(lo))));
            _mm256_storeu_ps(out + 16, _mm256_mul_ps(scale_hi, s8_to_ps(hi)));
            _mm256_storeu_ps(out + 24, _mm256_mul_ps(scale_hi, s8_to_ps(high_8_bytes(hi))));
          }
        }
      }
      return;
    }
    default:
      return;
  }
}

// ----------------------------------------------------------------------- dot

float dot_f32(const uint8_t* row, const float* x, int64_t n) {
  const float* w = reinterpret_cast<const float*>(row);  // read only through unaligned loads
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int u = 0; u < 4; ++u) {
      acc[u] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8 * u), _mm256_loadu_ps(x + i + 8 * u), acc[u]);
    }
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc[0]);
  if (i < n) {
    const __m256i mask = first_lanes(n - i);
    acc[1] = _mm256_fmadd_ps(_mm256_maskload_ps(w + i, mask), _mm256_maskload_ps(x + i, mask), acc[1]);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// F16 and BF16 rows: 8 elements per conversion, scalar tail.
template <__m256 (*Load8)(const uint8_t*), float (*Load1)(const uint8_t*)>
float dot_16bit(const uint8_t* row, const float* x, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int u = 0; u < 4; ++u) {
      acc[u] = _mm256_fmadd_ps(Load8(row + 2 * (i + 8 * u)), _mm256_loadu_ps(x + i + 8 * u), acc[u]);
    }
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(Load8(row + 2 * i), _mm256_loadu_ps(x + i), acc[0]);
  float tail = 0.0f;
  for (; i < n; ++i) tail += Load1(row + 2 * i) * x[i];
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) + tail;
}

// GemvLongRowsFn: eight rows at a time, one accumulator each, every load of
// 8 activations serving eight conversions and multiply-adds. With one row
// at a time, a down projection's activations (35 KB at 8960 values) cannot
// stay in a 32 KB L1 beside the weights streaming through it: each 16 bytes
// of weights then also load 32 bytes of activations from L2, and a plain
// scratch loop over an F16 matrix of 8960 columns (2 threads, 1 GiB,
// AVX2 host) streamed 18-23 GB/s where a read streams 34-36 (slow memory
// phase) or 57-70 (fast); four rows 30-34 and 38-41, eight rows 28-35 in
// the slow phase (at 4096 columns eight rows 28-32 and 39-44;
// bench/README.md). Rows of 3072 values or fewer go faster one at a time. The last rows of a
// matrix (fewer than 8) take the same steps one row at a time: each row's
// sum is the same whichever way.
template <int R, __m256 (*Load8)(const uint8_t*), float (*Load1)(const uint8_t*)>
void long_rows_block(const uint8_t* w, int64_t row_stride, int64_t n, const float* x, float* y) {
  __m256 acc[R];
  for (int i = 0; i < R; ++i) acc[i] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256 xk = _mm256_loadu_ps(x + k);
    for (int i = 0; i < R; ++i) acc[i] = _mm256_fmadd_ps(Load8(w + i * row_stride + 2 * k), xk, acc[i]);
  }
  for (int i = 0; i < R; ++i) {
    float tail = 0.0f;
    for (int64_t j = k; j < n; ++j) tail += Load1(w + i * row_stride + 2 * j) * x[j];
    y[i] = hsum(acc[i]) + tail;
  }
}

template <__m256 (*Load8)(const uint8_t*), float (*Load1)(const uint8_t*)>
void long_rows(const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const float* x, float* y) {
  int64_t r = 0;
  for (; r + 8 <= n_rows; r += 8) long_rows_block<8, Load8, Load1>(w + r * row_stride, row_stride, n, x, y + r);
  for (; r < n_rows; ++r) long_rows_block<1, Load8, Load1>(w + r * row_stride, row_stride, n, x, y + r);
}

void gemv_long_rows_avx2(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const float* x,
                         float* y) {
  if (type == DType::F16) {
    long_rows<f16x8_at, half_at>(w, row_stride, n_rows, n, x, y);
  } else {
    long_rows<bf16x8_at, bf16_at>(w, row_stride, n_rows, n, x, y);
  }
}

// Q4_0, Q5_0, Q8_0: one scale per 32 elements, so the block's integer values
// are dotted with x first and scaled once.
template <void (*Values)(const uint8_t*, __m256*), int64_t kBlockBytes>
float dot_32_block(const uint8_t* row, const float* x, int64_t n) {
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t n_blocks = n / 32;
  for (int64_t b = 0; b < n_blocks; ++b, row += kBlockBytes, x += 32) {
    __m256 q[4];
    Values(row, q);
    __m256 sum = _mm256_mul_ps(q[0], _mm256_loadu_ps(x));
    sum = _mm256_fmadd_ps(q[1], _mm256_loadu_ps(x + 8), sum);
    sum = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(x + 16), sum);
    sum = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(x + 24), sum);
    acc[b & 1] = _mm256_fmadd_ps(_mm256_set1_ps(half_at(row)), sum, acc[b & 1]);
  }
  return hsum(_mm256_add_ps(acc[0], acc[1]));
}

// Q4_K: weights are rebuilt in registers (scale * q - min) so that the
// subtraction of the min happens before the products, as in the reference.
float dot_q4_k(const uint8_t* row, const float* x, int64_t n) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  // Four independent accumulators keep the FMA latency chains short.
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < n / kQ4_KElems; ++b, row += kQ4_KBytes, x += kQ4_KElems) {
    float scales[8], mins[8];
    q4_k_block_scales(row, scales, mins);
    for (int pair = 0; pair < 4; ++pair) {
      const __m256i v = load_32_bytes(row + kQ4_KQs + 32 * pair);
      const __m256i nibbles[2] = {_mm256_and_si256(v, m4), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)};
      for (int h = 0; h < 2; ++h) {
        const __m256 scale = _mm256_set1_ps(scales[2 * pair + h]);
        const __m256 min = _mm256_set1_ps(mins[2 * pair + h]);
        const __m128i lo = _mm256_castsi256_si128(nibbles[h]);
        const __m128i hi = _mm256_extracti128_si256(nibbles[h], 1);
        const __m128i groups[4] = {lo, high_8_bytes(lo), hi, high_8_bytes(hi)};
        const float* xs = x + 64 * pair + 32 * h;
        for (int g = 0; g < 4; ++g) {
          const __m256 w = _mm256_fmsub_ps(scale, u8_to_ps(groups[g]), min);
          acc[g] = _mm256_fmadd_ps(w, _mm256_loadu_ps(xs + 8 * g), acc[g]);
        }
      }
    }
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// Q6_K: one scale per 16 elements; integer values are dotted with x first.
float dot_q6_k(const uint8_t* row, const float* x, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < n / kQ6_KElems; ++b, row += kQ6_KBytes, x += kQ6_KElems) {
    float scales[16];
    q6_k_block_scales(row, scales);
    for (int half = 0; half < 2; ++half) {
      __m256i q[4];
      q6_k_half_values(row + 64 * half, row + kQ6_KQh + 32 * half, q);
      const float* half_scales = scales + 8 * half;
      for (int k = 0; k < 4; ++k) {
        const float* xs = x + 128 * half + 32 * k;
        const __m128i parts[2] = {_mm256_castsi256_si128(q[k]), _mm256_extracti128_si256(q[k], 1)};
        for (int p = 0; p < 2; ++p) {
          __m256 sum = _mm256_mul_ps(s8_to_ps(parts[p]), _mm256_loadu_ps(xs + 16 * p));
          sum = _mm256_fmadd_ps(s8_to_ps(high_8_bytes(parts[p])), _mm256_loadu_ps(xs + 16 * p + 8), sum);
          const __m256 scale = _mm256_set1_ps(half_scales[2 * k + p]);
          acc[2 * (k & 1) + p] = _mm256_fmadd_ps(scale, sum, acc[2 * (k & 1) + p]);
        }
      }
    }
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

float dot_avx2(DType type, const uint8_t* row, const float* x, int64_t n) {
  switch (type) {
    case DType::F32:
      return dot_f32(row, x, n);
    case DType::F16:
      return dot_16bit<f16x8_at, half_at>(row, x, n);
    case DType::BF16:
      return dot_16bit<bf16x8_at, bf16_at>(row, x, n);
    case DType::Q4_0:
      return dot_32_block<q4_0_values, kQ4_0Bytes>(row, x, n);
    case DType::Q5_0:
      return dot_32_block<q5_0_values, kQ5_0Bytes>(row, x, n);
    case DType::Q8_0:
      return dot_32_block<q8_0_values, kQ8_0Bytes>(row, x, n);
    case DType::Q4_K:
      return dot_q4_k(row, x, n);
    case DType::Q6_K:
      return dot_q6_k(row, x, n);
    default:
      return 0.0f;
  }
}

// ---------------------------------------------------------------------- gemm

// Register-blocked tile: kRows weight rows times kTokens tokens, each pair
// with its own accumulator, so every load feeds several FMAs.
template <int kRows, int kTokens>
void gemm_block(const float* W, int64_t ldw, const float* X, int64_t ldx, int64_t n, float* Y, int64_t ldy) {
  __m256 acc[kRows][kTokens];
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < kTokens; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 xv[kTokens];
#pragma GCC unroll 4
    for (int t = 0; t < kTokens; ++t) xv[t] = _mm256_loadu_ps(X + t * ldx + k);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const __m256 w = _mm256_loadu_ps(W + r * ldw + k);
#pragma GCC unroll 4
      for (int t = 0; t < kTokens; ++t) acc[r][t] = _mm256_fmadd_ps(w, xv[t], acc[r][t]);
    }
  }
  if (k < n) {
    const __m256i mask = first_lanes(n - k);
    for (int r = 0; r < kRows; ++r) {
      const __m256 w = _mm256_maskload_ps(W + r * ldw + k, mask);
      for (int t = 0; t < kTokens; ++t) {
        acc[r][t] = _mm256_fmadd_ps(w, _mm256_maskload_ps(X + t * ldx + k, mask), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) Y[t * ldy + r] = hsum(acc[r][t]);
  }
}

template <int kTokens>
void gemm_rows(const float* W, int64_t ldw, int64_t n_rows, const float* X, int64_t ldx, int64_t n, float* Y,
               int64_t ldy) {
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4) gemm_block<4, kTokens>(W + r * ldw, ldw, X, ldx, n, Y + r, ldy);
  for (; r < n_rows; ++r) gemm_block<1, kTokens>(W + r * ldw, ldw, X, ldx, n, Y + r, ldy);
}

void gemm_f32_avx2(const float* W, int64_t ldw, int64_t n_rows, const float* X, int64_t ldx, int64_t n_tokens,
                   int64_t n, float* Y, int64_t ldy) {
  int64_t t = 0;
  for (; t + 3 <= n_tokens; t += 3) gemm_rows<3>(W, ldw, n_rows, X + t * ldx, ldx, n, Y + t * ldy, ldy);
  switch (n_tokens - t) {
    case 2:
      gemm_rows<2>(W, ldw, n_rows, X + t * ldx, ldx, n, Y + t * ldy, ldy);
      break;
    case 1:
      gemm_rows<1>(W, ldw, n_rows, X + t * ldx, ldx, n, Y + t * ldy, ldy);
      break;
    default:
      break;
  }
}

// Loops over the registers of a tile kernel's R x T block are unrolled
// before GCC decides what lives in memory: left to -O3, a block array that
// loops index is kept on the stack and stored back every iteration.
#define GLASSBOX_UNROLL _Pragma("GCC unroll 16")

using detail::kF32PanelPieceCols;
using detail::kF32PanelTokens;

// F32 products with the tokens in panels (kernels_internal.h): R rows times
// V vectors of 8 tokens. Per k: V loads of the panel, R broadcast weights,
// R x V multiply-adds into as many accumulators (6 x 2: 12 accumulators,
// the two values and one broadcast in the 16 registers). The two FMA pipes
// stay busy without horizontal sums, and each (row, token) is one lane
// summed in order of k, as the reference does.
// With `resume`, the sums start from `out` (the same lanes: a product taken
// over the row in pieces of k continues each lane's chain of multiply-adds
// where the last piece left it, so the bits are those of one pass).
template <int R, int V>
void panel_block(const float* W, int64_t ldw, const float* panel, int64_t n, bool resume,
                 float (&out)[6][kF32PanelTokens]) {
  __m256 acc[R][V];
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
    GLASSBOX_UNROLL for (int v = 0; v < V; ++v) acc[r][v] =
        resume ? _mm256_loadu_ps(out[r] + 8 * v) : _mm256_setzero_ps();
  }
  const float* w[R];
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) w[r] = W + r * ldw;
  const float* x = panel;
#pragma GCC unroll 4
  for (int64_t k = 0; k < n; ++k, x += kF32PanelTokens) {
    __m256 xv[V];
    GLASSBOX_UNROLL for (int v = 0; v < V; ++v) xv[v] = _mm256_loadu_ps(x + 8 * v);
    GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_broadcast_ss(w[r] + k);
      GLASSBOX_UNROLL for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(wv, xv[v], acc[r][v]);
    }
  }
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
    GLASSBOX_UNROLL for (int v = 0; v < V; ++v) _mm256_storeu_ps(out[r] + 8 * v, acc[r][v]);
  }
}

// Rows [0, R) of W against the tokens in lanes [first, last) of one panel:
// the 16 lanes, or 8 of them where the tokens lie in one half. With
// `resume`, adds to the sums in Y (a later piece of k, see panel_block).
template <int R>
void panel_rows(const float* W, int64_t ldw, const float* panel, int first, int last, int64_t n, bool resume, float* Y,
                int64_t ldy) {
  float out[6][kF32PanelTokens] = {};  // lanes outside [first, last) resume from zeros, unused
  const int lane0 = last <= 8 ? 0 : first >= 8 ? 8 : 0;
  if (resume) {
    for (int t = first; t < last; ++t) {
      GLASSBOX_UNROLL for (int r = 0; r < R; ++r) out[r][t - lane0] = Y[(t - first) * ldy + r];
    }
  }
  if (last <= 8) {
    panel_block<R, 1>(W, ldw, panel, n, resume, out);
  } else if (first >= 8) {
    panel_block<R, 1>(W, ldw, panel + 8, n, resume, out);
  } else {
    panel_block<R, 2>(W, ldw, panel, n, resume, out);
  }
  for (int t = first; t < last; ++t) {
    GLASSBOX_UNROLL for (int r = 0; r < R; ++r) Y[(t - first) * ldy + r] = out[r][t - lane0];
  }
}

// Panel by panel, each against every group of 6 rows: a panel (64 bytes per
// value of the row) stays in L2 while the tile's rows stream past it. Rows
// longer than kF32PanelPieceCols go in pieces of k (all panels against
// the tile's piece, then the next piece, each lane's sum resumed from Y):
// whole, a panel of 8960 values is 560 KiB, and a tile small enough to share
// L2 with it (6 rows) meets each panel once, read from L3 at 3 FLOP per
// byte; 512 tokens against 6 x 8960 computed 58-78 GFLOP/s on one core of
// the AVX2 host, 6 x 3072 or 30 x 1536 89-90. In pieces with 18 rows, whole
// prompts of r1-distill-1.5b went 2-8% faster at F16 and Q8_0; rows of 3072
// in pieces of 1536 with 24 rows gained nothing (bench/README.md).
void gemm_f32_panels_avx2(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0,
                          int64_t n_tokens, int64_t n, float* Y, int64_t ldy) {
  using RowsFn = void (*)(const float*, int64_t, const float*, int, int, int64_t, bool, float*, int64_t);
  constexpr RowsFn kRows[7] = {nullptr,       panel_rows<1>, panel_rows<2>, panel_rows<3>,
                               panel_rows<4>, panel_rows<5>, panel_rows<6>};
  detail::for_each_panel_block(
      W, ldw, n_rows, panels, t0, n_tokens, n, Y, ldy, 6,
      [&](const float* w, int rows, const float* panel, int64_t kn, int first, int last, bool resume, float* y) {
        kRows[rows](w, ldw, panel, first, last, kn, resume, y, ldy);
      });
}

// The types whose several-token products are faster in F32 on AVX2
// (kernels_bench Fast/*/tokens:64, one thread, at Qwen3-0.6B's shapes: the
// signed 8-bit tiles of Q8_0, Q4_0 and Q5_0 73-76 GFLOP/s, Q6_K's 65-72,
// F32 tiles with token panels 77-81; Q4_K's integer tiles 103-110 stay).
constexpr uint32_t kAvx2F32TileTypes =
    (1u << static_cast<uint32_t>(DType::Q8_0)) | (1u << static_cast<uint32_t>(DType::Q4_0)) |
    (1u << static_cast<uint32_t>(DType::Q5_0)) | (1u << static_cast<uint32_t>(DType::Q6_K));

// ================================================================ fast path

using detail::PreparedTile;
using detail::QRow;

[[maybe_unused]] int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// 32 floats x * scale, rounded to nearest even and saturated to int8.
void store_q8x32(int8_t* out, const float* x, __m256 scale) {
  __m256i i[4];
  for (int k = 0; k < 4; ++k) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), scale));
  const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
  // The packs work within 128-bit lanes: put the 32-bit groups back in order.
  const __m256i ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), ordered);
}

void quantize_acts_fast(ActFormat format, const float* x, int64_t n, int8_t* qs, float* scales, int32_t* sums,
                        float* scaled_sums, int32_t* lane_bias, float* lane_scales) {
  const __m256 sign_off = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  if (format == ActFormat::Q8_256) {
    for (int64_t b = 0; b < n / 256; ++b) {
      const float* xb = x + 256 * b;
      __m256 amax_v = _mm256_setzero_ps();
      for (int k = 0; k < 32; ++k) amax_v = _mm256_max_ps(amax_v, _mm256_and_ps(_mm256_loadu_ps(xb + 8 * k), sign_off));
      const float amax = hmax(amax_v);
      float d = 0.0f;
      if (amax == 0.0f) {
        std::memset(qs + 256 * b, 0, 256);
      } else {
        float max = 0.0f;
        for (int j = 0; j < 256; ++j) {
          if (std::fabs(xb[j]) == amax) {
            max = xb[j];
            break;
          }
        }
        const float iscale = -127.0f / max;
        for (int k = 0; k < 8; ++k) store_q8x32(qs + 256 * b + 32 * k, xb + 32 * k, _mm256_set1_ps(iscale));
        d = 1.0f / iscale;
      }
      for (int r = 0; r < 8; ++r) scales[8 * b + r] = d;
    }
  } else {
    for (int64_t b = 0; b < n / 32; ++b) {
      __m256 amax_v = _mm256_setzero_ps();
      for (int k = 0; k < 4; ++k)
        amax_v = _mm256_max_ps(amax_v, _mm256_and_ps(_mm256_loadu_ps(x + 32 * b + 8 * k), sign_off));
      const float amax = hmax(amax_v);
      const float d = amax / 127.0f;
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      scales[b] = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      store_q8x32(qs + 32 * b, x + 32 * b, _mm256_set1_ps(id));
    }
  }
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < n / 32; ++b) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * b));
    const __m256i four = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(lane_bias + 8 * b),
                        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(four, 7)));
    _mm256_storeu_ps(lane_scales + 8 * b, _mm256_set1_ps(scales[b]));
    const __m128i four_lo = _mm256_castsi256_si128(four), four_hi = _mm256_extracti128_si256(four, 1);
    const __m128i s_lo = _mm_add_epi32(four_lo, _mm_unpackhi_epi64(four_lo, four_lo));
    const __m128i s_hi = _mm_add_epi32(four_hi, _mm_unpackhi_epi64(four_hi, four_hi));
    const int32_t s16_lo = _mm_cvtsi128_si32(_mm_add_epi32(s_lo, _mm_shuffle_epi32(s_lo, 1)));
    const int32_t s16_hi = _mm_cvtsi128_si32(_mm_add_epi32(s_hi, _mm_shuffle_epi32(s_hi, 1)));
    sums[b] = s16_lo + s16_hi;
    scaled_sums[2 * b] = scales[b] * static_cast<float>(s16_lo);
    scaled_sums[2 * b + 1] = scales[b] * static_cast<float>(s16_hi);
  }
}

// Byte j is 16 when bit j of `bits` is set, else 0 (j < 16).
__m128i bits_to_sixteens(uint32_t bits) {
  const __m128i spread = _mm_shuffle_epi8(_mm_cvtsi32_si128(static_cast<int>(bits)),
                                          _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const __m128i bit = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(spread, bit), bit), _mm_set1_epi8(16));
}

// Block b (32 signed values w, scale d) of row r of a signed tile (see
// PreparedTile): |w| and w's sign mask, d, and d times the sum of |w| over
// the block's negative w.
void store_signed_block(__m256i w, float d, int r, int64_t b, PreparedTile& tile) {
  const int64_t n = tile.n;
  const __m256i magnitude = _mm256_abs_epi8(w);  // -128 becomes 128 (unsigned)
  const __m256i negative = _mm256_cmpgt_epi8(_mm256_setzero_si256(), w);
  uint8_t* out = tile.values + r * (2 * n) + 64 * b;
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), magnitude);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32), negative);
  const __m256i sums = _mm256_sad_epu8(_mm256_and_si256(magnitude, negative), _mm256_setzero_si256());
  const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
  const int64_t negative_sum = _mm_cvtsi128_si64(_mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2)));
  float* scales = tile.lane_scales + r * (n / 4);
  scales[b] = d;
  scales[n / 32 + b] = d * static_cast<float>(negative_sum);  // exact: at most 11 + 12 significant bits
}

void prepare_tile_fast(DType type, const uint8_t* w, int64_t row_stride, int n_rows, int64_t n, PreparedTile& tile) {
  tile.n = n;
  tile.n_rows = n_rows;
  tile.type = type;
  const __m256i m4y = _mm256_set1_epi8(0x0F);
  for (int r = 0; r < n_rows; ++r) {
    const uint8_t* row = w + r * row_stride;
    uint8_t* values = tile.values + r * n;
    float* lanes = tile.lane_scales + r * (n / 4);
    switch (type) {
      case DType::Q8_0:
        for (int64_t b = 0; b < n / 32; ++b, row += kQ8_0Bytes)
          store_signed_block(load_32_bytes(row + kQ8_0Qs), half_at(row), r, b, tile);
        break;
      case DType::Q4_0:
      case DType::Q5_0: {
        const bool five = type == DType::Q5_0;
        const __m128i bias = _mm_set1_epi8(five ? -16 : -8);
        const int64_t block_bytes = five ? kQ5_0Bytes : kQ4_0Bytes;
        for (int64_t b = 0; b < n / 32; ++b, row += block_bytes) {
          __m128i lo, hi;
          split_nibbles(load_16_bytes(row + (five ? kQ5_0Qs : kQ4_0Qs)), &lo, &hi);
          if (five) {
            const uint32_t qh = load_u32(row + kQ5_0Qh);
            lo = _mm_or_si128(lo, bits_to_sixteens(qh & 0xFFFF));
            hi = _mm_or_si128(hi, bits_to_sixteens(qh >> 16));
          }
          store_signed_block(_mm256_set_m128i(_mm_add_epi8(hi, bias), _mm_add_epi8(lo, bias)), half_at(row), r, b,
                             tile);
        }
        break;
      }
      case DType::Q4_K: {
        float* offsets = tile.offsets + r * (n / 16);
        for (int64_t b = 0; b < n / 256; ++b, row += kQ4_KBytes) {
          uint8_t sc[8], mn[8];
          q4_k_scales_mins(row + kQ4_KScales, sc, mn);
          const float d = half_at(row), dmin = half_at(row + kQ4_KDmin);
          // The block's 64 lane-scale slots: the eight sub-block scales as
          // integers (in both 16-bit halves, for vpmaddwd), then d.
          for (int j = 0; j < 8; ++j) {
            const int32_t scale_pair = static_cast<int32_t>(sc[j]) * 0x10001;
            std::memcpy(lanes + 64 * b + j, &scale_pair, 4);
            offsets[16 * b + 2 * j] = offsets[16 * b + 2 * j + 1] = dmin * static_cast<float>(mn[j]);
          }
          lanes[64 * b + 8] = d;
          for (int p = 0; p < 4; ++p) {
            const __m256i q = load_32_bytes(row + kQ4_KQs + 32 * p);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(values + 256 * b + 64 * p), _mm256_and_si256(q, m4y));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(values + 256 * b + 64 * p + 32),
                                _mm256_and_si256(_mm256_srli_epi16(q, 4), m4y));
          }
        }
        break;
      }
      case DType::Q6_K: {
        // q6_k_half_values gives q - 32: adding 32 stores q (0..63).
        const __m256i bias = _mm256_set1_epi8(32);
        for (int64_t b = 0; b < n / 256; ++b, row += kQ6_KBytes) {
          // Each lane's sub-block scale as an integer in both 16-bit halves
          // (bit patterns in the float array), d in the block's first
          // offset slot (Q6_K has no offsets): a block sums in integers.
          const int8_t* sc = reinterpret_cast<const int8_t*>(row + kQ6_KScales);
          for (int s16 = 0; s16 < 16; ++s16) {
            const uint32_t scale_pair = uint32_t{static_cast<uint16_t>(sc[s16])} * 0x10001u;
            for (int l = 0; l < 4; ++l) std::memcpy(lanes + 64 * b + 4 * s16 + l, &scale_pair, 4);
          }
          tile.offsets[r * (n / 16) + 16 * b] = half_at(row + kQ6_KD);
          for (int half = 0; half < 2; ++half) {
            __m256i q[4];
            q6_k_half_values(row + 64 * half, row + kQ6_KQh + 32 * half, q);
            for (int k = 0; k < 4; ++k)
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(values + 256 * b + 128 * half + 32 * k),
                                  _mm256_add_epi8(q[k], bias));
          }
        }
        break;
      }
      default:
        break;
    }
  }
}

// The R x T accumulators of a tile kernel: all zero; their lane sums out
// (row r0 + r, token t).
template <int R, int T, typename V>
void zero_block(V (&a)[R][T]) {
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) { GLASSBOX_UNROLL for (int t = 0; t < T; ++t) a[r][t] = V{}; }
}

template <int R, int T>
void store_block(const __m256 (&acc)[R][T], int r0, float* Y, int64_t ldy) {
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
    GLASSBOX_UNROLL for (int t = 0; t < T; ++t) Y[t * ldy + r0 + r] = hsum(acc[r][t]);
  }
}

// R tile rows times T tokens; the same instructions per (row, token) pair
// whatever R and T are (batch invariance). Chunks of 32 values = 8 lanes.
// Signed values (Q8_0, Q4_0, Q5_0; see PreparedTile): vpmaddubsw takes |w|
// against x XOR (w's sign mask), which is x where w >= 0 and -x - 1 where
// w < 0 (x is never -128: the 32-value formats quantize to +-127; the pair
// sums stay within int16 even for w = -128). The -1s come back per block as
// the row's stored scale x sum of |w| over negative w, times x's scale. XOR
// runs on any vector port where vpsignb would take one of the two that
// vpmaddubsw, vpmaddwd and the FMA share (AMD Zen 4), and the scale products
// are formed for eight blocks at once, not per block: three multiply-port
// instructions per (row, token, block).
template <int R, int T>
__attribute__((noinline)) void tile_block_signed(const PreparedTile& tile, int r0, const QRow* x, float* Y,
                                                 int64_t ldy) {
  const int64_t n = tile.n, n_blocks = n / 32;
  const float* row_scales[R];
  for (int r = 0; r < R; ++r) row_scales[r] = tile.lane_scales + (r0 + r) * (n / 4);
  // Eight blocks' scales (or corrections) from b0, masked beyond the row.
  auto load8 = [n_blocks](const float* p, int64_t b0) {
    return b0 + 8 <= n_blocks ? _mm256_loadu_ps(p + b0) : _mm256_maskload_ps(p + b0, first_lanes(n_blocks - b0));
  };
  __m256 acc[R][T];
  zero_block(acc);
  alignas(32) float scale[R][T][8];
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b0 = 0; b0 < n_blocks; b0 += 8) {
    GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
      const __m256 ws = load8(row_scales[r], b0);
      GLASSBOX_UNROLL for (int t = 0; t < T; ++t) {
        _mm256_store_ps(scale[r][t], _mm256_mul_ps(ws, load8(x[t].scales, b0)));
      }
    }
    const int64_t blocks = std::min<int64_t>(8, n_blocks - b0);
    for (int64_t j = 0; j < blocks; ++j) {
      const int64_t b = b0 + j;
      __m256i xv[T];
      GLASSBOX_UNROLL for (int t = 0; t < T; ++t) {
        xv[t] = load_32_bytes(reinterpret_cast<const uint8_t*>(x[t].qs + 32 * b));
      }
      GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
        const uint8_t* block = tile.values + (r0 + r) * (2 * n) + 64 * b;
        const __m256i magnitude = load_32_bytes(block);
        const __m256i negative = load_32_bytes(block + 32);
        GLASSBOX_UNROLL for (int t = 0; t < T; ++t) {
          const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_xor_si256(xv[t], negative));
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones)),
                                      _mm256_broadcast_ss(&scale[r][t][j]), acc[r][t]);
        }
      }
    }
  }
  for (int64_t b0 = 0; b0 < n_blocks; b0 += 8) {
    GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
      const __m256 correction = load8(row_scales[r] + n_blocks, b0);
      GLASSBOX_UNROLL for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm256_fmadd_ps(load8(x[t].scales, b0), correction, acc[r][t]);
      }
    }
  }
  store_block(acc, r0, Y, ldy);
}

// The one float step of a 256-value block in the Q4_K and Q6_K tiles:
// acc[r][t] += isum[r][t] x d of row r (at d[r * d_stride]) x token t's
// scale of block b.
template <int R, int T>
void add_block_sums(__m256 (&acc)[R][T], const __m256i (&isum)[R][T], const float* d, int64_t d_stride, const QRow* x,
                    int64_t b) {
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
    const __m256 row_d = _mm256_broadcast_ss(d + r * d_stride);
    GLASSBOX_UNROLL for (int t = 0; t < T; ++t) {
      acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][t]),
                                  _mm256_mul_ps(row_d, _mm256_set1_ps(x[t].scales[8 * b])), acc[r][t]);
    }
  }
}

// Q4_K tiles: each block of 256 sums in integers (nibble x activation pair
// sums of at most 2 * 15 * 127, times the sub-block's 6-bit scale by
// vpmaddwd), then one float multiply-add per block with d and the block's
// activation scale, instead of one per 32 values. The minimums (dmin * min
// per 16 values) come off with the activations' scaled sums.
template <int R, int T>
__attribute__((noinline)) void tile_block_q4_k(const PreparedTile& tile, int r0, const QRow* x, float* Y, int64_t ldy) {
  const int64_t n = tile.n;
  __m256 acc[R][T];
  zero_block(acc);
  for (int64_t b = 0; b < n / 256; ++b) {
    __m256i isum[R][T];
    zero_block(isum);
#pragma GCC unroll 1
    for (int j = 0; j < 8; ++j) {
      const int64_t c = 256 * b + 32 * j;
      __m256i xv[T];
      GLASSBOX_UNROLL for (int t = 0; t < T; ++t) xv[t] = load_32_bytes(reinterpret_cast<const uint8_t*>(x[t].qs + c));
      GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
        const __m256i wv = load_32_bytes(tile.values + (r0 + r) * n + c);
        const __m256i sc = _mm256_castps_si256(_mm256_broadcast_ss(tile.lane_scales + (r0 + r) * (n / 4) + 64 * b + j));
        GLASSBOX_UNROLL for (int t = 0; t < T; ++t) {
          isum[r][t] = _mm256_add_epi32(isum[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(wv, xv[t]), sc));
          // (GCC otherwise copies each sum between registers every step and
          // spills one: 5-7% slower.)
          __asm__("" : "+x"(isum[r][t]));
        }
      }
    }
    add_block_sums(acc, isum, tile.lane_scales + r0 * (n / 4) + 64 * b + 8, n / 4, x, b);
  }
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
    const float* offsets = tile.offsets + (r0 + r) * (n / 16);
    for (int64_t b = 0; b < n / 16; b += 8) {  // n / 16: a multiple of 16
      const __m256 off = _mm256_loadu_ps(offsets + b);
      GLASSBOX_UNROLL for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm256_fnmadd_ps(off, _mm256_loadu_ps(x[t].scaled_sums + b), acc[r][t]);
      }
    }
  }
  store_block(acc, r0, Y, ldy);
}

// Q6_K tiles: q (0..63) times the activations in 16-bit pair sums (at most
// 2 * 63 * 127), the lane's -32 * (sum of its four activations) added to
// the low one (|sum| <= 32258: no overflow), then vpmaddwd with the lane's
// scale; one float step per block with d and the block's activation scale.
template <int R, int T>
__attribute__((noinline)) void tile_block_q6_k(const PreparedTile& tile, int r0, const QRow* x, float* Y, int64_t ldy) {
  const int64_t n = tile.n;
  const __m256i low_half = _mm256_set1_epi32(0xFFFF);
  __m256 acc[R][T];
  zero_block(acc);
  for (int64_t b = 0; b < n / 256; ++b) {
    __m256i isum[R][T];
    zero_block(isum);
#pragma GCC unroll 1
    for (int j = 0; j < 8; ++j) {
      const int64_t c = 256 * b + 32 * j;
      __m256i xv[T], xbias[T];
      GLASSBOX_UNROLL for (int t = 0; t < T; ++t) {
        xv[t] = load_32_bytes(reinterpret_cast<const uint8_t*>(x[t].qs + c));
        xbias[t] = _mm256_and_si256(
            _mm256_srai_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].lane_bias + c / 4)), 2),
            low_half);
      }
      GLASSBOX_UNROLL for (int r = 0; r < R; ++r) {
        const __m256i wv = load_32_bytes(tile.values + (r0 + r) * n + c);
        const __m256i sc = _mm256_castps_si256(_mm256_loadu_ps(tile.lane_scales + (r0 + r) * (n / 4) + c / 4));
        GLASSBOX_UNROLL for (int t = 0; t < T; ++t) {
          isum[r][t] = _mm256_add_epi32(
              isum[r][t], _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(wv, xv[t]), xbias[t]), sc));
        }
      }
    }
    add_block_sums(acc, isum, tile.offsets + r0 * (n / 16) + 16 * b, n / 16, x, b);
  }
  store_block(acc, r0, Y, ldy);
}

// The stored types whose tiles hold signed values (PreparedTile).
bool signed_tile(const PreparedTile& tile) {
  return tile.type == DType::Q8_0 || tile.type == DType::Q4_0 || tile.type == DType::Q5_0;
}

template <int T>
void tile_rows(const PreparedTile& tile, const QRow* x, float* Y, int64_t ldy) {
  int r = 0;
  if (signed_tile(tile)) {
    for (; r + 2 <= tile.n_rows; r += 2) tile_block_signed<2, T>(tile, r, x, Y, ldy);
    if (r < tile.n_rows) tile_block_signed<1, T>(tile, r, x, Y, ldy);
  } else if (tile.type == DType::Q6_K) {
    for (; r + 2 <= tile.n_rows; r += 2) tile_block_q6_k<2, T>(tile, r, x, Y, ldy);
    if (r < tile.n_rows) tile_block_q6_k<1, T>(tile, r, x, Y, ldy);
  } else {
    for (; r + 2 <= tile.n_rows; r += 2) tile_block_q4_k<2, T>(tile, r, x, Y, ldy);
    if (r < tile.n_rows) tile_block_q4_k<1, T>(tile, r, x, Y, ldy);
  }
}

QRow token_at(const QRow& x, int64_t n, int t) {
  QRow out = x;
  out.qs += t * n;
  out.lane_scales += t * (n / 4);
  out.lane_bias += t * (n / 4);
  out.scaled_sums += t * (n / 16);
  out.sums += t * (n / 32);
  out.scales += t * (n / 32);
  return out;
}

void gemm_tile_fast(const PreparedTile& tile, const QRow& x, int n_tokens, float* Y, int64_t ldy) {
  int t = 0;
  // Q4_K's integer sums and the signed kernel leave registers for four
  // tokens at a time (fewer passes over the tile); Q6_K keeps two (more
  // would spill).
  const bool four_tokens = tile.type != DType::Q6_K;
  for (; four_tokens && t + 4 <= n_tokens; t += 4) {
    const QRow four[4] = {token_at(x, tile.n, t), token_at(x, tile.n, t + 1), token_at(x, tile.n, t + 2),
                          token_at(x, tile.n, t + 3)};
    tile_rows<4>(tile, four, Y + t * ldy, ldy);
  }
  for (; t + 2 <= n_tokens; t += 2) {
    const QRow pair[2] = {token_at(x, tile.n, t), token_at(x, tile.n, t + 1)};
    tile_rows<2>(tile, pair, Y + t * ldy, ldy);
  }
  if (t < n_tokens) {
    const QRow one = token_at(x, tile.n, t);
    tile_rows<1>(tile, &one, Y + t * ldy, ldy);
  }
}

// ----------------------------------------------------- one token, packed rows

// The packed kernels stream their rows without software prefetch: the
// packed matrices live in huge pages, where the hardware prefetchers run
// across the whole stream, and on an AMD Zen 4 host the AVX-512 kernels'
// scheme (each step's share of lines 4 KiB ahead into L1 and 8 KiB ahead
// into L2) made whole-model generation 5-8% slower (paired per token;
// bench/README.md).

// Eight unsigned bytes as 32-bit lanes holding the value in both 16-bit
// halves: vpmaddwd with such a vector multiplies both 16-bit sums of a lane
// by the lane's value and adds them. (A broadcast load and one byte shuffle:
// the one-token kernels run out of vector ports before they run out of
// memory bandwidth on some CPUs.)
inline __m256i u8_to_dup16(const uint8_t* p) {
  uint64_t bytes;
  std::memcpy(&bytes, p, 8);
  return _mm256_shuffle_epi8(_mm256_set1_epi64x(static_cast<long long>(bytes)),
                             _mm256_setr_epi8(0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1,  //
                                              4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1));
}

inline __m256i broadcast_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(static_cast<int>(v));
}

// Byte runs for the memory operands of the asm below: alignment 1, so that
// an unaligned run is no misaligned access in C++ terms.
struct Bytes4 {
  uint8_t b[4];
};
struct Bytes32 {
  uint8_t b[32];
};

// One step of the packed Q4_K product: 64 bytes (four nibble pairs of each
// of 16 rows) against the four activations of sub-block 2g and the four of
// sub-block 2g + 1, into the 16-bit sums of rows 0-7 (low0, high0) and 8-15
// (low1, high1). Written in asm because GCC 12, given the same steps as
// intrinsics, either sums a sub-block's products as a tree (all of them
// live at once, most spilled to the stack) or, held to a chain by an empty
// asm, loads each 32 bytes twice (for the mask and for the shift) and adds
// 25 register copies per 16 steps: 4.6 cycles per 64 bytes from L2 instead
// of 4.2 (bench/README.md, "The packed Q4_K kernel's instructions").
inline void q4_k_rows16_step(const uint8_t* w, const uint8_t* x_low, const uint8_t* x_high, __m256i nibble_mask,
                             __m256i& low0, __m256i& high0, __m256i& low1, __m256i& high1) {
  __m256i t0, t1, t2, t3, xl, xh;
  __asm__(
      "vpbroadcastd %[xlm], %[xl]\n\t"
      "vpbroadcastd %[xhm], %[xh]\n\t"
      "vmovdqu %[w0], %[t0]\n\t"
      "vmovdqu %[w1], %[t2]\n\t"
      "vpsrlw $4, %[t0], %[t1]\n\t"
      "vpsrlw $4, %[t2], %[t3]\n\t"
      "vpand %[mask], %[t0], %[t0]\n\t"
      "vpand %[mask], %[t1], %[t1]\n\t"
      "vpand %[mask], %[t2], %[t2]\n\t"
      "vpand %[mask], %[t3], %[t3]\n\t"
      "vpmaddubsw %[xl], %[t0], %[t0]\n\t"
      "vpmaddubsw %[xh], %[t1], %[t1]\n\t"
      "vpmaddubsw %[xl], %[t2], %[t2]\n\t"
      "vpmaddubsw %[xh], %[t3], %[t3]\n\t"
      "vpaddw %[t0], %[low0], %[low0]\n\t"
      "vpaddw %[t1], %[high0], %[high0]\n\t"
      "vpaddw %[t2], %[low1], %[low1]\n\t"
      "vpaddw %[t3], %[high1], %[high1]"
      : [low0] "+x"(low0), [high0] "+x"(high0), [low1] "+x"(low1), [high1] "+x"(high1), [t0] "=&x"(t0), [t1] "=&x"(t1),
        [t2] "=&x"(t2), [t3] "=&x"(t3), [xl] "=&x"(xl), [xh] "=&x"(xh)
      : [xlm] "m"(*reinterpret_cast<const Bytes4*>(x_low)), [xhm] "m"(*reinterpret_cast<const Bytes4*>(x_high)),
        [w0] "m"(*reinterpret_cast<const Bytes32*>(w)), [w1] "m"(*reinterpret_cast<const Bytes32*>(w + 32)),
        [mask] "x"(nibble_mask));
}

// The next block's 256 activations (four lines) into L1, once per block of
// the packed one-token kernels: a group of 16 rows streams n / 256 blocks of
// weights through L1 before it reads the same activations again, which for
// rows of 1536 columns or more evicts them (as in fast_avx512.inc). These
// kernels on the AVX-512 host, paired per token: r1-distill-1.5b Q4_K_M
// 2-4.5% faster in the slow memory phase, 5-7% in the fast.
inline void prefetch_next_activations(const uint8_t* next_block_qs) {
  for (int i = 0; i < 4; ++i) _mm_prefetch(reinterpret_cast<const char*>(next_block_qs + 64 * i), _MM_HINT_T0);
}

// Q4_K rows packed in groups of 16 (kRows16Bytes per block, block_layouts.h),
// as eight rows per 256-bit vector (half h: rows 8h..8h+7, bytes 32h..32h+31
// of each 64-byte chunk). Without VNNI, vpmaddubsw multiplies a row's four
// nibbles with four activations broadcast to every lane and adds pairs into
// 16 bits: at most 2 * 15 * 128 per step, so the eight steps of a sub-block
// sum in 16 bits without saturating, and one vpmaddwd with the rows' scales
// (duplicated into both halves of each lane) gives the scaled 32-bit sum.
// The integer sums equal the AVX-512 kernel's; the float steps are the same.
void gemv_q4_k_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  const int64_t n_blocks = n / kQ4_KElems;
  // The activation sums of sub-blocks 2i and 2i + 1 as the two 16-bit
  // halves of one 32-bit value (|sum| <= 32 * 127), once per call rather
  // than once per group: vpmaddwd meets them with the rows' minimums of the
  // two sub-blocks. In slices of columns so that they fit on the stack.
  constexpr int64_t kSliceBlocks = 256;
  alignas(32) int32_t sum_pairs[kSliceBlocks * 4];
  for (int64_t b0 = 0; b0 < n_blocks; b0 += kSliceBlocks) {
    const int64_t nb = std::min(kSliceBlocks, n_blocks - b0);
    for (int64_t i = 0; i < nb * 4; ++i)
      sum_pairs[i] = static_cast<int32_t>((static_cast<uint32_t>(x.sums[8 * b0 + 2 * i]) & 0xFFFFu) |
                                          (static_cast<uint32_t>(x.sums[8 * b0 + 2 * i + 1]) << 16));
    const uint8_t* block = packed + b0 * kRows16Bytes;
    for (int64_t g = 0; g < n_groups; ++g, block += (n_blocks - nb) * kRows16Bytes) {
      __m256 acc[2], acc_min[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int h = 0; h < 2; ++h) acc[h] = b0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(y + kRows16 * g + 8 * h);
      for (int64_t b = 0; b < nb; ++b, block += kRows16Bytes) {
        const uint8_t* xq = reinterpret_cast<const uint8_t*>(x.qs + kQ4_KElems * (b0 + b));
        prefetch_next_activations(xq + kQ4_KElems);
        __m256i sum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int group = 0; group < 4; ++group) {
          const uint8_t* qs = block + kRows16Qs + group * 512;
          const uint8_t* xg = xq + 64 * group;
          // Four variables, not arrays: GCC keeps arrays whose elements
          // the asm updates on the stack, and each vpmaddwd below then
          // waits for a store to be forwarded (a tenth slower).
          __m256i low0 = _mm256_setzero_si256(), high0 = low0, low1 = low0, high1 = low0;
          for (int k = 0; k < 8; ++k)
            q4_k_rows16_step(qs + 64 * k, xg + 4 * k, xg + 32 + 4 * k, low, low0, high0, low1, high1);
          const __m256i a_low[2] = {low0, low1}, a_high[2] = {high0, high1};
          for (int h = 0; h < 2; ++h) {
            const __m256i s_low = u8_to_dup16(block + kRows16Scales + 16 * (2 * group) + 8 * h);
            const __m256i s_high = u8_to_dup16(block + kRows16Scales + 16 * (2 * group + 1) + 8 * h);
            sum[h] = _mm256_add_epi32(
                sum[h], _mm256_add_epi32(_mm256_madd_epi16(a_low[h], s_low), _mm256_madd_epi16(a_high[h], s_high)));
          }
        }
        const __m256 dx = _mm256_set1_ps(x.scales[8 * (b0 + b)]);
        // Minimums: min (< 64) times the sub-block's activation sum, two
        // sub-blocks per vpmaddwd: lane r holds the mins of sub-blocks 2i and
        // 2i + 1 of row r, against the pair of sums.
        const int32_t* pairs = sum_pairs + 4 * b;
        for (int h = 0; h < 2; ++h) {
          __m256i mins = _mm256_setzero_si256();
          for (int i = 0; i < 4; ++i) {
            const __m128i even = load_16_bytes(block + kRows16Mins + 16 * (2 * i));
            const __m128i odd = load_16_bytes(block + kRows16Mins + 16 * (2 * i + 1));
            const __m256i m =
                _mm256_cvtepu8_epi16(h == 0 ? _mm_unpacklo_epi8(even, odd) : _mm_unpackhi_epi8(even, odd));
            mins = _mm256_add_epi32(mins, _mm256_madd_epi16(m, _mm256_set1_epi32(pairs[i])));
          }
          const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * h)));
          const __m256 dmin =
              _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kRows16Dmin + 16 * h)));
          acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[h]), _mm256_mul_ps(d, dx), acc[h]);
          acc_min[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_mul_ps(dmin, dx), acc_min[h]);
        }
      }
      for (int h = 0; h < 2; ++h) _mm256_storeu_ps(y + kRows16 * g + 8 * h, _mm256_sub_ps(acc[h], acc_min[h]));
    }
  }
}

// Q6_K rows packed in groups of 16 in the six-bit form (kRows16Q6Bytes per
// block, Rows16Layout::Q6_K_SixBit, block_layouts.h), eight rows per vector
// as above. Each sub-block's three 64-byte vectors give four runs of four
// 6-bit values per row: three by masking each vector, the fourth from the
// vectors' top bit pairs. The four runs' products add in 16 bits with the
// -32 bias (below), and one vpmaddwd with the rows' scales widens and scales
// them (the integer sums equal the AVX-512 kernel's on the other form).
void gemv_q6_k_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  const __m256i six = _mm256_set1_epi8(0x3F), top = _mm256_set1_epi8(static_cast<char>(0xC0));
  const int64_t n_blocks = n / kQ6_KElems;
  const int64_t group_bytes = n_blocks * kRows16Q6Bytes;
  // Per sub-block of 16 activations, the -32 of q - 32 as two 16-bit biases
  // (low and high half of a 32-bit lane, -32 times the sum of the eight
  // activations that half meets): a lane's four products q x then add up
  // in 16 bits, wrapping in between but exact at the end, since the final
  // sum of eight (q - 32) x is at most 8 * 32 * 127 in size.
  constexpr int64_t kSliceBlocks = 256;
  alignas(32) int32_t bias[kSliceBlocks * 16];
  for (int64_t b0 = 0; b0 < n_blocks; b0 += kSliceBlocks) {
    const int64_t nb = std::min(kSliceBlocks, n_blocks - b0);
    const int8_t* xq0 = x.qs + b0 * kQ6_KElems;
    for (int64_t i = 0; i < nb * 16; i += 2) {
      // Two sub-blocks at once: their activations' pair sums, then pairs 0, 2,
      // 4, 6 (the first two activations of each run of four) into the low
      // half of lane 0 and pairs 1, 3, 5, 7 into its high half (lane 4 for
      // the second sub-block).
      const __m128i v = load_16_bytes(reinterpret_cast<const uint8_t*>(xq0 + 16 * i));
      const __m128i w = load_16_bytes(reinterpret_cast<const uint8_t*>(xq0 + 16 * i + 16));
      const __m256i p = _mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_set_m128i(w, v));
      const __m256i t = _mm256_add_epi16(p, _mm256_shuffle_epi32(p, 0x4E));
      const __m256i u = _mm256_add_epi16(t, _mm256_shuffle_epi32(t, 0xB1));
      const __m256i scaled = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(u, 5));
      bias[i] = _mm256_extract_epi32(scaled, 0);
      bias[i + 1] = _mm256_extract_epi32(scaled, 4);
    }
    for (int64_t g = 0; g < n_groups; ++g) {
      const uint8_t* block = packed + g * group_bytes + b0 * kRows16Q6Bytes;
      __m256 acc[2];
      for (int h = 0; h < 2; ++h) acc[h] = b0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(y + kRows16 * g + 8 * h);
      for (int64_t b = 0; b < nb; ++b, block += kRows16Q6Bytes) {
        const uint8_t* xq = reinterpret_cast<const uint8_t*>(x.qs + kQ6_KElems * (b0 + b));
        prefetch_next_activations(xq + kQ6_KElems);
        __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int sb = 0; sb < 16; ++sb) {
          const uint8_t* v = block + kRows16Q6Qs + 192 * sb;
          const uint8_t* xs = xq + 16 * sb;
          const __m256i x0 = broadcast_u32(xs), x1 = broadcast_u32(xs + 4), x2 = broadcast_u32(xs + 8),
                        x3 = broadcast_u32(xs + 12);
          const __m256i start = _mm256_set1_epi32(bias[16 * b + sb]);
          // The 16 rows' signed 8-bit scales, each in both 16-bit halves of
          // its lane (rows 0-7, then 8-15).
          const __m128i sc = load_16_bytes(block + kRows16Q6Scales + 16 * sb);
          const __m256i scales[2] = {_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(sc, sc)),
                                     _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(sc, sc))};
          for (int h = 0; h < 2; ++h) {
            __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + 32 * h));
            __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + 64 + 32 * h));
            __m256i v2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + 128 + 32 * h));
            // Each read once (GCC folded each load into both of its ANDs;
            // no change in rate measured on the Zen 4 host, where the
            // vpmaddubsw steps bound this kernel).
            detail::keep_in_register(v0, v1, v2);
            const __m256i q0 = _mm256_and_si256(v0, six), q1 = _mm256_and_si256(v1, six),
                          q2 = _mm256_and_si256(v2, six);
            // The fourth run: bits 4-5 from v2's top pair, 2-3 from v1's,
            // 0-1 from v0's, gathered at 2-7 and shifted down (the 16-bit
            // shifts move only zeros across bytes).
            const __m256i gathered = _mm256_or_si256(
                _mm256_or_si256(_mm256_and_si256(v2, top), _mm256_srli_epi16(_mm256_and_si256(v1, top), 2)),
                _mm256_srli_epi16(_mm256_and_si256(v0, top), 4));
            const __m256i q3 = _mm256_srli_epi16(gathered, 2);
            // Each vpmaddubsw pair sum is at most 2 * 63 * 127 (no saturation).
            const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(q0, x0), _mm256_maddubs_epi16(q1, x1));
            const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(q2, x2), _mm256_maddubs_epi16(q3, x3));
            const __m256i sum = _mm256_add_epi16(_mm256_add_epi16(s01, s23), start);
            isum[h] = _mm256_add_epi32(isum[h], _mm256_madd_epi16(sum, scales[h]));
          }
        }
        const __m256 dx = _mm256_set1_ps(x.scales[8 * (b0 + b)]);
        for (int h = 0; h < 2; ++h) {
          const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * h)));
          acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[h]), _mm256_mul_ps(d, dx), acc[h]);
        }
      }
      for (int h = 0; h < 2; ++h) _mm256_storeu_ps(y + kRows16 * g + 8 * h, acc[h]);
    }
  }
}

// Q8_0 rows packed in groups of 16 (kRows16Q8Bytes per block of 32 columns,
// Rows16Layout::Q8_0, block_layouts.h), eight rows per 256-bit vector:
// vpmaddubsw takes |x| (broadcast, unsigned) against w with x's sign, so the
// activations' four values serve all 16 rows, and the packed matrix holds
// no -128 (whose sign cannot flip in a byte). Pair sums are at most
// 2 * 127 * 127, no saturation; vpmaddwd widens each step to 32 bits. Per 64
// bytes of weights 2 sign flips, 2 vpmaddubsw, 2 vpmaddwd and 2 adds, plus
// per block the 16 scales in two conversions: about half the operations of
// the stored rows' kernel below, and 1.9x its rate from L2.
void gemv_q8_0_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  const int64_t n_blocks = n / kRows16Q8Elems;
  const __m256i ones = _mm256_set1_epi16(1);
  // |x| once per call, in slices of columns so that it fits on the stack
  // (wide enough that the rows of every model here are one slice: each
  // further slice walks the groups again).
  constexpr int64_t kSliceCols = 16384;
  alignas(32) int8_t abs_x[kSliceCols];
  for (int64_t c0 = 0; c0 < n; c0 += kSliceCols) {
    const int64_t nc = std::min(kSliceCols, n - c0), b0 = c0 / kRows16Q8Elems, nb = nc / kRows16Q8Elems;
    for (int64_t i = 0; i < nc; i += 32)
      _mm256_store_si256(reinterpret_cast<__m256i*>(abs_x + i),
                         _mm256_abs_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + c0 + i))));
    const uint8_t* block = packed + b0 * kRows16Q8Bytes;
    for (int64_t g = 0; g < n_groups; ++g, block += (n_blocks - nb) * kRows16Q8Bytes) {
      __m256 acc0 = b0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(y + kRows16 * g);
      __m256 acc1 = b0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(y + kRows16 * g + 8);
      for (int64_t b = 0; b < nb; ++b, block += kRows16Q8Bytes) {
        const uint8_t* xs = reinterpret_cast<const uint8_t*>(x.qs) + c0 + kRows16Q8Elems * b;
        const uint8_t* as = reinterpret_cast<const uint8_t*>(abs_x) + kRows16Q8Elems * b;
        __m256i sum0 = _mm256_setzero_si256(), sum1 = sum0;
        for (int k = 0; k < 8; ++k) {
          const __m256i xb = broadcast_u32(xs + 4 * k), ab = broadcast_u32(as + 4 * k);
          const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kRows16Q8Qs + 64 * k));
          const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kRows16Q8Qs + 64 * k + 32));
          sum0 = _mm256_add_epi32(sum0, _mm256_madd_epi16(_mm256_maddubs_epi16(ab, _mm256_sign_epi8(w0, xb)), ones));
          sum1 = _mm256_add_epi32(sum1, _mm256_madd_epi16(_mm256_maddubs_epi16(ab, _mm256_sign_epi8(w1, xb)), ones));
        }
        const __m256 dx = _mm256_set1_ps(x.scales[b0 + b]);
        const __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)));
        const __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16)));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum0), _mm256_mul_ps(d0, dx), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum1), _mm256_mul_ps(d1, dx), acc1);
      }
      _mm256_storeu_ps(y + kRows16 * g, acc0);
      _mm256_storeu_ps(y + kRows16 * g + 8, acc1);
    }
  }
}

// Q4_0 rows packed in groups of 16 (kRows16Q4_0Bytes per block of 32
// columns, Rows16Layout::Q4_0, block_layouts.h), eight rows per vector as
// above: the nibbles (0..15) are vpmaddubsw's unsigned operand against four
// activations broadcast, low nibbles with values 4k.., high nibbles with
// 16 + 4k..; the block's four steps sum in 16 bits (at most 4 * 4 * 15 * 127),
// and the -8 comes off as 8 times the activations' block sum. Without a
// kernel of their own, one-token Q4_0 products went through prepared tiles
// at a tenth of this rate.
void gemv_q4_0_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  const int64_t n_blocks = n / kRows16Q4_0Elems;
  const __m256i ones = _mm256_set1_epi16(1), nibble = _mm256_set1_epi8(0x0F);
  const uint8_t* block = packed;
  for (int64_t g = 0; g < n_groups; ++g) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b, block += kRows16Q4_0Bytes) {
      const uint8_t* xs = reinterpret_cast<const uint8_t*>(x.qs) + kRows16Q4_0Elems * b;
      __m256i sum0 = _mm256_setzero_si256(), sum1 = sum0;
      for (int k = 0; k < 4; ++k) {
        const __m256i xl = broadcast_u32(xs + 4 * k), xh = broadcast_u32(xs + 16 + 4 * k);
        __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kRows16Q4_0Qs + 64 * k));
        __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kRows16Q4_0Qs + 64 * k + 32));
        // Each read once, not once per AND (4% faster from L2 on the Zen 4 host).
        detail::keep_in_register(w0, w1);
        sum0 = _mm256_add_epi16(
            sum0, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(w0, nibble), xl),
                                   _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w0, 4), nibble), xh)));
        sum1 = _mm256_add_epi16(
            sum1, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(w1, nibble), xl),
                                   _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w1, 4), nibble), xh)));
      }
      const __m256i offset = _mm256_set1_epi32(8 * x.sums[b]);
      const __m256 dx = _mm256_set1_ps(x.scales[b]);
      const __m256 d0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)));
      const __m256 d1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16)));
      acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_madd_epi16(sum0, ones), offset)),
                             _mm256_mul_ps(d0, dx), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_madd_epi16(sum1, ones), offset)),
                             _mm256_mul_ps(d1, dx), acc1);
    }
    _mm256_storeu_ps(y + kRows16 * g, acc0);
    _mm256_storeu_ps(y + kRows16 * g + 8, acc1);
  }
}

// Q8_0 rows as stored, four at a time (the activations' block is loaded once
// for the four): vpmaddubsw needs one unsigned operand, so |w| meets x with
// w's sign (x * sign(w)); pair sums are at most 2 * 128 * 127, no
// saturation. One float multiply-add per block with d_w * d_x.
void gemv_q8_0(const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const QRow& x, float* y) {
  const int64_t n_blocks = n / kQ8_0Elems;
  const __m256i ones = _mm256_set1_epi16(1);
  int64_t r = 0;
  auto block_sum = [&](const uint8_t* block, __m256i xq) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kQ8_0Qs));
    return _mm256_cvtepi32_ps(
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q)), ones));
  };
  // The four rows' bytes (contiguous when the rows are) are prefetched as
  // one region spread over the block steps: four rows ahead into L1, 32
  // rows ahead into L2. Stored rows sit in the mapped file's 4 KiB pages,
  // where the hardware prefetchers stop at every page boundary: without this
  // a Q8_0 model generates 2-2.5x slower on an AMD Zen 4 host.
  const int64_t step_bytes = 64 * ((4 * row_stride / 64 + n_blocks - 1) / n_blocks);
  const int64_t l1_ahead = 4 * row_stride, l2_ahead = 32 * row_stride;
  for (; r + 4 <= n_rows; r += 4) {
    const uint8_t* row = w + r * row_stride;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < n_blocks; ++b) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + kQ8_0Elems * b));
      const float dx = x.scales[b];
      // Bounded by a pointer, not a counter: with a counter GCC kept it on
      // the stack, a store-to-load chain in every step.
      const char* const step_end = reinterpret_cast<const char*>(row) + step_bytes * (b + 1);
      for (const char* line = step_end - step_bytes; line < step_end; line += 64) {
        _mm_prefetch(line + l1_ahead, _MM_HINT_T0);
        _mm_prefetch(line + l2_ahead, _MM_HINT_T2);
      }
      for (int i = 0; i < 4; ++i) {
        const uint8_t* block = row + i * row_stride + b * kQ8_0Bytes;
        acc[i] = _mm256_fmadd_ps(block_sum(block, xq), _mm256_set1_ps(half_at(block) * dx), acc[i]);
      }
    }
    for (int i = 0; i < 4; ++i) y[r + i] = hsum(acc[i]);
  }
  for (; r < n_rows; ++r) {
    const uint8_t* row = w + r * row_stride;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + kQ8_0Elems * b));
      const uint8_t* block = row + b * kQ8_0Bytes;
      acc = _mm256_fmadd_ps(block_sum(block, xq), _mm256_set1_ps(half_at(block) * x.scales[b]), acc);
    }
    y[r] = hsum(acc);
  }
}

// Stored Q4_K and Q6_K rows (no packed copy: --no-repack, or a matrix
// whose rows are not a multiple of 16), one row at a time. The rows sit in
// the mapped file's 4 KiB pages, so each block step prefetches the same
// block four rows ahead into L1 and 32 rows ahead into L2, as gemv_q8_0.
template <int lines>
inline void prefetch_rows_ahead(const uint8_t* block, int64_t row_stride) {
  for (int i = 0; i < lines; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(block + 4 * row_stride + 64 * i), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(block + 32 * row_stride + 64 * i), _MM_HINT_T2);
  }
}

// vpshufb mask that spreads 16-bit word `first` of the low 128-bit half
// over that half, and word `second` of the high half over it.
__m256i spread_words(int first, int second) {
  alignas(32) int8_t mask[32];
  for (int i = 0; i < 32; ++i) mask[i] = static_cast<int8_t>(2 * (i < 16 ? first : second) + i % 2);
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(mask));
}

// Q4_K: each 32-byte group of nibbles meets 64 activations in their natural
// order (low nibbles the first 32, high nibbles the next); the sub-block
// pair sums (at most 2 * 15 * 127) are scaled by their 6-bit scales in
// vpmaddwd, and the block takes one float step; the minimums are the
// sub-blocks' activation sums times their mins, eight 16-bit pairs.
void gemv_q4_k(const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const QRow& x, float* y) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  const int64_t n_blocks = n / kQ4_KElems;
  __m256i spread[8];
  for (int j = 0; j < 8; ++j) spread[j] = spread_words(j, j);
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* block = w + r * row_stride;
    __m256 acc = _mm256_setzero_ps();
    __m128 min_acc = _mm_setzero_ps();
    for (int64_t b = 0; b < n_blocks; ++b, block += kQ4_KBytes) {
      prefetch_rows_ahead<3>(block, row_stride);
      const int8_t* xq = x.qs + kQ4_KElems * b;
      alignas(16) uint8_t sc[16], mn[16];
      q4_k_scales_mins(block + kQ4_KScales, sc, mn);
      const __m256i scales =
          _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc))));
      __m256i isum = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        const __m256i v = load_32_bytes(block + kQ4_KQs + 32 * j);
        const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(v, low),
                                                load_32_bytes(reinterpret_cast<const uint8_t*>(xq + 64 * j)));
        const __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), low),
                                                load_32_bytes(reinterpret_cast<const uint8_t*>(xq + 64 * j + 32)));
        isum = _mm256_add_epi32(
            isum, _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_shuffle_epi8(scales, spread[2 * j])),
                                   _mm256_madd_epi16(hi, _mm256_shuffle_epi8(scales, spread[2 * j + 1]))));
      }
      const float dx = x.scales[8 * b];
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(half_at(block) * dx), acc);
      // |activation sum of 32| <= 32 * 127: the eight fit 16 bits.
      const __m128i sums = _mm_packs_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.sums + 8 * b)),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.sums + 8 * b + 4)));
      const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn)));
      min_acc = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(mins, sums)), _mm_set1_ps(half_at(block + kQ4_KDmin) * dx),
                             min_acc);
    }
    const __m128 m2 = _mm_add_ps(min_acc, _mm_movehl_ps(min_acc, min_acc));
    y[r] = hsum(acc) - _mm_cvtss_f32(_mm_add_ss(m2, _mm_movehdup_ps(m2)));
  }
}

// Q6_K: per half of a block, 32 bytes of low nibbles for values 0-31 and
// 64-95, 32 for 32-63 and 96-127, and 32 bytes of high pairs; q (0..63)
// meets the activations in their natural order (pair sums at most
// 2 * 63 * 127), each 16-value sub-block scaled by its signed 8-bit scale in
// vpmaddwd. q - 32: the block's sum of scale x (activations of the
// sub-block) times 32 comes off once per block.
void gemv_q6_k(const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const QRow& x, float* y) {
  const __m256i low = _mm256_set1_epi8(0x0F), high = _mm256_set1_epi8(0x30);
  const int64_t n_blocks = n / kQ6_KElems;
  __m256i spread[4];
  for (int k = 0; k < 4; ++k) spread[k] = spread_words(2 * k, 2 * k + 1);
  // The 16-value sub-blocks' activation sums (at most 16 * 127), per slice
  // of blocks: lane_bias holds -128 x the sum of each four.
  constexpr int64_t kSliceBlocks = 256;
  alignas(32) int16_t sub_sums[kSliceBlocks * 16];
  for (int64_t b0 = 0; b0 < n_blocks; b0 += kSliceBlocks) {
    const int64_t nb = std::min(kSliceBlocks, n_blocks - b0);
    const int32_t* lane_bias = x.lane_bias + b0 * kQ6_KElems / 4;
    for (int64_t i = 0; i < nb * 16; ++i)
      sub_sums[i] = static_cast<int16_t>(
          -(lane_bias[4 * i] + lane_bias[4 * i + 1] + lane_bias[4 * i + 2] + lane_bias[4 * i + 3]) / 128);
    for (int64_t r = 0; r < n_rows; ++r) {
      const uint8_t* block = w + r * row_stride + b0 * kQ6_KBytes;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t b = 0; b < nb; ++b, block += kQ6_KBytes) {
        prefetch_rows_ahead<4>(block, row_stride);
        const int8_t* xq = x.qs + kQ6_KElems * (b0 + b);
        const __m256i scales = _mm256_cvtepi8_epi16(load_16_bytes(block + kQ6_KScales));
        __m256i isum = _mm256_sub_epi32(
            _mm256_setzero_si256(),
            _mm256_slli_epi32(
                _mm256_madd_epi16(scales, _mm256_load_si256(reinterpret_cast<const __m256i*>(sub_sums + 16 * b))), 5));
        // Each half's eight scales in both 128-bit lanes.
        const __m256i halves_scales[2] = {_mm256_permute2x128_si256(scales, scales, 0x00),
                                          _mm256_permute2x128_si256(scales, scales, 0x11)};
        for (int half = 0; half < 2; ++half) {
          const __m256i half_scales = halves_scales[half];
          const __m256i low0 = load_32_bytes(block + 64 * half);
          const __m256i low1 = load_32_bytes(block + 64 * half + 32);
          const __m256i hi = load_32_bytes(block + kQ6_KQh + 32 * half);
          // (nibbles & 0x0F) | (high pair moved to bits 4-5 & 0x30); the
          // 16-bit shifts carry bits across bytes only where masked off.
          const __m256i q[4] = {
              _mm256_or_si256(_mm256_and_si256(low0, low), _mm256_and_si256(_mm256_slli_epi16(hi, 4), high)),
              _mm256_or_si256(_mm256_and_si256(low1, low), _mm256_and_si256(_mm256_slli_epi16(hi, 2), high)),
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(low0, 4), low), _mm256_and_si256(hi, high)),
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(low1, 4), low),
                              _mm256_and_si256(_mm256_srli_epi16(hi, 2), high))};
          for (int k = 0; k < 4; ++k) {
            const __m256i pairs =
                _mm256_maddubs_epi16(q[k], load_32_bytes(reinterpret_cast<const uint8_t*>(xq + 128 * half + 32 * k)));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(pairs, _mm256_shuffle_epi8(half_scales, spread[k])));
          }
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                              _mm256_set1_ps(half_at(block + kQ6_KD) * x.scales[8 * (b0 + b)]), acc);
      }
      y[r] = b0 == 0 ? hsum(acc) : y[r] + hsum(acc);
    }
  }
}

bool gemv_fast(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const QRow& x, float* y) {
  switch (type) {
    case DType::Q4_K:
      gemv_q4_k(w, row_stride, n_rows, n, x, y);
      return true;
    case DType::Q6_K:
      gemv_q6_k(w, row_stride, n_rows, n, x, y);
      return true;
    case DType::Q8_0:
      gemv_q8_0(w, row_stride, n_rows, n, x, y);
      return true;
    default:
      return false;
  }
}

// ----------------------------------------------------------------- attention

// e^x for x <= 0 (Cephes' expf); below -87 the result is tiny, not 0, so
// callers zero masked entries themselves.
__m256 exp_ps(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n));
}

// The KV cache's element types: F32, F16, or ggml's Q8_0 blocks (32 values
// and an fp16 scale, 34 bytes; rows of whole blocks).
enum class Kv { F32, F16, Q8 };

// Bytes of a cache row of `stride` values.
template <Kv F>
constexpr int64_t kv_row_bytes(int64_t stride) {
  return F == Kv::F32 ? 4 * stride : F == Kv::F16 ? 2 * stride : stride / 32 * 34;
}

// Values 8c .. 8c+7 of row j as floats (F32, F16; Q8 without its scale).
template <Kv F>
__m256 load_kv(const void* base, int64_t j, int64_t stride, int c) {
  const uint8_t* row = static_cast<const uint8_t*>(base) + j * kv_row_bytes<F>(stride);
  if constexpr (F == Kv::F16) {
    return _mm256_cvtph_ps(load_16_bytes(row + 16 * c));
  } else if constexpr (F == Kv::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + 8 * c);
  } else {
    const uint8_t* block = row + 34 * (c / 4);
    return _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 2 + 8 * (c % 4)))));
  }
}

// The scale of the Q8 block that holds value 8c of row j (1 for F32, F16).
template <Kv F>
float kv_scale(const void* base, int64_t j, int64_t stride, int c) {
  if constexpr (F == Kv::Q8) {
    return half_at(static_cast<const uint8_t*>(base) + j * kv_row_bytes<F>(stride) + 34 * (c / 4));
  } else {
    return 1.0f;
  }
}

__m128 reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

constexpr int kKeyBlock = 64;
constexpr int kRowGroup = 4;

struct RowState {
  const float* q;
  float* out;
  float* o;
  int n_keys;
  float max, sum;
};

// Requests key / value row j (head_dim values) ahead of its use. The cache
// of a long context streams from memory every token, and its rows, read in
// blocks of keys, did not keep enough reads in flight by themselves: a cold
// 4096-position head took twice as long as a cached one. The callers ask
// for the next phase's rows (a block's V rows during its scores, the next
// block's K rows during its values) into L2: into L1 they evicted the
// rows in use.
template <Kv F, int kHint = _MM_HINT_T0>
void prefetch_kv_row(const void* base, int64_t j, int64_t stride, int head_dim) {
  const char* row = static_cast<const char*>(base) + j * kv_row_bytes<F>(stride);
  const auto bytes = static_cast<int>(kv_row_bytes<F>(head_dim));
  // Q8 rows (136 bytes for 128 values) need not start on a line.
  for (int at = 0; at < bytes; at += 64) _mm_prefetch(row + at, static_cast<_mm_hint>(kHint));
  if constexpr (F == Kv::Q8) _mm_prefetch(row + bytes - 1, static_cast<_mm_hint>(kHint));
}

// Scores of NK keys from `key` on for two query rows: s0[k] = q0 . key k,
// s1[k] = q1 . key k (unscaled).
template <Kv F, int NK>
inline void score_pair(const AttentionArgs& a, const float* q0, const float* q1, int64_t key, int chunks, float* s0,
                       float* s1) {
  __m256 acc0[4], acc1[4];
  for (int k = 0; k < 4; ++k) acc0[k] = acc1[k] = _mm256_setzero_ps();
  for (int c = 0; c < chunks; ++c) {
    const __m256 x0 = _mm256_loadu_ps(q0 + 8 * c), x1 = _mm256_loadu_ps(q1 + 8 * c);
    GLASSBOX_UNROLL for (int k = 0; k < NK; ++k) {
      const __m256 kv = load_kv<F>(a.k, key + k, a.kv_stride, c);
      acc0[k] = _mm256_fmadd_ps(x0, kv, acc0[k]);
      acc1[k] = _mm256_fmadd_ps(x1, kv, acc1[k]);
    }
  }
  if constexpr (NK == 4) {
    _mm_storeu_ps(s0, reduce4(acc0[0], acc0[1], acc0[2], acc0[3]));
    _mm_storeu_ps(s1, reduce4(acc1[0], acc1[1], acc1[2], acc1[3]));
  } else {
    *s0 = hsum(acc0[0]);
    *s1 = hsum(acc1[0]);
  }
}

// A query row quantized for a Q8 cache: 8-bit values and a scale per block
// of 32 (quantize_q8_0_row's rounding).
struct QuantizedQuery {
  const int8_t* qs;
  const float* scales;
};

// score_pair for a Q8 cache: per block of 32, the integer sum of the
// quantized query with the key (vpmaddubsw takes |key| with the query's
// signs flipped where the key is negative; pair sums at most 2 * 127 * 128)
// times both scales.
template <int NK>
inline void score_pair_q8(const AttentionArgs& a, QuantizedQuery q0, QuantizedQuery q1, int64_t key, int blocks,
                          float* s0, float* s1) {
  const int64_t row_bytes = kv_row_bytes<Kv::Q8>(a.kv_stride);
  const auto* base = static_cast<const uint8_t*>(a.k) + key * row_bytes;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc0[4], acc1[4];
  for (int k = 0; k < 4; ++k) acc0[k] = acc1[k] = _mm256_setzero_ps();
  for (int b = 0; b < blocks; ++b) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q0.qs + 32 * b));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q1.qs + 32 * b));
    const __m256 d0 = _mm256_set1_ps(q0.scales[b]), d1 = _mm256_set1_ps(q1.scales[b]);
    GLASSBOX_UNROLL for (int k = 0; k < NK; ++k) {
      const uint8_t* block = base + k * row_bytes + 34 * b;
      const __m256i kq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
      const __m256i magnitude = _mm256_sign_epi8(kq, kq);
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(x0, kq)), ones);
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(x1, kq)), ones);
      const __m256 dk = _mm256_set1_ps(half_at(block));
      acc0[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_mul_ps(dk, d0), acc0[k]);
      acc1[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_mul_ps(dk, d1), acc1[k]);
    }
  }
  if constexpr (NK == 4) {
    _mm_storeu_ps(s0, reduce4(acc0[0], acc0[1], acc0[2], acc0[3]));
    _mm_storeu_ps(s1, reduce4(acc1[0], acc1[1], acc1[2], acc1[3]));
  } else {
    *s0 = hsum(acc0[0]);
    *s1 = hsum(acc1[0]);
  }
}

// Values 8 c0 .. 8 (c0 + C) - 1 (within one Q8 block: c0 is a multiple of
// 4) of the block's rows, weighted by their probabilities, into the rows'
// running outputs, two rows per load of a value.
template <Kv F, int C>
void accumulate_values(const AttentionArgs& a, RowState* rows, int n_rows, const float* probs, int j0, int nj, int c0,
                       int prefetch_to) {
  for (int r = 0; r < n_rows; r += 2) {
    const int pair = std::min(2, n_rows - r);
    __m256 o[2][C];
    for (int i = 0; i < 2; ++i)
      for (int c = 0; c < C; ++c)
        o[i][c] = i < pair ? _mm256_loadu_ps(rows[r + i].o + 8 * (c0 + c)) : _mm256_setzero_ps();
    for (int j = 0; j < nj; ++j) {
      if (r == 0 && c0 == 0 && prefetch_to > j0 + kKeyBlock + j)
        prefetch_kv_row<F, _MM_HINT_T1>(a.k, j0 + kKeyBlock + j, a.kv_stride, a.head_dim);
      const float d = kv_scale<F>(a.v, j0 + j, a.kv_stride, c0);
      const __m256 p0 = _mm256_set1_ps(probs[r * kKeyBlock + j] * d);
      const __m256 p1 = _mm256_set1_ps(pair > 1 ? probs[(r + 1) * kKeyBlock + j] * d : 0.0f);
      for (int c = 0; c < C; ++c) {
        const __m256 v = load_kv<F>(a.v, j0 + j, a.kv_stride, c0 + c);
        o[0][c] = _mm256_fmadd_ps(p0, v, o[0][c]);
        o[1][c] = _mm256_fmadd_ps(p1, v, o[1][c]);
      }
    }
    for (int i = 0; i < pair; ++i)
      for (int c = 0; c < C; ++c) _mm256_storeu_ps(rows[r + i].o + 8 * (c0 + c), o[i][c]);
  }
}

template <Kv F>
void attention_impl(const AttentionArgs& a, AttentionScratch& scratch) {
  const int hd = a.head_dim;
  const int chunks = hd / 8;
  // Running outputs and scores (+ a spare row of scores); for a Q8 cache the
  // rows' quantized queries too (hd bytes and hd / 32 scales per row).
  const size_t q8_floats = F == Kv::Q8 ? static_cast<size_t>(kRowGroup) * (hd / 4 + hd / 32) : 0;
  const size_t need = static_cast<size_t>(kRowGroup) * (hd + kKeyBlock) + kKeyBlock + q8_floats;
  if (scratch.buf.size() < need) scratch.buf.resize(need);
  float* o_buf = scratch.buf.data();
  float* probs = o_buf + kRowGroup * hd;
  float* q_scales = probs + (kRowGroup + 1) * kKeyBlock;
  auto* q_qs = reinterpret_cast<int8_t*>(q_scales + kRowGroup * (hd / 32));
  QuantizedQuery quantized[kRowGroup];
  const int n_rows_total = a.n_tokens * a.n_heads;
  for (int g = 0; g < n_rows_total; g += kRowGroup) {
    const int n_rows = std::min(kRowGroup, n_rows_total - g);
    RowState rows[kRowGroup];
    int max_keys = 0;
    for (int i = 0; i < n_rows; ++i) {
      const int t = (g + i) / a.n_heads, h = (g + i) % a.n_heads;
      rows[i] = {a.q + t * a.q_token_stride + h * a.q_head_stride,
                 a.out + t * a.out_token_stride + h * a.out_head_stride,
                 o_buf + i * hd,
                 a.n_past + t + 1,
                 -INFINITY,
                 0.0f};
      std::fill(rows[i].o, rows[i].o + hd, 0.0f);
      max_keys = std::max(max_keys, rows[i].n_keys);
      if constexpr (F == Kv::Q8) {
        quantized[i] = {q_qs + i * hd, q_scales + i * (hd / 32)};
        detail::reference::quantize_q8_32(rows[i].q, hd, q_qs + i * hd, q_scales + i * (hd / 32));
      }
    }
    for (int j0 = 0; j0 < max_keys; j0 += kKeyBlock) {
      const int nj = std::min(kKeyBlock, max_keys - j0);
      for (int j = 0; j < nj; j += 4) {
        const int nk = std::min(4, nj - j);
        for (int k = 0; k < nk; ++k) prefetch_kv_row<F, _MM_HINT_T1>(a.v, j0 + j + k, a.kv_stride, hd);
        // Two rows (query heads) at a time: each key chunk is loaded (and
        // converted from F16) once for both. An odd last row is scored
        // twice, into the spare row of `probs`.
        for (int i = 0; i < n_rows; i += 2) {
          const bool pair = i + 1 < n_rows;
          const float* q1 = pair ? rows[i + 1].q : rows[i].q;
          float* s1 = probs + (pair ? i + 1 : kRowGroup) * kKeyBlock + j;
          if constexpr (F == Kv::Q8) {
            const QuantizedQuery x0 = quantized[i], x1 = quantized[pair ? i + 1 : i];
            if (nk == 4) {
              score_pair_q8<4>(a, x0, x1, j0 + j, hd / 32, probs + i * kKeyBlock + j, s1);
            } else {
              for (int k = 0; k < nk; ++k)
                score_pair_q8<1>(a, x0, x1, j0 + j + k, hd / 32, probs + i * kKeyBlock + j + k, s1 + k);
            }
          } else if (nk == 4) {
            score_pair<F, 4>(a, rows[i].q, q1, j0 + j, chunks, probs + i * kKeyBlock + j, s1);
          } else {
            for (int k = 0; k < nk; ++k)
              score_pair<F, 1>(a, rows[i].q, q1, j0 + j + k, chunks, probs + i * kKeyBlock + j + k, s1 + k);
          }
        }
      }
      for (int i = 0; i < n_rows; ++i) {
        RowState& row = rows[i];
        float* s = probs + i * kKeyBlock;
        const int visible = std::clamp(row.n_keys - j0, 0, nj);
        // Scaled scores and their maximum, eight at a time (lanes past the
        // visible keys are left out of the maximum and zeroed below).
        __m256 lane_max = _mm256_set1_ps(-INFINITY);
        for (int j = 0; j < visible; j += 8) {
          const __m256 scaled = _mm256_mul_ps(_mm256_loadu_ps(s + j), _mm256_set1_ps(a.scale));
          _mm256_storeu_ps(s + j, scaled);
          lane_max = _mm256_blendv_ps(lane_max, _mm256_max_ps(lane_max, scaled),
                                      _mm256_castsi256_ps(first_lanes(std::min(8, visible - j))));
        }
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, lane_max);
        float block_max = -INFINITY;
        for (float m : lanes) block_max = std::max(block_max, m);
        const float new_max = std::max(row.max, block_max);
        const float alpha = row.max == -INFINITY ? 0.0f : _mm256_cvtss_f32(exp_ps(_mm256_set1_ps(row.max - new_max)));
        __m256 sum = _mm256_setzero_ps();
        for (int j = 0; j < nj; j += 8) {
          const __m256i keep = first_lanes(std::max(0, std::min(8, visible - j)));
          __m256 p = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(s + j), _mm256_set1_ps(new_max)));
          p = _mm256_and_ps(p, _mm256_castsi256_ps(keep));
          _mm256_storeu_ps(s + j, p);
          sum = _mm256_add_ps(sum, p);
        }
        row.sum = row.sum * alpha + hsum(sum);
        row.max = new_max;
        if (alpha != 1.0f) {
          for (int c = 0; c < chunks; ++c)
            _mm256_storeu_ps(row.o + 8 * c, _mm256_mul_ps(_mm256_loadu_ps(row.o + 8 * c), _mm256_set1_ps(alpha)));
        }
      }
      for (int c0 = 0; c0 < chunks; c0 += 4) {
        switch (std::min(4, chunks - c0)) {
          case 4:
            accumulate_values<F, 4>(a, rows, n_rows, probs, j0, nj, c0, max_keys);
            break;
          case 3:
            accumulate_values<F, 3>(a, rows, n_rows, probs, j0, nj, c0, max_keys);
            break;
          case 2:
            accumulate_values<F, 2>(a, rows, n_rows, probs, j0, nj, c0, max_keys);
            break;
          default:
            accumulate_values<F, 1>(a, rows, n_rows, probs, j0, nj, c0, max_keys);
            break;
        }
      }
    }
    for (int i = 0; i < n_rows; ++i) {
      const __m256 inv = _mm256_set1_ps(1.0f / rows[i].sum);
      for (int c = 0; c < chunks; ++c)
        _mm256_storeu_ps(rows[i].out + 8 * c, _mm256_mul_ps(_mm256_loadu_ps(rows[i].o + 8 * c), inv));
    }
  }
}

void attention_avx2(const AttentionArgs& a, AttentionScratch& scratch) {
  // The kernel works in whole vectors of 8 values.
  if (a.head_dim % 8 != 0) return detail::reference::attention(a, scratch);
  switch (a.kv_type) {
    case DType::F16:
      return attention_impl<Kv::F16>(a, scratch);
    case DType::Q8_0:
      return attention_impl<Kv::Q8>(a, scratch);
    default:
      return attention_impl<Kv::F32>(a, scratch);
  }
}

void silu_mul_avx2(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    const __m256 e = exp_ps(_mm256_min_ps(x, _mm256_sub_ps(zero, x)));
    const __m256 negative = _mm256_cmp_ps(x, zero, _CMP_LT_OQ);
    const __m256 num = _mm256_blendv_ps(x, _mm256_mul_ps(x, e), negative);
    const __m256 s = _mm256_div_ps(num, _mm256_add_ps(one, e));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// Squares summed in double, four lanes per vector, in two chains.
void rms_norm_avx2(const float* x, const float* w, float* out, int64_t n, float eps) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    s0 = _mm256_fmadd_pd(lo, lo, s0);
    s1 = _mm256_fmadd_pd(hi, hi, s1);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(s0, s1));
  double ss = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (int64_t j = i; j < n; ++j) ss += static_cast<double>(x[j]) * x[j];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  const __m256 vs = _mm256_set1_ps(scale);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
  for (; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void f32_to_f16_avx2(const float* x, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) out[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

void f16_to_f32_avx2(const uint16_t* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) out[i] = _cvtsh_ss(x[i]);
}

}  // namespace

namespace detail::avx2 {

namespace {
double sum_as_double(__m256 v) {
  const __m256d d =
      _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}
}  // namespace

// Pass 1: the maximum and whether some entry is NaN or +inf (not less than
// +inf), four vectors at a time. Pass 2: the sums in float lanes over blocks
// of 1024 entries, the blocks added in double; e^(x - m) by the attention's
// exp_ps, zeroed below -87 (where exp_ps stops).
void attention(const AttentionArgs& args, AttentionScratch& scratch) { attention_avx2(args, scratch); }
float dot(DType type, const uint8_t* row, const float* x, int64_t n) { return dot_avx2(type, row, x, n); }
void gemv_q8_0_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  glassbox::kernels::gemv_q8_0_rows16(packed, n_groups, n, x, y);
}
void gemv_long_rows(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const float* x,
                    float* y) {
  gemv_long_rows_avx2(type, w, row_stride, n_rows, n, x, y);
}

SoftmaxSums softmax_sums(const float* x, int64_t n) {
  SoftmaxSums r;
  const __m256 inf = _mm256_set1_ps(INFINITY);
  __m256 lane_max[4], bad = _mm256_setzero_ps();
  for (__m256& m : lane_max) m = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int j = 0; j < 4; ++j) {
      const __m256 v = _mm256_loadu_ps(x + i + 8 * j);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, inf, _CMP_NLT_UQ));
      lane_max[j] = _mm256_max_ps(lane_max[j], v);
    }
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes,
                  _mm256_max_ps(_mm256_max_ps(lane_max[0], lane_max[1]), _mm256_max_ps(lane_max[2], lane_max[3])));
  float m = -INFINITY;
  for (float v : lanes) m = std::max(m, v);
  bool finite = _mm256_movemask_ps(bad) == 0;
  for (; i < n; ++i) {
    finite = finite && x[i] < INFINITY;
    m = std::max(m, x[i]);
  }
  r.max = m;
  r.finite = finite;
  if (!finite || m == -INFINITY) return r;

  const __m256 vm = _mm256_set1_ps(m), floor = _mm256_set1_ps(-87.0f);
  auto term = [&](const float* p, __m256& sum, __m256& weighted) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(p), vm);
    const __m256 clamped = _mm256_max_ps(d, floor);  // -inf (masked) too
    const __m256 e = _mm256_and_ps(exp_ps(clamped), _mm256_cmp_ps(d, floor, _CMP_GE_OQ));
    sum = _mm256_add_ps(sum, e);
    weighted = _mm256_fmadd_ps(e, clamped, weighted);
  };
  i = 0;
  while (i + 16 <= n) {
    __m256 sum[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256 weighted[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    const int64_t block_end = std::min(n, i + 1024);
    for (; i + 16 <= block_end; i += 16) {
      term(x + i, sum[0], weighted[0]);
      term(x + i + 8, sum[1], weighted[1]);
    }
    r.sum += sum_as_double(_mm256_add_ps(sum[0], sum[1]));
    r.weighted += sum_as_double(_mm256_add_ps(weighted[0], weighted[1]));
  }
  for (; i < n; ++i) {
    const float d = x[i] - m;
    if (!(d >= -87.0f)) continue;
    const double e = std::exp(static_cast<double>(d));
    r.sum += e;
    r.weighted += e * d;
  }
  return r;
}

// 32 entries per step; a step with a hit hands over to the plain loop,
// which finds it within those 32.
int64_t find_above(const float* x, int64_t from, int64_t n, float threshold) {
  const __m256 t = _mm256_set1_ps(threshold);
  int64_t i = from;
  for (; i + 32 <= n; i += 32) {
    const __m256 a = _mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), t, _CMP_GT_OQ),
                                  _mm256_cmp_ps(_mm256_loadu_ps(x + i + 8), t, _CMP_GT_OQ));
    const __m256 b = _mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 16), t, _CMP_GT_OQ),
                                  _mm256_cmp_ps(_mm256_loadu_ps(x + i + 24), t, _CMP_GT_OQ));
    if (_mm256_movemask_ps(_mm256_or_ps(a, b)) != 0) break;
  }
  for (; i < n; ++i) {
    if (x[i] > threshold) return i;
  }
  return n;
}

}  // namespace detail::avx2

namespace detail {
constexpr IsaKernels kAvx2Kernels = {
    "avx2",
    dequantize_row_avx2,
    dot_avx2,
    gemv_long_rows_avx2,
    gemm_f32_avx2,
    gemm_f32_panels_avx2,
    kAvx2F32TileTypes,
    quantize_acts_fast,
    nullptr,  // lane_layout: the AVX2 tiles read no lane-major copy
    prepare_tile_fast,
    gemm_tile_fast,
    gemv_fast,
    attention_avx2,
    silu_mul_avx2,
    f32_to_f16_avx2,
    f16_to_f32_avx2,
    gemv_q4_k_rows16,
    reference::gemv_q4_k_quads,  // not measured on AVX2: long rows stay in the Q4_K form
    gemv_q6_k_rows16,
    reference::gemv_q6_k_quads,  // not measured on AVX2, as the Q4_K quads
    gemv_q8_0_rows16,
    gemv_q4_0_rows16,
    rms_norm_avx2,
    avx2::softmax_sums,
    avx2::find_above};
}  // namespace detail

}  // namespace glassbox::kernels
