// Row quantizers. Every function mirrors the arithmetic of ggml's reference
// quantizer for its type (same operations in the same order, float only, no
// fused multiply-add: this file is compiled with -ffp-contract=off), because
// the goal is byte equality with files written by llama-quantize. Block
// layouts are those in kernels/block_layouts.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "base/error.h"
#include "kernels/block_layouts.h"
#include "quantize/quantize.h"
#include "tensor/fp16.h"

namespace glassbox::quantize {

namespace {

using namespace glassbox::kernels::layout;

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 pushes
// the fraction out of the mantissa, and the low mantissa bits are then the
// rounded integer. ggml rounds this way in all K-quant searches. Unlike a
// float-to-int cast it is defined for any input (NaN and huge values give
// garbage that callers clamp), so bad weights cannot cause UB.
inline int round_nearest(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// Float to int by truncation toward zero, saturating to [lo, hi]; NaN gives lo.
inline int truncate_clamped(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

inline void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline uint16_t half(float v) { return f32_to_fp16(v); }
inline float half_value(uint16_t h) { return fp16_to_f32(h); }

// ---------------------------------------------------------------- Q8_0
// d = absmax / 127, q = round(x / d) (halfway away from zero, like roundf).
void quantize_q8_0(const float* x, uint8_t* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, x += kQ8_0Elems, out += kQ8_0Bytes) {
    float absmax = 0.0f;
    for (int j = 0; j < kQ8_0Elems; ++j) absmax = std::max(absmax, std::fabs(x[j]));
    const float d = absmax / 127;
    const float inv_d = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(out, half(d));
    for (int j = 0; j < kQ8_0Elems; ++j) {
      const float r = std::round(x[j] * inv_d);
      const int q = r >= -128.0f && r <= 127.0f ? static_cast<int>(r) : 0;
      out[kQ8_0Qs + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
}

// ---------------------------------------------------------------- Q4_0 / Q5_0
// The scale is the signed value of largest magnitude divided by -8 (Q4_0) or
// -16 (Q5_0), so that value maps exactly to level 0; the rest round half up
// through truncation of x / d + offset + 0.5.
struct SignedAbsMax {
  float signed_value = 0.0f;
};

SignedAbsMax signed_absmax(const float* x, int n) {
  float absmax = 0.0f;
  SignedAbsMax r;
  for (int j = 0; j < n; ++j) {
    if (absmax < std::fabs(x[j])) {
      absmax = std::fabs(x[j]);
      r.signed_value = x[j];
    }
  }
  return r;
}

void quantize_q4_0(const float* x, uint8_t* out, int64_t n_blocks) {
  constexpr int kHalf = kQ4_0Elems / 2;
  for (int64_t b = 0; b < n_blocks; ++b, x += kQ4_0Elems, out += kQ4_0Bytes) {
    const float d = signed_absmax(x, kQ4_0Elems).signed_value / -8;
    const float inv_d = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(out, half(d));
    for (int j = 0; j < kHalf; ++j) {
      const int lo = std::min(15, truncate_clamped(x[j] * inv_d + 8.5f, 0, 127));
      const int hi = std::min(15, truncate_clamped(x[kHalf + j] * inv_d + 8.5f, 0, 127));
      out[kQ4_0Qs + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_q5_0(const float* x, uint8_t* out, int64_t n_blocks) {
  constexpr int kHalf = kQ5_0Elems / 2;
  for (int64_t b = 0; b < n_blocks; ++b, x += kQ5_0Elems, out += kQ5_0Bytes) {
    const float d = signed_absmax(x, kQ5_0Elems).signed_value / -16;
    const float inv_d = d != 0.0f ? 1.0f / d : 0.0f;
    store_u16(out, half(d));
    uint32_t high_bits = 0;
    for (int j = 0; j < kHalf; ++j) {
      const int lo = std::min(31, truncate_clamped(x[j] * inv_d + 16.5f, 0, 127));
      const int hi = std::min(31, truncate_clamped(x[kHalf + j] * inv_d + 16.5f, 0, 127));
      out[kQ5_0Qs + j] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
      high_bits |= static_cast<uint32_t>((lo >> 4) & 1) << j;
      high_bits |= static_cast<uint32_t>((hi >> 4) & 1) << (j + kHalf);
    }
    std::memcpy(out + kQ5_0Qh, &high_bits, 4);
  }
}

// ---------------------------------------------------------------- Q4_K
// Fits levels 0..n_levels-1 with an affine map x ≈ scale * L - min_offset
// (min_offset >= 0) to one sub-block, minimising the weighted squared error:
// start from the min/max grid, then try n_steps+1 slightly different grid
// spacings and keep the least-squares (scale, min) of the best one (ggml's
// make_qkx2_quants). Returns scale; stores min_offset and the levels.
float fit_affine_levels(int n, int max_level, const float* x, const float* weights, uint8_t* levels, float* min_offset,
                        uint8_t* trial_levels, float rmin, float rdelta, int n_steps) {
  float lo = x[0];
  float hi = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    std::fill(levels, levels + n, uint8_t{0});
    *min_offset = -lo;
    return 0.0f;
  }
  float inv_scale = max_level / (hi - lo);
  float scale = 1 / inv_scale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = round_nearest(inv_scale * (x[i] - lo));
    levels[i] = static_cast<uint8_t>(std::clamp(l, 0, max_level));
    const float diff = scale * levels[i] + lo - x[i];
    best_error += weights[i] * (diff * diff);
  }
  for (int step = 0; step <= n_steps; ++step) {
    inv_scale = (rmin + rdelta * step + max_level) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(round_nearest(inv_scale * (x[i] - lo)), 0, max_level);
      trial_levels[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float trial_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float trial_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (trial_min > 0) {
        trial_min = 0;
        trial_scale = sum_xl / sum_l2;
      }
      float error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = trial_scale * trial_levels[i] + trial_min - x[i];
        error += weights[i] * (diff * diff);
      }
      if (error < best_error) {
        std::copy(trial_levels, trial_levels + n, levels);
        best_error = error;
        scale = trial_scale;
        lo = trial_min;
      }
    }
  }
  *min_offset = -lo;
  return scale;
}

// Q4_K: eight sub-blocks of 32 each get a (scale, min) fit; those are then
// quantized to 6 bits against the block's fp16 d and dmin, and the elements
// are re-quantized with the rounded scales.
void quantize_q4_k(const float* x, uint8_t* out, int64_t n_blocks) {
  constexpr int kSub = 32;
  constexpr int kSubs = kQ4_KElems / kSub;
  for (int64_t b = 0; b < n_blocks; ++b, x += kQ4_KElems, out += kQ4_KBytes) {
    uint8_t levels[kQ4_KElems];
    uint8_t trial[kSub];
    float weights[kSub];
    float scales[kSubs];
    float mins[kSubs];
    float max_scale = 0;
    float max_min = 0;
    for (int s = 0; s < kSubs; ++s) {
      const float* xs = x + kSub * s;
      float sum_x2 = 0;
      for (int l = 0; l < kSub; ++l) sum_x2 += xs[l] * xs[l];
      const float rms = std::sqrt(sum_x2 / kSub);
      for (int l = 0; l < kSub; ++l) weights[l] = rms + std::fabs(xs[l]);
      scales[s] = fit_affine_levels(kSub, 15, xs, weights, levels + kSub * s, &mins[s], trial, -1.0f, 0.1f, 20);
      if (scales[s] > max_scale) max_scale = scales[s];
      if (mins[s] > max_min) max_min = mins[s];
    }

    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t* packed = out + kQ4_KScales;
    std::memset(packed, 0, 12);
    for (int s = 0; s < kSubs; ++s) {
      // ggml stores nearest_int(...) in a uint8_t before clamping; values
      // here are in [0, 63] for finite input, the mask keeps bad input in range.
      const int ls = std::min(63, round_nearest(inv_scale * scales[s]) & 0xff);
      const int lm = std::min(63, round_nearest(inv_min * mins[s]) & 0xff);
      if (s < 4) {
        packed[s] = static_cast<uint8_t>(ls);
        packed[s + 4] = static_cast<uint8_t>(lm);
      } else {
        packed[s + 4] = static_cast<uint8_t>((ls & 0xf) | ((lm & 0xf) << 4));
        packed[s - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        packed[s] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    const uint16_t d_bits = half(max_scale / 63.f);
    const uint16_t dmin_bits = half(max_min / 63.f);
    store_u16(out, d_bits);
    store_u16(out + kQ4_KDmin, dmin_bits);

    for (int s = 0; s < kSubs; ++s) {
      uint8_t sc, m;
      q4_k_scale_min(s, packed, &sc, &m);
      const float d = half_value(d_bits) * sc;
      if (d == 0.0f) continue;  // keeps the levels of the fit, as ggml does
      const float dm = half_value(dmin_bits) * m;
      for (int i = 0; i < kSub; ++i) {
        const int l = round_nearest((x[kSub * s + i] + dm) / d);
        levels[kSub * s + i] = static_cast<uint8_t>(std::clamp(l, 0, 15));
      }
    }

    uint8_t* qs = out + kQ4_KQs;
    for (int j = 0; j < kQ4_KElems; j += 64, qs += 32) {
      for (int l = 0; l < 32; ++l) qs[l] = static_cast<uint8_t>(levels[j + l] | (levels[j + l + 32] << 4));
    }
  }
}

// ---------------------------------------------------------------- Q6_K
// Symmetric fit of levels -n_levels..n_levels-1 to a sub-block with weights
// x^2: start from the grid that maps the largest-magnitude value to
// -n_levels, then try 18 nearby grid spacings and keep the one whose
// least-squares scale explains the most (ggml's make_qx_quants with
// rmse_type 1). Returns the scale; levels are stored offset by n_levels.
float fit_symmetric_levels(int n, int n_levels, const float* x, int8_t* levels) {
  float max = 0;
  float absmax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > absmax) {
      absmax = ax;
      max = x[i];
    }
  }
  if (absmax < 1e-15f) {  // ggml's GROUP_MAX_EPS: an all-zero group
    std::fill(levels, levels + n, int8_t{0});
    return 0.0f;
  }
  float inv_scale = -n_levels / max;
  float sum_lx = 0;
  float sum_l2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(round_nearest(inv_scale * x[i]), -n_levels, n_levels - 1);
    levels[i] = static_cast<int8_t>(l + n_levels);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * l;
    sum_l2 += w * l * l;
  }
  float scale = sum_l2 != 0.0f ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    inv_scale = -(n_levels + 0.1f * step) / max;
    sum_lx = sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(round_nearest(inv_scale * x[i]), -n_levels, n_levels - 1);
      const float w = x[i] * x[i];
      sum_lx += w * x[i] * l;
      sum_l2 += w * l * l;
    }
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      for (int i = 0; i < n; ++i) {
        const int l = std::clamp(round_nearest(inv_scale * x[i]), -n_levels, n_levels - 1);
        levels[i] = static_cast<int8_t>(l + n_levels);
      }
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

// Q6_K: sixteen sub-blocks of 16 get a symmetric fit; the scales are stored
// as int8 against the block's fp16 d and the elements re-quantized with them.
void quantize_q6_k(const float* x, uint8_t* out, int64_t n_blocks) {
  constexpr int kSub = 16;
  constexpr int kSubs = kQ6_KElems / kSub;
  for (int64_t b = 0; b < n_blocks; ++b, x += kQ6_KElems, out += kQ6_KBytes) {
    int8_t levels[kQ6_KElems];
    float scales[kSubs];
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int s = 0; s < kSubs; ++s) {
      scales[s] = fit_symmetric_levels(kSub, 32, x + kSub * s, levels + kSub * s);
      const float abs_scale = std::fabs(scales[s]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales[s];
      }
    }
    if (max_abs_scale < 1e-15f) {  // all-zero block: everything 0, d = 0
      std::memset(out, 0, kQ6_KBytes);
      continue;
    }

    const float inv_scale = -128.f / max_scale;
    const uint16_t d_bits = half(1 / inv_scale);
    store_u16(out + kQ6_KD, d_bits);
    int8_t* block_scales = reinterpret_cast<int8_t*>(out + kQ6_KScales);
    for (int s = 0; s < kSubs; ++s) {
      // In [-128, 128] for finite input; the clamp keeps bad input in range.
      block_scales[s] = static_cast<int8_t>(std::clamp(round_nearest(inv_scale * scales[s]), -128, 127));
    }

    for (int s = 0; s < kSubs; ++s) {
      const float d = half_value(d_bits) * block_scales[s];
      if (d == 0.0f) continue;  // keeps the levels of the fit, as ggml does
      for (int i = 0; i < kSub; ++i) {
        const int l = std::clamp(round_nearest(x[kSub * s + i] / d), -32, 31);
        levels[kSub * s + i] = static_cast<int8_t>(l + 32);
      }
    }

    uint8_t* ql = out;
    uint8_t* qh = out + kQ6_KQh;
    for (int j = 0; j < kQ6_KElems; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = levels[j + l];
        const int q2 = levels[j + l + 32];
        const int q3 = levels[j + l + 64];
        const int q4 = levels[j + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0xf) | ((q3 & 0xf) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0xf) | ((q4 & 0xf) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

}  // namespace

bool can_quantize_to(DType type) {
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q4_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row(DType type, const float* src, uint8_t* dst, int64_t n) {
  if (!can_quantize_to(type)) {
    throw Error("quantize: cannot quantize to type " + std::string(dtype_name(type)));
  }
  const int64_t block = traits(type).block_elems;
  if (n < 0 || n % block != 0) {
    throw Error("quantize: row of " + std::to_string(n) + " values is not a multiple of the " +
                std::string(dtype_name(type)) + " block size " + std::to_string(block));
  }
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) store_u16(dst + 2 * i, f32_to_fp16(src[i]));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) store_u16(dst + 2 * i, f32_to_bf16(src[i]));
      return;
    case DType::Q8_0:
      return quantize_q8_0(src, dst, n / block);
    case DType::Q4_0:
      return quantize_q4_0(src, dst, n / block);
    case DType::Q5_0:
      return quantize_q5_0(src, dst, n / block);
    case DType::Q4_K:
      return quantize_q4_k(src, dst, n / block);
    case DType::Q6_K:
      return quantize_q6_k(src, dst, n / block);
    default:
      break;
  }
}

}  // namespace glassbox::quantize
