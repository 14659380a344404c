// AVX-512 (F, BW, VL, DQ) kernels, 16 floats per vector. Compiled with the
// matching -m flags (see CMakeLists.txt) and run only after the dispatcher
// has checked the CPU. Everything has internal linkage so no AVX-512 code can
// leak into other paths through a shared inline function.
//
// Same contract as the AVX2 file: dequantization is bit-identical to the
// scalar reference (no contraction, -ffp-contract=off); dot products rebuild
// weights in registers and accumulate with FMA in several lanes.
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves
// (`__m512 __Y = __Y;`), which trips -Wuninitialized once inlined (GCC bug
// 105593). The warning points into the header, so silencing it for the
// include leaves this file's own code checked.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "kernels/block_layouts.h"
#include "kernels/kernels_internal.h"

namespace glassbox::kernels {
namespace {

using namespace layout;

float half_at(const uint8_t* p) { return _cvtsh_ss(load_u16(p)); }

__m128i load_16_bytes(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
__m256i load_32_bytes(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

__m512 s8_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }
__m512 u8_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }

__m512 f16x16(__m256i halves) { return _mm512_cvtph_ps(halves); }
__m512 bf16x16(__m256i halves) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16)); }

// Mask of the first `count` (< 16) lanes, for masked tail loads (which do not
// touch memory in the masked-off lanes).
__mmask16 first_lanes(int64_t count) { return static_cast<__mmask16>((1u << count) - 1); }

void split_nibbles(__m128i v, __m128i* low, __m128i* high) {
  const __m128i m4 = _mm_set1_epi8(0x0F);
  *low = _mm_and_si128(v, m4);
  *high = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
}

// The 32 integer values of a block as two vectors of 16 floats
// (elements 0..15 and 16..31).
void q4_0_values(const uint8_t* block, __m512 out[2]) {
  __m128i low, high;
  split_nibbles(load_16_bytes(block + kQ4_0Qs), &low, &high);
  const __m128i eight = _mm_set1_epi8(8);
  out[0] = s8_to_ps(_mm_sub_epi8(low, eight));
  out[1] = s8_to_ps(_mm_sub_epi8(high, eight));
}

// Q5_0: bit j of qh is the fifth bit of element j; the 16-bit halves of qh
// serve directly as lane masks.
void q5_0_values(const uint8_t* block, __m512 out[2]) {
  const uint32_t qh = load_u32(block + kQ5_0Qh);
  __m128i low, high;
  split_nibbles(load_16_bytes(block + kQ5_0Qs), &low, &high);
  const __m512i sixteen = _mm512_set1_epi32(16);
  const __m512i q_low = _mm512_cvtepu8_epi32(low);
  const __m512i q_high = _mm512_cvtepu8_epi32(high);
  const __m512i with_bit_low = _mm512_mask_or_epi32(q_low, static_cast<__mmask16>(qh & 0xFFFF), q_low, sixteen);
  const __m512i with_bit_high = _mm512_mask_or_epi32(q_high, static_cast<__mmask16>(qh >> 16), q_high, sixteen);
  out[0] = _mm512_cvtepi32_ps(_mm512_sub_epi32(with_bit_low, sixteen));
  out[1] = _mm512_cvtepi32_ps(_mm512_sub_epi32(with_bit_high, sixteen));
}

void q8_0_values(const uint8_t* block, __m512 out[2]) {
  out[0] = s8_to_ps(load_16_bytes(block + kQ8_0Qs));
  out[1] = s8_to_ps(load_16_bytes(block + kQ8_0Qs + 16));
}

// One Q6_K half (128 elements) as four vectors of 32 signed bytes (q - 32);
// vector k holds elements 32k..32k+31, i.e. sub-blocks 2k and 2k+1.
void q6_k_half_values(const uint8_t* ql, const uint8_t* qh, __m256i q[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(3);
  const __m256i ql0 = load_32_bytes(ql);
  const __m256i ql1 = load_32_bytes(ql + 32);
  const __m256i high = load_32_bytes(qh);
  // 16-bit shifts are safe: each byte is masked after shifting and the bits
  // kept come from the same byte.
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

void dequantize_row_avx512(DType type, const uint8_t* src, float* dst, int64_t n) {
  switch (type) {
    case DType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
    case DType::BF16: {
      const bool is_f16 = type == DType::F16;
      for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 mask = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(n - i);
        const __m256i halves = _mm256_maskz_loadu_epi16(mask, src + 2 * i);
        _mm512_mask_storeu_ps(dst + i, mask, is_f16 ? f16x16(halves) : bf16x16(halves));
      }
      return;
    }
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0: {
      const int64_t block_bytes = type == DType::Q4_0 ? kQ4_0Bytes : type == DType::Q5_0 ? kQ5_0Bytes : kQ8_0Bytes;
      for (int64_t b = 0; b < n / 32; ++b, src += block_bytes, dst += 32) {
        __m512 q[2];
        if (type == DType::Q4_0) {
          q4_0_values(src, q);
        } else if (type == DType::Q5_0) {
          q5_0_values(src, q);
        } else {
          q8_0_values(src, q);
        }
        const __m512 d = _mm512_set1_ps(half_at(src));
        _mm512_storeu_ps(dst, _mm512_mul_ps(q[0], d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(q[1], d));
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
            const __m512 scale = _mm512_set1_ps(scales[2 * pair + h]);
            const __m512 min = _mm512_set1_ps(mins[2 * pair + h]);
            float* out = dst + 64 * pair + 32 * h;
            const __m512 q0 = u8_to_ps(_mm256_castsi256_si128(nibbles[h]));
            const __m512 q1 = u8_to_ps(_mm256_extracti128_si256(nibbles[h], 1));
            _mm512_storeu_ps(out, _mm512_sub_ps(_mm512_mul_ps(scale, q0), min));
            _mm512_storeu_ps(out + 16, _mm512_sub_ps(_mm512_mul_ps(scale, q1), min));
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
            float* out = dst + 128 * half + 32 * k;
            const __m512 scale_lo = _mm512_set1_ps(half_scales[2 * k]);
            const __m512 scale_hi = _mm512_set1_ps(half_scales[2 * k + 1]);
            _mm512_storeu_ps(out, _mm512_mul_ps(scale_lo, s8_to_ps(_mm256_castsi256_si128(q[k]))));
            _mm512_storeu_ps(out + 16, _mm512_mul_ps(scale_hi, s8_to_ps(_mm256_extracti128_si256(q[k], 1))));
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
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int u = 0; u < 4; ++u) {
      acc[u] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16 * u), _mm512_loadu_ps(x + i + 16 * u), acc[u]);
    }
  }
  for (; i + 16 <= n; i += 16) acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc[0]);
  if (i < n) {
    const __mmask16 mask = first_lanes(n - i);
    acc[1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, w + i), _mm512_maskz_loadu_ps(mask, x + i), acc[1]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

// Q4_0, Q5_0, Q8_0: one scale per 32 elements, applied once per block.
template <void (*Values)(const uint8_t*, __m512*), int64_t kBlockBytes>
float dot_32_block(const uint8_t* row, const float* x, int64_t n) {
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  const int64_t n_blocks = n / 32;
  for (int64_t b = 0; b < n_blocks; ++b, row += kBlockBytes, x += 32) {
    __m512 q[2];
    Values(row, q);
    const __m512 sum = _mm512_fmadd_ps(q[1], _mm512_loadu_ps(x + 16), _mm512_mul_ps(q[0], _mm512_loadu_ps(x)));
    acc[b & 1] = _mm512_fmadd_ps(_mm512_set1_ps(half_at(row)), sum, acc[b & 1]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
}

float dot_q4_k(const uint8_t* row, const float* x, int64_t n) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  // Four independent accumulators keep the FMA latency chains short.
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQ4_KElems; ++b, row += kQ4_KBytes, x += kQ4_KElems) {
    float scales[8], mins[8];
    q4_k_block_scales(row, scales, mins);
    for (int pair = 0; pair < 4; ++pair) {
      const __m256i v = load_32_bytes(row + kQ4_KQs + 32 * pair);
      const __m256i nibbles[2] = {_mm256_and_si256(v, m4), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)};
      for (int h = 0; h < 2; ++h) {
        const __m512 scale = _mm512_set1_ps(scales[2 * pair + h]);
        const __m512 min = _mm512_set1_ps(mins[2 * pair + h]);
        const float* xs = x + 64 * pair + 32 * h;
        const __m512 w0 = _mm512_fmsub_ps(scale, u8_to_ps(_mm256_castsi256_si128(nibbles[h])), min);
        const __m512 w1 = _mm512_fmsub_ps(scale, u8_to_ps(_mm256_extracti128_si256(nibbles[h], 1)), min);
        acc[2 * h] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xs), acc[2 * h]);
        acc[2 * h + 1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xs + 16), acc[2 * h + 1]);
      }
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

// Q6_K: each 16-lane vector is exactly one sub-block, so its integer values
// are dotted with x and scaled once.
float dot_q6_k(const uint8_t* row, const float* x, int64_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n / kQ6_KElems; ++b, row += kQ6_KBytes, x += kQ6_KElems) {
    float scales[16];
    q6_k_block_scales(row, scales);
    for (int half = 0; half < 2; ++half) {
      __m256i q[4];
      q6_k_half_values(row + 64 * half, row + kQ6_KQh + 32 * half, q);
      const float* half_scales = scales + 8 * half;
      for (int k = 0; k < 4; ++k) {
        const float* xs = x + 128 * half + 32 * k;
        const __m512 p0 = _mm512_mul_ps(s8_to_ps(_mm256_castsi256_si128(q[k])), _mm512_loadu_ps(xs));
        const __m512 p1 = _mm512_mul_ps(s8_to_ps(_mm256_extracti128_si256(q[k], 1)), _mm512_loadu_ps(xs + 16));
        __m512& acc0 = acc[2 * (k & 1)];
        __m512& acc1 = acc[2 * (k & 1) + 1];
        acc0 = _mm512_fmadd_ps(_mm512_set1_ps(half_scales[2 * k]), p0, acc0);
        acc1 = _mm512_fmadd_ps(_mm512_set1_ps(half_scales[2 * k + 1]), p1, acc1);
      }
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

float dot_avx512(DType type, const uint8_t* row, const float* x, int64_t n) {
  switch (type) {
    case DType::F32:
      return dot_f32(row, x, n);
    case DType::F16:
    case DType::BF16:
      // 256-bit conversions: on an AMD Zen 4 core, 512-bit vcvtph2ps from
      // memory streamed F16 rows far slower (qwen3-0.6b F16 tg64 29 t/s
      // against 38; bench/README.md).
      return detail::avx2::dot(type, row, x, n);
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

// The tile is transposed to k-major order (32 rows of one k side by side),
// so that each weight vector holds 16 rows: a broadcast activation times it
// updates 16 (row, token) sums at once, and no horizontal reduction is
// needed. Each sum runs over k in one lane, in blocks of 256 added into a
// running total (bounding the rounding of long rows).
constexpr int kKRows = 32;
constexpr int kKBlock = 256;

// In-register transpose of a 16 x 16 block of floats.
void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

// Wt[k][0..31] = W[0..31][k] (rows beyond n_rows are zeros).
void transpose_tile(const float* W, int64_t ldw, int n_rows, int64_t n, float* Wt) {
  for (int64_t k0 = 0; k0 < n; k0 += 16) {
    const int nk = static_cast<int>(std::min<int64_t>(16, n - k0));
    const __mmask16 mask = nk == 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(nk);
    for (int h = 0; h < 2; ++h) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) {
        const int row = 16 * h + i;
        r[i] = row < n_rows ? _mm512_maskz_loadu_ps(mask, W + row * ldw + k0) : _mm512_setzero_ps();
      }
      transpose16(r);
      for (int i = 0; i < nk; ++i) _mm512_storeu_ps(Wt + (k0 + i) * kKRows + 16 * h, r[i]);
    }
  }
}

template <int T>
void kmajor_block(const float* Wt, int64_t n, const float* X, int64_t ldx, float* Y, int64_t ldy, int n_rows) {
  float total[2][T][16] = {};
  for (int64_t kb = 0; kb < n; kb += kKBlock) {
    __m512 acc[2][T];
    for (int t = 0; t < T; ++t) acc[0][t] = acc[1][t] = _mm512_setzero_ps();
    const int64_t kend = std::min<int64_t>(n, kb + kKBlock);
    for (int64_t k = kb; k < kend; ++k) {
      const __m512 w0 = _mm512_loadu_ps(Wt + k * kKRows);
      const __m512 w1 = _mm512_loadu_ps(Wt + k * kKRows + 16);
      for (int t = 0; t < T; ++t) {
        const __m512 xb = _mm512_set1_ps(X[t * ldx + k]);
        acc[0][t] = _mm512_fmadd_ps(w0, xb, acc[0][t]);
        acc[1][t] = _mm512_fmadd_ps(w1, xb, acc[1][t]);
      }
    }
    for (int h = 0; h < 2; ++h)
      for (int t = 0; t < T; ++t) _mm512_storeu_ps(total[h][t], _mm512_add_ps(_mm512_loadu_ps(total[h][t]), acc[h][t]));
  }
  const __mmask16 m0 = n_rows >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(n_rows);
  const __mmask16 m1 = n_rows >= 32 ? static_cast<__mmask16>(0xFFFF) : first_lanes(std::max(0, n_rows - 16));
  for (int t = 0; t < T; ++t) {
    _mm512_mask_storeu_ps(Y + t * ldy, m0, _mm512_loadu_ps(total[0][t]));
    if (m1 != 0) _mm512_mask_storeu_ps(Y + t * ldy + 16, m1, _mm512_loadu_ps(total[1][t]));
  }
}

constexpr int kKTokens = 12;

template <int T>
void kmajor_tokens(int nt, const float* Wt, int64_t n, const float* X, int64_t ldx, float* Y, int64_t ldy, int n_rows) {
  if constexpr (T > 0) {
    if (nt == T) {
      kmajor_block<T>(Wt, n, X, ldx, Y, ldy, n_rows);
    } else {
      kmajor_tokens<T - 1>(nt, Wt, n, X, ldx, Y, ldy, n_rows);
    }
  }
}

void gemm_f32_avx512(const float* W, int64_t ldw, int64_t n_rows, const float* X, int64_t ldx, int64_t n_tokens,
                     int64_t n, float* Y, int64_t ldy) {
  thread_local std::vector<float> transposed;
  if (transposed.size() < static_cast<size_t>(n * kKRows)) transposed.resize(static_cast<size_t>(n * kKRows));
  for (int64_t r = 0; r < n_rows; r += kKRows) {
    const int nr = static_cast<int>(std::min<int64_t>(kKRows, n_rows - r));
    transpose_tile(W + r * ldw, ldw, nr, n, transposed.data());
    for (int64_t t = 0; t < n_tokens; t += kKTokens) {
      const int nt = static_cast<int>(std::min<int64_t>(kKTokens, n_tokens - t));
      kmajor_tokens<kKTokens>(nt, transposed.data(), n, X + t * ldx, ldx, Y + t * ldy + r, ldy, nr);
    }
  }
}

// F32 products with the tokens in panels (kernels_internal.h): R rows times
// one vector holding the panel's 16 tokens. Per k: one load of the panel, R
// broadcast weights and R multiply-adds into R accumulators, no horizontal
// sums. Each (row, token) is one lane summed in order of k, as the reference
// does; with `resume`, each lane continues from `out` (a later piece of k:
// the bits are those of one pass). At most 6 rows: a tile's rows lie 4n
// bytes apart, for n a multiple of 1024 in the same sets of a 32 KiB 8-way
// L1, and 12 rows at a time evicted each other (qwen3-0.6b F16 pp512 on an
// AMD Zen 4 VM: 12 rows 146-153 t/s, 6 rows 197-207, the transposing
// gemm_f32 122, llama.cpp 168; bench/README.md).
#define GLASSBOX_UNROLL _Pragma("GCC unroll 16")
constexpr int kPanelRows = 6;

template <int R>
void panel_block(const float* W, int64_t ldw, const float* panel, int64_t n, bool resume,
                 float (&out)[kPanelRows][detail::kF32PanelTokens]) {
  static_assert(detail::kF32PanelTokens == 16, "one vector per panel");
  __m512 acc[R];
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) acc[r] = resume ? _mm512_loadu_ps(out[r]) : _mm512_setzero_ps();
  const float* w[R];
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) w[r] = W + r * ldw;
  const float* x = panel;
#pragma GCC unroll 4
  for (int64_t k = 0; k < n; ++k, x += detail::kF32PanelTokens) {
    const __m512 xv = _mm512_loadu_ps(x);
    GLASSBOX_UNROLL for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(w[r][k]), xv, acc[r]);
  }
  GLASSBOX_UNROLL for (int r = 0; r < R; ++r) _mm512_storeu_ps(out[r], acc[r]);
}

// Rows [0, R) of W against the tokens in lanes [first, last) of one panel;
// with `resume`, adds to the sums in Y.
template <int R>
void panel_rows(const float* W, int64_t ldw, const float* panel, int first, int last, int64_t n, bool resume, float* Y,
                int64_t ldy) {
  float out[kPanelRows][detail::kF32PanelTokens] = {};  // lanes outside [first, last): unused
  if (resume) {
    for (int t = first; t < last; ++t) {
      GLASSBOX_UNROLL for (int r = 0; r < R; ++r) out[r][t] = Y[(t - first) * ldy + r];
    }
  }
  panel_block<R>(W, ldw, panel, n, resume, out);
  for (int t = first; t < last; ++t) {
    GLASSBOX_UNROLL for (int r = 0; r < R; ++r) Y[(t - first) * ldy + r] = out[r][t];
  }
}

// Panel by panel, each against every group of 6 rows, rows longer than
// kF32PanelPieceCols in pieces of k: the AVX2 kernel's order
// (kernels_avx2.cc says why).
void gemm_f32_panels_avx512(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0,
                            int64_t n_tokens, int64_t n, float* Y, int64_t ldy) {
  using RowsFn = void (*)(const float*, int64_t, const float*, int, int, int64_t, bool, float*, int64_t);
  constexpr RowsFn kRows[kPanelRows + 1] = {nullptr,       panel_rows<1>, panel_rows<2>, panel_rows<3>,
                                            panel_rows<4>, panel_rows<5>, panel_rows<6>};
  detail::for_each_panel_block(
      W, ldw, n_rows, panels, t0, n_tokens, n, Y, ldy, kPanelRows,
      [&](const float* w, int rows, const float* panel, int64_t kn, int first, int last, bool resume, float* y) {
        kRows[rows](w, ldw, panel, first, last, kn, resume, y, ldy);
      });
}

// ----------------------------------------------------------------- attention

// e^x for x <= 0 (Cephes' expf: x = n ln2 + r, a degree-7 polynomial in r,
// then 2^n with scalef, which also flushes very negative x to 0).
__m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// The four sums of a0..a3, in one vector.
__m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 a01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
  const __m512 a23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  const __m512 b = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a01), _mm512_castps_pd(a23))),
                                 _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a01), _mm512_castps_pd(a23))));
  const __m256 c = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
  return _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
}

// Keys per block: the block's K and V rows in F32 (2 x 32 x 128 floats for a
// head size of 128, 32 KiB) stay in L1 with the rest. Blocks of 64 (64 KiB)
// spilled: the conversion was store-bound and took half the time
// (kernels_bench Attention/*: 1.35x faster with 32 for 1 and 64 tokens).
constexpr int kKeyBlock = 32;
constexpr int kRowGroup = 4;

// Online-softmax state of one query row.
struct RowState {
  const float* q;
  float* out;
  float* o;  // running weighted sum of values, head_dim floats (padded)
  int n_keys;
  float max, sum;
};

// Rows of keys or values as the kernel reads them: the cache itself (F16 or
// F32, `stride` elements apart) or a block converted to F32.
struct KvRows {
  const void* base;
  bool half;
  int64_t stride;
  int hd;
};

// Values 16 c .. 16 c + 15 of row `row` in F32 (zeros past the head size).
inline __m512 load_chunk(const KvRows& r, int64_t row, int c) {
  const __mmask16 m = r.hd - 16 * c >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(std::max(0, r.hd - 16 * c));
  const int64_t at = row * r.stride + 16 * c;
  return r.half ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(r.base) + at))
                : _mm512_maskz_loadu_ps(m, static_cast<const float*>(r.base) + at);
}

// Scores of the block's nj keys for R query rows into probs (row i at
// probs + i * kKeyBlock), 4 keys x R rows at a time. R is a template
// argument so that the 4 R sums stay in registers: with a run-time row count
// they lived on the stack and every multiply-add also loaded and stored
// (kernels_bench Attention/avx512: 1.25-1.45x faster for 1 and 64 tokens).
// `hd` is the head size: the query rows hold that many values (a converted
// block's key rows are longer, padded with zeros, and the query must not be
// read past its own values: the last row's would be past its buffer).
template <int R>
void score_block(const RowState* rows, const KvRows& k_rows, int hd, int64_t row0, int nj, int chunks, float* probs) {
  for (int j = 0; j < nj; j += 4) {
    __m512 acc[R][4];
    for (int i = 0; i < R; ++i)
      for (int k = 0; k < 4; ++k) acc[i][k] = _mm512_setzero_ps();
    const int nk = std::min(4, nj - j);
    for (int c = 0; c < chunks; ++c) {
      __m512 kv[4];
      for (int k = 0; k < 4; ++k) kv[k] = k < nk ? load_chunk(k_rows, row0 + j + k, c) : _mm512_setzero_ps();
      const __mmask16 m = hd - 16 * c >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(hd - 16 * c);
      for (int i = 0; i < R; ++i) {
        const __m512 q = _mm512_maskz_loadu_ps(m, rows[i].q + 16 * c);
        for (int k = 0; k < 4; ++k) acc[i][k] = _mm512_fmadd_ps(q, kv[k], acc[i][k]);
      }
    }
    for (int i = 0; i < R; ++i)
      _mm_storeu_ps(probs + i * kKeyBlock + j, reduce4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
  }
}

void score_block_any(const RowState* rows, int n_rows, const KvRows& k_rows, int hd, int64_t row0, int nj, int chunks,
                     float* probs) {
  static_assert(kRowGroup == 4);
  switch (n_rows) {
    case 4:
      score_block<4>(rows, k_rows, hd, row0, nj, chunks, probs);
      break;
    case 3:
      score_block<3>(rows, k_rows, hd, row0, nj, chunks, probs);
      break;
    case 2:
      score_block<2>(rows, k_rows, hd, row0, nj, chunks, probs);
      break;
    default:
      score_block<1>(rows, k_rows, hd, row0, nj, chunks, probs);
      break;
  }
}

// o += p * V over the nj keys of a block (rows row0 .. row0 + nj - 1 of v),
// two rows at a time, C vectors of 16 values per row (chunks c0 .. c0 + C - 1).
template <int C>
void accumulate_values(RowState* rows, int n_rows, const float* probs, const KvRows& v, int64_t row0, int nj, int c0) {
  for (int r = 0; r < n_rows; r += 2) {
    const int pair = std::min(2, n_rows - r);
    __m512 o[2][C];
    for (int i = 0; i < 2; ++i)
      for (int c = 0; c < C; ++c)
        o[i][c] = i < pair ? _mm512_loadu_ps(rows[r + i].o + 16 * (c0 + c)) : _mm512_setzero_ps();
    for (int j = 0; j < nj; ++j) {
      const __m512 p0 = _mm512_set1_ps(probs[r * kKeyBlock + j]);
      const __m512 p1 = _mm512_set1_ps(pair > 1 ? probs[(r + 1) * kKeyBlock + j] : 0.0f);
      for (int c = 0; c < C; ++c) {
        const __m512 vj = load_chunk(v, row0 + j, c0 + c);
        o[0][c] = _mm512_fmadd_ps(p0, vj, o[0][c]);
        o[1][c] = _mm512_fmadd_ps(p1, vj, o[1][c]);
      }
    }
    for (int i = 0; i < pair; ++i)
      for (int c = 0; c < C; ++c) _mm512_storeu_ps(rows[r + i].o + 16 * (c0 + c), o[i][c]);
  }
}

void accumulate_values_any(RowState* rows, int n_rows, const float* probs, const KvRows& v, int64_t row0, int nj,
                           int chunks) {
  for (int c0 = 0; c0 < chunks; c0 += 8) {
    switch (std::min(8, chunks - c0)) {
      case 8:
        accumulate_values<8>(rows, n_rows, probs, v, row0, nj, c0);
        break;
      case 7:
        accumulate_values<7>(rows, n_rows, probs, v, row0, nj, c0);
        break;
      case 6:
        accumulate_values<6>(rows, n_rows, probs, v, row0, nj, c0);
        break;
      case 5:
        accumulate_values<5>(rows, n_rows, probs, v, row0, nj, c0);
        break;
      case 4:
        accumulate_values<4>(rows, n_rows, probs, v, row0, nj, c0);
        break;
      case 3:
        accumulate_values<3>(rows, n_rows, probs, v, row0, nj, c0);
        break;
      case 2:
        accumulate_values<2>(rows, n_rows, probs, v, row0, nj, c0);
        break;
      default:
        accumulate_values<1>(rows, n_rows, probs, v, row0, nj, c0);
        break;
    }
  }
}

// In generation the cache has left the caches since the last layer: each
// row is requested into L1 a few rows ahead of its conversion (rows past the
// cache's end are never read; prefetching them is harmless). Measured with
// the earlier position-major layout, where a head's rows were strided:
// attention 1.14-1.23 -> 1.02-1.12 ms per token (0.6B, tg128).
constexpr int kKvRowsAhead = 8;

// Requests rows j0 .. j0 + nj - 1 into L1.
void prefetch_kv_rows(const void* base, bool half, int64_t stride, int hd, int j0, int nj) {
  const int64_t elem = half ? 2 : 4;
  for (int j = j0; j < j0 + nj; ++j) {
    const char* row = static_cast<const char*>(base) + static_cast<int64_t>(j) * stride * elem;
    for (int64_t at = 0; at < hd * elem; at += 64) _mm_prefetch(row + at, _MM_HINT_T0);
  }
}

// Copies KV rows j0 .. j0 + nj - 1 into F32 scratch rows of `padded` floats
// (zeros past the head size).
void load_kv_block(const void* base, bool half, int64_t stride, int hd, int padded, int j0, int nj, float* out) {
  for (int j = 0; j < nj; ++j) {
    prefetch_kv_rows(base, half, stride, hd, j0 + j + kKvRowsAhead, 1);
    float* dst = out + j * padded;
    for (int c = 0; c < padded; c += 16) {
      const __mmask16 m = hd - c >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(std::max(0, hd - c));
      const int64_t at = (static_cast<int64_t>(j0) + j) * stride + c;
      const __m512 v = half ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + at))
                            : _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + at);
      _mm512_storeu_ps(dst, v);
      dst += 16;
    }
  }
}

// Keys and values go in blocks of kKeyBlock, each converted to F32 once and then
// used by every query row of the call (the query heads of one KV head, for
// all the tokens), four rows at a time for the scores and two at a time for
// the values, with an online softmax: memory does not grow with the
// context. One token (generation) reads the cache directly instead: its few
// rows use each key and value only once or twice, and the F32 copy cost more
// than it saved.
void attention_impl(const AttentionArgs& a, AttentionScratch& scratch) {
  const int hd = a.head_dim;
  const int chunks = (hd + 15) / 16;
  const int padded = 16 * chunks;
  const bool half = a.kv_type == DType::F16;
  const int n_rows_total = a.n_tokens * a.n_heads;
  const size_t need = static_cast<size_t>(n_rows_total) * padded + static_cast<size_t>(kRowGroup) * kKeyBlock +
                      2 * static_cast<size_t>(kKeyBlock) * padded;
  if (scratch.buf.size() < need) scratch.buf.resize(need);
  float* o_buf = scratch.buf.data();
  float* probs = o_buf + static_cast<size_t>(n_rows_total) * padded;
  float* k_block = probs + kRowGroup * kKeyBlock;
  float* v_block = k_block + kKeyBlock * padded;
  // Rows live in a small array per group; their o vectors in o_buf.
  std::fill(o_buf, o_buf + static_cast<size_t>(n_rows_total) * padded, 0.0f);
  float row_max[kRowGroup * 64], row_sum[kRowGroup * 64];  // up to 256 rows on the stack
  std::vector<float> big_state;
  float* maxes = row_max;
  float* sums = row_sum;
  if (n_rows_total > kRowGroup * 64) {
    big_state.assign(2 * static_cast<size_t>(n_rows_total), 0.0f);
    maxes = big_state.data();
    sums = maxes + n_rows_total;
  }
  for (int i = 0; i < n_rows_total; ++i) {
    maxes[i] = -INFINITY;
    sums[i] = 0.0f;
  }
  const int max_keys = a.n_past + a.n_tokens;
  const bool direct = a.n_tokens == 1;
  const KvRows k_rows = direct ? KvRows{a.k, half, a.kv_stride, hd} : KvRows{k_block, false, padded, padded};
  const KvRows v_rows = direct ? KvRows{a.v, half, a.kv_stride, hd} : KvRows{v_block, false, padded, padded};
  for (int j0 = 0; j0 < max_keys; j0 += kKeyBlock) {
    const int nj = std::min(kKeyBlock, max_keys - j0);
    // Row of key j of this block in k_rows / v_rows.
    const int64_t row0 = direct ? j0 : 0;
    if (direct) {
      prefetch_kv_rows(a.k, half, a.kv_stride, hd, j0 + kKvRowsAhead, nj);
      prefetch_kv_rows(a.v, half, a.kv_stride, hd, j0 + kKvRowsAhead, nj);
    } else {
      load_kv_block(a.k, half, a.kv_stride, hd, padded, j0, nj, k_block);
      load_kv_block(a.v, half, a.kv_stride, hd, padded, j0, nj, v_block);
    }
    for (int g = 0; g < n_rows_total; g += kRowGroup) {
      const int n_rows = std::min(kRowGroup, n_rows_total - g);
      RowState rows[kRowGroup];
      bool any = false;
      for (int i = 0; i < n_rows; ++i) {
        const int t = (g + i) / a.n_heads, h = (g + i) % a.n_heads;
        rows[i] = {a.q + t * a.q_token_stride + h * a.q_head_stride,
                   nullptr,
                   o_buf + static_cast<size_t>(g + i) * padded,
                   a.n_past + t + 1,
                   maxes[g + i],
                   sums[g + i]};
        any = any || rows[i].n_keys > j0;
      }
      if (!any) continue;  // the whole block is in these rows' future
      score_block_any(rows, n_rows, k_rows, hd, row0, nj, chunks, probs);
      // Online softmax per row: masked scores get probability 0.
      for (int i = 0; i < n_rows; ++i) {
        RowState& row = rows[i];
        float* s = probs + i * kKeyBlock;
        const int visible = std::clamp(row.n_keys - j0, 0, nj);
        __m512 block_max = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < visible; j += 16) {
          const __mmask16 m = visible - j >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(visible - j);
          const __m512 sc = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), _mm512_set1_ps(a.scale));
          _mm512_mask_storeu_ps(s + j, m, sc);
          block_max = _mm512_mask_max_ps(block_max, m, block_max, sc);
        }
        const float new_max = std::max(row.max, _mm512_reduce_max_ps(block_max));
        const float alpha = row.max == -INFINITY ? 0.0f : _mm512_cvtss_f32(exp_ps(_mm512_set1_ps(row.max - new_max)));
        __m512 sum = _mm512_setzero_ps();
        for (int j = 0; j < nj; j += 16) {
          const int in_block = std::max(0, std::min(16, visible - j));
          const __mmask16 m = in_block >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(in_block);
          const __m512 p =
              _mm512_maskz_mov_ps(m, exp_ps(_mm512_sub_ps(_mm512_loadu_ps(s + j), _mm512_set1_ps(new_max))));
          _mm512_storeu_ps(s + j, p);
          sum = _mm512_add_ps(sum, p);
        }
        if (visible > 0) {
          row.sum = row.sum * alpha + _mm512_reduce_add_ps(sum);
          row.max = new_max;
          if (alpha != 1.0f) {
            const __m512 scale = _mm512_set1_ps(alpha);
            for (int c = 0; c < chunks; ++c)
              _mm512_storeu_ps(row.o + 16 * c, _mm512_mul_ps(_mm512_loadu_ps(row.o + 16 * c), scale));
          }
        }
        maxes[g + i] = row.max;
        sums[g + i] = row.sum;
      }
      accumulate_values_any(rows, n_rows, probs, v_rows, row0, nj, chunks);
    }
  }
  for (int i = 0; i < n_rows_total; ++i) {
    const int t = i / a.n_heads, h = i % a.n_heads;
    float* out = a.out + t * a.out_token_stride + h * a.out_head_stride;
    const float* o = o_buf + static_cast<size_t>(i) * padded;
    const __m512 inv = _mm512_set1_ps(1.0f / sums[i]);
    for (int c = 0; c < chunks; ++c) {
      const __mmask16 m = hd - 16 * c >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(hd - 16 * c);
      _mm512_mask_storeu_ps(out + 16 * c, m, _mm512_mul_ps(_mm512_loadu_ps(o + 16 * c), inv));
    }
  }
}

}  // namespace

namespace detail::avx512 {

void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n) { dequantize_row_avx512(type, src, dst, n); }
float dot(DType type, const uint8_t* row, const float* x, int64_t n) { return dot_avx512(type, row, x, n); }
void gemm_f32(const float* W, int64_t ldw, int64_t n_rows, const float* X, int64_t ldx, int64_t n_tokens, int64_t n,
              float* Y, int64_t ldy) {
  gemm_f32_avx512(W, ldw, n_rows, X, ldx, n_tokens, n, Y, ldy);
}
void gemm_f32_panels(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0, int64_t n_tokens,
                     int64_t n, float* Y, int64_t ldy) {
  gemm_f32_panels_avx512(W, ldw, n_rows, panels, t0, n_tokens, n, Y, ldy);
}

void attention(const AttentionArgs& args, AttentionScratch& scratch) {
  // A Q8_0 cache: the AVX2 kernel (its integer dot products in 256 bits);
  // also where that one is the faster (g_avx512_attention).
  if (args.kv_type == DType::Q8_0 || !g_avx512_attention.load(std::memory_order_relaxed))
    return detail::avx2::attention(args, scratch);
  if (args.head_dim > 16 * 64) throw Error("attention: head size " + std::to_string(args.head_dim) + " is too large");
  attention_impl(args, scratch);
}

// e^-g for any g: exp_ps expects x <= 0, so large negative g (e^-g beyond
// the float range) is clamped: silu is then g * 0 = 0, as with std::exp.
void silu_mul(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, g + i);
    // e^-x = 1 / e^x for x < 0 keeps exp_ps's argument <= 0.
    const __m512 e = exp_ps(_mm512_min_ps(x, _mm512_sub_ps(_mm512_setzero_ps(), x)));
    const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    // x >= 0: e = e^-x, silu = x / (1 + e). x < 0: e = e^x, silu = x e / (e + 1).
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 num = _mm512_mask_mul_ps(x, negative, x, e);
    const __m512 s = _mm512_div_ps(num, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
  }
}

// Squares summed in double, eight lanes per vector, in two chains; the
// last partial vector masked.
void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    s0 = _mm512_fmadd_pd(lo, lo, s0);
    s1 = _mm512_fmadd_pd(hi, hi, s1);
  }
  const double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  const __m512 vs = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(n - i);
    _mm512_mask_storeu_ps(
        out + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), _mm512_maskz_loadu_ps(m, w + i)));
  }
}

void f32_to_f16(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(n - i);
    _mm256_mask_storeu_epi16(
        out + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
}

void f16_to_f32(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : first_lanes(n - i);
    _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
  }
}

}  // namespace detail::avx512

}  // namespace glassbox::kernels

#define GLASSBOX_VNNI 0
#include "kernels/fast_avx512.inc"

namespace glassbox::kernels::detail {
constexpr IsaKernels kAvx512Kernels = avx512_table("avx512");
}  // namespace glassbox::kernels::detail
