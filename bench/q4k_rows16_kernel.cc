// AVX-512 VNNI product over the repacked Q4_K layout (q4k_rows16.h).
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves,
// which trips -Wuninitialized once inlined (GCC bug 105593; see
// src/kernels/kernels_avx512.cc): silenced for the include only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstring>

#include "bench/q4k_rows16.h"

namespace glassbox::q4k_rows16 {
namespace {

int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

void gemv_group(const uint8_t* packed, int n_blocks, const Activations& x, float* y) {
  const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8(static_cast<char>(0xF0));
  __m512 acc = _mm512_setzero_ps(), acc_min = _mm512_setzero_ps();
  for (int b = 0; b < n_blocks; ++b, packed += kPackedBytes) {
    const int8_t* xb = x.q.data() + kBlockValues * b;
    __m512i sum_low = _mm512_setzero_si512(), sum_high = _mm512_setzero_si512();
    for (int g = 0; g < 4; ++g) {
      const uint8_t* qs = packed + kQsAt + g * 512;
      for (int i = 0; i < 8; ++i) _mm_prefetch(reinterpret_cast<const char*>(qs + 4096 + 64 * i), _MM_HINT_T0);
      __m512i a_low = _mm512_setzero_si512(), a_high = _mm512_setzero_si512();
      for (int k = 0; k < 8; ++k) {
        const __m512i v = _mm512_loadu_si512(qs + 64 * k);
        a_low = _mm512_dpbusd_epi32(a_low, _mm512_and_si512(v, low), _mm512_set1_epi32(load_i32(xb + 64 * g + 4 * k)));
        // High nibbles stay in place (16 x the value): the sum is shifted back once.
        a_high = _mm512_dpbusd_epi32(a_high, _mm512_and_si512(v, high),
                                     _mm512_set1_epi32(load_i32(xb + 64 * g + 32 + 4 * k)));
      }
      const __m512i scales_low =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + kScalesAt + 16 * (2 * g))));
      const __m512i scales_high = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + kScalesAt + 16 * (2 * g + 1))));
      sum_low = _mm512_add_epi32(sum_low, _mm512_mullo_epi32(a_low, scales_low));
      sum_high = _mm512_add_epi32(sum_high, _mm512_mullo_epi32(a_high, scales_high));
    }
    const __m512i sum = _mm512_add_epi32(sum_low, _mm512_srai_epi32(sum_high, 4));
    __m512i mins = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      const __m512i m =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + kMinsAt + 16 * j)));
      mins = _mm512_dpwssd_epi32(mins, m, _mm512_set1_epi32(x.sums[8 * b + j]));
    }
    const __m512 dx = _mm512_set1_ps(x.scale[b]);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed + 32)));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d, dx), acc);
    acc_min = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mins), _mm512_mul_ps(dmin, dx), acc_min);
  }
  _mm512_storeu_ps(y, _mm512_sub_ps(acc, acc_min));
}

uint64_t plain_read(const uint8_t* p, int64_t n) {
  __m512i s = _mm512_setzero_si512();
  for (int64_t i = 0; i + 64 <= n; i += 64) s = _mm512_add_epi64(s, _mm512_loadu_si512(p + i));
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, s);
  uint64_t total = 0;
  for (uint64_t v : lanes) total += v;
  return total;
}

}  // namespace glassbox::q4k_rows16
