// Scalar reference kernels: plain loops that follow ggml's block layouts
// (see block_layouts.h). They define the expected values the SIMD variants
// are tested against, so clarity wins over speed here.
#include <cstring>

#include "kernels/block_layouts.h"
#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"
#include "tensor/fp16.h"

namespace glassbox::kernels {
namespace {

using namespace layout;

void dequantize_q4_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kQ4_0Bytes, dst += kQ4_0Elems) {
    const float d = load_fp16(src);
    const uint8_t* qs = src + kQ4_0Qs;
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
      dst[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q5_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kQ5_0Bytes, dst += kQ5_0Elems) {
    const float d = load_fp16(src);
    const uint32_t qh = load_u32(src + kQ5_0Qh);
    const uint8_t* qs = src + kQ5_0Qs;
    for (int j = 0; j < 16; ++j) {
      const int high_lo = static_cast<int>((qh >> j) & 1) << 4;
      const int high_hi = static_cast<int>((qh >> (j + 16)) & 1) << 4;
      dst[j] = static_cast<float>(((qs[j] & 0xF) | high_lo) - 16) * d;
      dst[j + 16] = static_cast<float>(((qs[j] >> 4) | high_hi) - 16) * d;
    }
  }
}

void dequantize_q8_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kQ8_0Bytes, dst += kQ8_0Elems) {
    const float d = load_fp16(src);
    const uint8_t* qs = src + kQ8_0Qs;
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(static_cast<int8_t>(qs[j])) * d;
  }
}

void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kQ4_KBytes, dst += kQ4_KElems) {
    const float d = load_fp16(src);
    const float dmin = load_fp16(src + kQ4_KDmin);
    const uint8_t* packed = src + kQ4_KScales;
    const uint8_t* qs = src + kQ4_KQs;
    // Each 32 bytes of qs hold two sub-blocks: low nibbles, then high nibbles.
    for (int pair = 0; pair < 4; ++pair) {
      uint8_t sc_lo, m_lo, sc_hi, m_hi;
      q4_k_scale_min(2 * pair, packed, &sc_lo, &m_lo);
      q4_k_scale_min(2 * pair + 1, packed, &sc_hi, &m_hi);
      const float d_lo = d * sc_lo, min_lo = dmin * m_lo;
      const float d_hi = d * sc_hi, min_hi = dmin * m_hi;
      const uint8_t* q = qs + 32 * pair;
      float* out = dst + 64 * pair;
      for (int l = 0; l < 32; ++l) out[l] = d_lo * static_cast<float>(q[l] & 0xF) - min_lo;
      for (int l = 0; l < 32; ++l) out[32 + l] = d_hi * static_cast<float>(q[l] >> 4) - min_hi;
    }
  }
}

void dequantize_q6_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += kQ6_KBytes, dst += kQ6_KElems) {
    const float d = load_fp16(src + kQ6_KD);
    // Two halves of 128 elements; each uses 64 bytes of ql, 32 of qh and 8
    // scales. Element 32k + l of a half takes the 4 low bits from nibble
    // (k / 2) of ql[l + 32 * (k % 2)] and the 2 high bits from bits 2k..2k+1
    // of qh[l]; its scale is number 2k + l / 16.
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = src + 64 * half;
      const uint8_t* qh = src + kQ6_KQh + 32 * half;
      const int8_t* scales = reinterpret_cast<const int8_t*>(src + kQ6_KScales + 8 * half);
      float* out = dst + 128 * half;
      for (int k = 0; k < 4; ++k) {
        for (int l = 0; l < 32; ++l) {
          const uint8_t low_byte = ql[l + 32 * (k % 2)];
          const int low = k < 2 ? (low_byte & 0xF) : (low_byte >> 4);
          const int high = (qh[l] >> (2 * k)) & 3;
          const int q = (low | (high << 4)) - 32;
          out[32 * k + l] = d * static_cast<float>(scales[2 * k + l / 16]) * static_cast<float>(q);
        }
      }
    }
  }
}

void dequantize_unchecked(DType type, const uint8_t* src, float* dst, int64_t n) {
  switch (type) {
    case DType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(load_u16(src + 2 * i));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src + 2 * i));
      return;
    case DType::Q4_0: return dequantize_q4_0(src, dst, n / kQ4_0Elems);
    case DType::Q5_0: return dequantize_q5_0(src, dst, n / kQ5_0Elems);
    case DType::Q8_0: return dequantize_q8_0(src, dst, n / kQ8_0Elems);
    case DType::Q4_K: return dequantize_q4_k(src, dst, n / kQ4_KElems);
    case DType::Q6_K: return dequantize_q6_k(src, dst, n / kQ6_KElems);
    default: return;  // unreachable: check_row_args rejected it
  }
}

// The reference dot product dequantizes one block (at most 256 elements) at
// a time and accumulates in double, so it is more accurate than any float
// variant and a fair yardstick for their rounding.
float dot_unchecked(DType type, const uint8_t* row, const float* x, int64_t n) {
  const DTypeTraits tr = traits(type);
  const int64_t chunk_elems = tr.block_elems == 1 ? 256 : tr.block_elems;
  const int64_t chunk_bytes = chunk_elems / tr.block_elems * tr.block_bytes;
  float w[256];
  double sum = 0.0;
  for (int64_t i = 0; i < n; i += chunk_elems, row += chunk_bytes) {
    const int64_t len = n - i < chunk_elems ? n - i : chunk_elems;
    dequantize_unchecked(type, row, w, len);
    for (int64_t j = 0; j < len; ++j) sum += static_cast<double>(w[j] * x[i + j]);
  }
  return static_cast<float>(sum);
}

void gemm_f32(const float* W, int64_t ldw, int64_t n_rows, const float* X, int64_t ldx,
              int64_t n_tokens, int64_t n, float* Y, int64_t ldy) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_rows; ++r) {
      double sum = 0.0;
      for (int64_t k = 0; k < n; ++k) sum += static_cast<double>(W[r * ldw + k] * X[t * ldx + k]);
      Y[t * ldy + r] = static_cast<float>(sum);
    }
  }
}

}  // namespace

namespace scalar {

void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n) {
  detail::check_row_args(type, n);
  dequantize_unchecked(type, src, dst, n);
}

float dot(DType type, const uint8_t* row, const float* x, int64_t n) {
  detail::check_row_args(type, n);
  return dot_unchecked(type, row, x, n);
}

}  // namespace scalar

namespace detail {
constexpr IsaKernels kScalarKernels = {"scalar", dequantize_unchecked, dot_unchecked, gemm_f32};
}  // namespace detail

}  // namespace glassbox::kernels
