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
    default: return;
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
    case DType::F32: return dot_f32(row, x, n);
    case DType::F16: return dot_16bit<f16x8_at, half_at>(row, x, n);
    case DType::BF16: return dot_16bit<bf16x8_at, bf16_at>(row, x, n);
    case DType::Q4_0: return dot_32_block<q4_0_values, kQ4_0Bytes>(row, x, n);
    case DType::Q5_0: return dot_32_block<q5_0_values, kQ5_0Bytes>(row, x, n);
    case DType::Q8_0: return dot_32_block<q8_0_values, kQ8_0Bytes>(row, x, n);
    case DType::Q4_K: return dot_q4_k(row, x, n);
    case DType::Q6_K: return dot_q6_k(row, x, n);
    default: return 0.0f;
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
    case 2: gemm_rows<2>(W, ldw, n_rows, X + t * ldx, ldx, n, Y + t * ldy, ldy); break;
    case 1: gemm_rows<1>(W, ldw, n_rows, X + t * ldx, ldx, n, Y + t * ldy, ldy); break;
    default: break;
  }
}

}  // namespace

namespace detail {
constexpr IsaKernels kAvx2Kernels = {"avx2", dequantize_row_avx2, dot_avx2, gemm_f32_avx2};
}  // namespace detail

}  // namespace glassbox::kernels
