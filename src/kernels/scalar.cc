// Scalar reference kernels: plain loops that follow ggml's block layouts
// (see block_layouts.h). They define the expected values the SIMD variants
// are tested against, so clarity wins over speed here.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
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
    case DType::Q4_0:
      return dequantize_q4_0(src, dst, n / kQ4_0Elems);
    case DType::Q5_0:
      return dequantize_q5_0(src, dst, n / kQ5_0Elems);
    case DType::Q8_0:
      return dequantize_q8_0(src, dst, n / kQ8_0Elems);
    case DType::Q4_K:
      return dequantize_q4_k(src, dst, n / kQ4_KElems);
    case DType::Q6_K:
      return dequantize_q6_k(src, dst, n / kQ6_KElems);
    default:
      return;  // unreachable: check_row_args rejected it
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

void gemm_f32(const float* W, int64_t ldw, int64_t n_rows, const float* X, int64_t ldx, int64_t n_tokens, int64_t n,
              float* Y, int64_t ldy) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_rows; ++r) {
      double sum = 0.0;
      for (int64_t k = 0; k < n; ++k) sum += static_cast<double>(W[r * ldw + k] * X[t * ldx + k]);
      Y[t * ldy + r] = static_cast<float>(sum);
    }
  }
}

// ------------------------------------------------------------ fast path

// Round to nearest, ties to even (the SIMD conversions' default rounding),
// saturated to int8 as the SIMD packing saturates (NaN ends at -128 there too).
int round_even(float v) {
  const float r = std::nearbyint(v);
  if (!(r >= -128.0f)) return -128;
  return r > 127.0f ? 127 : static_cast<int>(r);
}

// ggml's x86 quantize_row_q8_0: scale amax / 127 stored as fp16, values
// x * (127 / amax) rounded to nearest even.
void quantize_q8_32(const float* x, int64_t n, int8_t* qs, float* scales) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    scales[b] = fp16_to_f32(f32_to_fp16(d));
    for (int j = 0; j < 32; ++j) qs[32 * b + j] = static_cast<int8_t>(round_even(xb[j] * id));
  }
}

// ggml's quantize_row_q8_K_ref: the value of largest magnitude maps to -127;
// the float scale is 1 / iscale.
void quantize_q8_256(const float* x, int64_t n, int8_t* qs, float* scales) {
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + 256 * b;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 256; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    float d = 0.0f;
    if (amax == 0.0f) {
      std::memset(qs + 256 * b, 0, 256);
    } else {
      const float iscale = -127.0f / max;
      for (int j = 0; j < 256; ++j) qs[256 * b + j] = static_cast<int8_t>(std::min(127, round_even(iscale * xb[j])));
      d = 1.0f / iscale;
    }
    for (int r = 0; r < 8; ++r) scales[8 * b + r] = d;
  }
}

// Signed value of element j of a 32-block of a symmetric type.
int block32_value(DType type, const uint8_t* block, int j) {
  switch (type) {
    case DType::Q8_0:
      return static_cast<int8_t>(block[kQ8_0Qs + j]);
    case DType::Q4_0: {
      const uint8_t byte = block[kQ4_0Qs + (j & 15)];
      return (j < 16 ? (byte & 0xF) : (byte >> 4)) - 8;
    }
    case DType::Q5_0: {
      const uint8_t byte = block[kQ5_0Qs + (j & 15)];
      const int high = static_cast<int>((load_u32(block + kQ5_0Qh) >> j) & 1) << 4;
      return ((j < 16 ? (byte & 0xF) : (byte >> 4)) | high) - 16;
    }
    default:
      return 0;
  }
}

double dot_q8_unchecked(DType type, const uint8_t* w, const int8_t* qs, const float* scales, const int32_t* sums,
                        int64_t n) {
  double total = 0.0;
  switch (type) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0: {
      const int64_t block_bytes = traits(type).block_bytes;
      for (int64_t b = 0; b < n / 32; ++b, w += block_bytes) {
        int64_t isum = 0;
        for (int j = 0; j < 32; ++j) isum += block32_value(type, w, j) * qs[32 * b + j];
        total += static_cast<double>(load_fp16(w)) * scales[b] * static_cast<double>(isum);
      }
      return total;
    }
    case DType::Q4_K: {
      for (int64_t b = 0; b < n / 256; ++b, w += kQ4_KBytes) {
        const int8_t* q = qs + 256 * b;
        int64_t scaled = 0, mins = 0;
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, m;
          q4_k_scale_min(j, w + kQ4_KScales, &sc, &m);
          const uint8_t* nibbles = w + kQ4_KQs + 32 * (j / 2);
          int64_t isum = 0;
          for (int l = 0; l < 32; ++l) isum += ((j % 2 == 0) ? (nibbles[l] & 0xF) : (nibbles[l] >> 4)) * q[32 * j + l];
          scaled += sc * isum;
          mins += m * static_cast<int64_t>(sums[8 * b + j]);
        }
        const double dx = scales[8 * b];
        total += dx * (static_cast<double>(load_fp16(w)) * static_cast<double>(scaled) -
                       static_cast<double>(load_fp16(w + kQ4_KDmin)) * static_cast<double>(mins));
      }
      return total;
    }
    case DType::Q6_K: {
      for (int64_t b = 0; b < n / 256; ++b, w += kQ6_KBytes) {
        int64_t scaled = 0;
        for (int half = 0; half < 2; ++half) {
          const uint8_t* ql = w + 64 * half;
          const uint8_t* qh = w + kQ6_KQh + 32 * half;
          const int8_t* sc = reinterpret_cast<const int8_t*>(w + kQ6_KScales + 8 * half);
          for (int k = 0; k < 4; ++k) {
            for (int l = 0; l < 32; ++l) {
              const uint8_t low_byte = ql[l + 32 * (k % 2)];
              const int low = k < 2 ? (low_byte & 0xF) : (low_byte >> 4);
              const int high = (qh[l] >> (2 * k)) & 3;
              const int idx = 128 * half + 32 * k + l;
              scaled += static_cast<int64_t>(sc[2 * k + l / 16]) * ((low | (high << 4)) - 32) * qs[256 * b + idx];
            }
          }
        }
        total += static_cast<double>(load_fp16(w + kQ6_KD)) * scales[8 * b] * static_cast<double>(scaled);
      }
      return total;
    }
    default:
      return 0.0;
  }
}

// --------------------------------------------------------------- attention

// Value d of cache row j (F32, F16, or Q8_0 dequantized: scale x value).
double cache_value(const AttentionArgs& a, const void* base, int j, int d) {
  const int64_t at = static_cast<int64_t>(j) * a.kv_stride + d;
  const auto* bytes = static_cast<const uint8_t*>(base);
  switch (a.kv_type) {
    case DType::F16:
      return fp16_to_f32(load_u16(bytes + 2 * at));
    case DType::Q8_0: {
      const uint8_t* block = bytes + at / 32 * 34;
      return static_cast<double>(fp16_to_f32(load_u16(block))) * static_cast<int8_t>(block[2 + at % 32]);
    }
    default:
      return static_cast<const float*>(base)[at];
  }
}

// q . key j. Q8_0: the quantized query's integer sums per block of 32 with
// the key's, times both scales (llama.cpp's q8_0 x q8_0 dot product).
double score_reference(const AttentionArgs& a, const float* q, const int8_t* q_qs, const float* q_scales, int j) {
  double s = 0.0;
  if (a.kv_type != DType::Q8_0) {
    for (int d = 0; d < a.head_dim; ++d) s += static_cast<double>(q[d]) * cache_value(a, a.k, j, d);
    return s;
  }
  const uint8_t* row = static_cast<const uint8_t*>(a.k) + static_cast<int64_t>(j) * a.kv_stride / 32 * 34;
  for (int b = 0; b < a.head_dim / 32; ++b) {
    const uint8_t* block = row + 34 * b;
    int32_t isum = 0;
    for (int i = 0; i < 32; ++i) isum += q_qs[32 * b + i] * static_cast<int8_t>(block[2 + i]);
    s += static_cast<double>(q_scales[b]) * fp16_to_f32(load_u16(block)) * isum;
  }
  return s;
}

void attention_reference(const AttentionArgs& a) {
  const int hd = a.head_dim;
  std::vector<double> scores;
  std::vector<double> out(static_cast<size_t>(hd));
  std::vector<int8_t> q_qs(a.kv_type == DType::Q8_0 ? static_cast<size_t>(hd) : 0);
  std::vector<float> q_scales(q_qs.size() / 32);
  for (int t = 0; t < a.n_tokens; ++t) {
    const int n_keys = a.n_past + t + 1;
    scores.resize(static_cast<size_t>(n_keys));
    for (int h = 0; h < a.n_heads; ++h) {
      const float* q = a.q + t * a.q_token_stride + h * a.q_head_stride;
      if (a.kv_type == DType::Q8_0) quantize_q8_32(q, hd, q_qs.data(), q_scales.data());
      double max_score = -INFINITY;
      for (int j = 0; j < n_keys; ++j) {
        const double s = score_reference(a, q, q_qs.data(), q_scales.data(), j);
        scores[j] = s * a.scale;
        max_score = std::max(max_score, scores[j]);
      }
      double sum = 0.0;
      for (int j = 0; j < n_keys; ++j) {
        scores[j] = std::exp(scores[j] - max_score);
        sum += scores[j];
      }
      std::fill(out.begin(), out.end(), 0.0);
      for (int j = 0; j < n_keys; ++j)
        for (int d = 0; d < hd; ++d) out[d] += scores[j] * cache_value(a, a.v, j, d);
      float* o = a.out + t * a.out_token_stride + h * a.out_head_stride;
      for (int d = 0; d < hd; ++d) o[d] = static_cast<float>(out[d] / sum);
    }
  }
}

void silu_mul_scalar(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void rms_norm_scalar(const float* x, const float* w, float* out, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

SoftmaxSums softmax_sums_scalar(const float* x, int64_t n) {
  SoftmaxSums r;
  r.max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i]) || x[i] == INFINITY) {
      r.finite = false;
      return r;
    }
    r.max = std::max(r.max, x[i]);
  }
  if (r.max == -INFINITY) return r;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - r.max;
    if (d < -87.0) continue;
    const double e = std::exp(d);
    r.sum += e;
    r.weighted += e * d;
  }
  return r;
}

int64_t find_above_scalar(const float* x, int64_t from, int64_t n, float threshold) {
  for (int64_t i = from; i < n; ++i) {
    if (x[i] > threshold) return i;
  }
  return n;
}

void f32_to_f16_scalar(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_fp16(x[i]);
}

void f16_to_f32_scalar(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_f32(x[i]);
}

}  // namespace

namespace detail::reference {

void gemm_f32_panels(const float* W, int64_t ldw, int64_t n_rows, const float* panels, int64_t t0, int64_t n_tokens,
                     int64_t n, float* Y, int64_t ldy) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t u = t0 + t;
    const float* x = panels + u / kF32PanelTokens * kF32PanelTokens * n + u % kF32PanelTokens;
    for (int64_t r = 0; r < n_rows; ++r) {
      float sum = 0.0f;
      for (int64_t k = 0; k < n; ++k) sum = std::fma(W[r * ldw + k], x[kF32PanelTokens * k], sum);
      Y[t * ldy + r] = sum;
    }
  }
}

void quantize_q8_32(const float* x, int64_t n, int8_t* qs, float* scales) { kernels::quantize_q8_32(x, n, qs, scales); }

void quantize_acts_row(ActFormat format, const float* x, int64_t n, int8_t* qs, float* scales, int32_t* sums,
                       float* scaled_sums, int32_t* lane_bias, float* lane_scales) {
  if (format == ActFormat::Q8_256) {
    quantize_q8_256(x, n, qs, scales);
  } else {
    quantize_q8_32(x, n, qs, scales);
  }
  for (int64_t b = 0; b < n / 32; ++b) {
    int32_t s = 0;
    for (int j = 0; j < 32; ++j) s += qs[32 * b + j];
    sums[b] = s;
    if (scaled_sums != nullptr) {
      for (int half = 0; half < 2; ++half) {
        int32_t s16 = 0;
        for (int j = 0; j < 16; ++j) s16 += qs[32 * b + 16 * half + j];
        scaled_sums[2 * b + half] = scales[b] * static_cast<float>(s16);
      }
    }
  }
  if (lane_bias != nullptr) {
    for (int64_t l = 0; l < n / 4; ++l) {
      lane_bias[l] = -128 * (qs[4 * l] + qs[4 * l + 1] + qs[4 * l + 2] + qs[4 * l + 3]);
      lane_scales[l] = scales[l / 8];
    }
  }
}

}  // namespace detail::reference

namespace scalar {

void quantize_acts(ActFormat format, const float* x, int64_t n, int8_t* qs, float* scales, int32_t* sums) {
  if (format == ActFormat::F32 || n < 0 || n % act_block(format) != 0)
    throw Error("quantize_acts: row length " + std::to_string(n) + " does not fit the format");
  detail::reference::quantize_acts_row(format, x, n, qs, scales, sums, nullptr, nullptr, nullptr);
}

float dot_q8(DType type, const uint8_t* w, const QuantizedActs& x, int64_t row) {
  detail::check_row_args(type, x.n());
  if (act_format_for(type) != x.format() || x.format() == ActFormat::F32)
    throw Error("dot_q8: activations are not in the format " + std::string(dtype_name(type)) + " needs");
  return static_cast<float>(dot_q8_unchecked(type, w, x.qs(row), x.scales(row), x.sums(row), x.n()));
}

void attention(const AttentionArgs& args) { attention_reference(args); }

void silu_mul(float* g, const float* u, int64_t n) { silu_mul_scalar(g, u, n); }

void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps) { rms_norm_scalar(x, w, out, n, eps); }

SoftmaxSums softmax_sums(const float* x, int64_t n) { return softmax_sums_scalar(x, n); }

int64_t find_above(const float* x, int64_t from, int64_t n, float threshold) {
  return find_above_scalar(x, std::max<int64_t>(from, 0), n, threshold);
}

}  // namespace scalar

namespace detail::reference {

// The scalar table computes the fast path pair by pair with the reference
// dot product (see kernels.cc); it has no tiles.
bool gemv(DType type, const uint8_t* w, int64_t row_stride, int64_t n_rows, int64_t n, const QRow& x, float* y) {
  for (int64_t r = 0; r < n_rows; ++r)
    y[r] = static_cast<float>(dot_q8_unchecked(type, w + r * row_stride, x.qs, x.scales, x.sums, n));
  return true;
}

// Where the packed references find block b of group g, in blocks from the
// matrix's start: the groups one after another, or (the quads forms,
// block_layouts.h) at 4 b + g % 4 blocks into the run of four groups. Written
// here apart from the packer's rows16_block_index on purpose: the tests
// check the two against each other through the original rows.
namespace {
int64_t plain_block_index(int64_t g, int64_t b, int64_t n_blocks) { return g * n_blocks + b; }
int64_t quads_block_index(int64_t g, int64_t b, int64_t n_blocks) {
  return g / kQuadGroups * kQuadGroups * n_blocks + kQuadGroups * b + g % kQuadGroups;
}
}  // namespace

// Exact integer sums per sub-block, scaled in double (as dot_q8_unchecked
// does for the original blocks), of packed Q4_K blocks wherever
// block_index(g, b) puts them (in kRows16Bytes).
namespace {
template <typename BlockIndex>
void gemv_q4_k_packed(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y,
                      BlockIndex block_index) {
  const int64_t n_blocks = n / kQ4_KElems;
  for (int64_t g = 0; g < n_groups; ++g) {
    for (int r = 0; r < kRows16; ++r) {
      double total = 0;
      for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* block = packed + block_index(g, b, n_blocks) * kRows16Bytes;
        const int8_t* xq = x.qs + kQ4_KElems * b;
        int64_t scaled = 0, mins = 0;
        for (int j = 0; j < 8; ++j) {
          const int group = j / 2, high = j % 2;
          int64_t sum = 0;
          for (int k = 0; k < 8; ++k)
            for (int i = 0; i < 4; ++i) {
              const uint8_t byte = block[kRows16Qs + (group * 8 + k) * 64 + 4 * r + i];
              const int q = high ? byte >> 4 : byte & 0x0F;
              sum += q * xq[64 * group + 32 * high + 4 * k + i];
            }
          scaled += sum * block[kRows16Scales + 16 * j + r];
          mins += static_cast<int64_t>(block[kRows16Mins + 16 * j + r]) * x.sums[8 * b + j];
        }
        const double dx = x.scales[8 * b];
        total +=
            dx * (static_cast<double>(fp16_to_f32(load_u16(block + 2 * r))) * static_cast<double>(scaled) -
                  static_cast<double>(fp16_to_f32(load_u16(block + kRows16Dmin + 2 * r))) * static_cast<double>(mins));
      }
      y[g * kRows16 + r] = static_cast<float>(total);
    }
  }
}
}  // namespace

void gemv_q4_k_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  gemv_q4_k_packed(packed, n_groups, n, x, y, plain_block_index);
}

void gemv_q4_k_quads(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  gemv_q4_k_packed(packed, n_groups, n, x, y, quads_block_index);
}

// Element e (0..15) of a six-bit packed Q6_K sub-block whose row bytes start
// at v, decoded as block_layouts.h describes the form (independently of the
// SIMD kernels' shifts).
namespace {
int q6_k_six_bit_value(const uint8_t* v, int e) {
  const int run = e / 4, k = e % 4;
  if (run < 3) return v[64 * run + k] & 0x3F;
  return (v[k] >> 6) | (v[64 + k] >> 6) << 2 | (v[128 + k] >> 6) << 4;
}
}  // namespace

// Exact integer sums per sub-block, scaled in double, of six-bit Q6_K
// blocks wherever block_index(g, b) puts them (in kRows16Q6Bytes).
namespace {
template <typename BlockIndex>
void gemv_q6_k_packed(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y,
                      BlockIndex block_index) {
  const int64_t n_blocks = n / kQ6_KElems;
  for (int64_t g = 0; g < n_groups; ++g) {
    for (int r = 0; r < kRows16; ++r) {
      double total = 0;
      for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* block = packed + block_index(g, b, n_blocks) * kRows16Q6Bytes;
        const int8_t* xq = x.qs + kQ6_KElems * b;
        int64_t scaled = 0;
        for (int s = 0; s < 16; ++s) {
          const uint8_t* v = block + kRows16Q6Qs + 192 * s + 4 * r;
          int64_t sum = 0;
          for (int e = 0; e < 16; ++e) sum += (q6_k_six_bit_value(v, e) - 32) * xq[16 * s + e];
          scaled += sum * static_cast<int8_t>(block[kRows16Q6Scales + 16 * s + r]);
        }
        total += static_cast<double>(x.scales[8 * b]) * static_cast<double>(fp16_to_f32(load_u16(block + 2 * r))) *
                 static_cast<double>(scaled);
      }
      y[g * kRows16 + r] = static_cast<float>(total);
    }
  }
}
}  // namespace

void gemv_q6_k_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  gemv_q6_k_packed(packed, n_groups, n, x, y, plain_block_index);
}

void gemv_q6_k_quads(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  gemv_q6_k_packed(packed, n_groups, n, x, y, quads_block_index);
}

// The 32-value packed forms (Q8_0, Q4_0): exact integer sums per block of
// 32, scaled in double (as dot_q8_unchecked does for the stored blocks).
// `value(step, e)`: value e (0..31) of the row whose bytes in the block's
// step 0 start at `step`.
template <typename Value>
void gemv_block32_rows16_with(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y,
                              int64_t block_bytes, Value value) {
  const int64_t n_blocks = n / 32;
  for (int64_t g = 0; g < n_groups; ++g) {
    for (int r = 0; r < kRows16; ++r) {
      double total = 0;
      for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* block = packed + (g * n_blocks + b) * block_bytes;
        int64_t isum = 0;
        for (int e = 0; e < 32; ++e) isum += value(block + 32 + 4 * r, e) * x.qs[32 * b + e];
        total += static_cast<double>(fp16_to_f32(load_u16(block + 2 * r))) * x.scales[b] * static_cast<double>(isum);
      }
      y[g * kRows16 + r] = static_cast<float>(total);
    }
  }
}

void gemv_q8_0_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  static_assert(layout::kRows16Q8Qs == 32 && layout::kRows16Q8Elems == 32);
  gemv_block32_rows16_with(packed, n_groups, n, x, y, layout::kRows16Q8Bytes,
                           [](const uint8_t* step, int e) { return static_cast<int8_t>(step[64 * (e / 4) + e % 4]); });
}

void gemv_q4_0_rows16(const uint8_t* packed, int64_t n_groups, int64_t n, const QRow& x, float* y) {
  static_assert(layout::kRows16Q4_0Qs == 32 && layout::kRows16Q4_0Elems == 32);
  gemv_block32_rows16_with(packed, n_groups, n, x, y, layout::kRows16Q4_0Bytes, [](const uint8_t* step, int e) {
    const uint8_t byte = step[64 * ((e % 16) / 4) + e % 4];
    return (e < 16 ? byte & 0x0F : byte >> 4) - 8;
  });
}

void attention(const AttentionArgs& args, AttentionScratch&) { attention_reference(args); }

}  // namespace detail::reference

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
constexpr IsaKernels kScalarKernels = {"scalar",
                                       dequantize_unchecked,
                                       dot_unchecked,
                                       nullptr,
                                       gemm_f32,
                                       nullptr,
                                       0,
                                       reference::quantize_acts_row,
                                       nullptr,
                                       nullptr,
                                       nullptr,
                                       reference::gemv,
                                       reference::attention,
                                       silu_mul_scalar,
                                       f32_to_f16_scalar,
                                       f16_to_f32_scalar,
                                       reference::gemv_q4_k_rows16,
                                       reference::gemv_q4_k_quads,
                                       reference::gemv_q6_k_rows16,
                                       reference::gemv_q6_k_quads,
                                       reference::gemv_q8_0_rows16,
                                       reference::gemv_q4_0_rows16,
                                       rms_norm_scalar,
                                       softmax_sums_scalar,
                                       find_above_scalar};
}  // namespace detail

}  // namespace glassbox::kernels
