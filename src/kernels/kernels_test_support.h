// What the kernel tests share: the instruction sets and weight types they
// run over, a guard that restores automatic ISA selection (and the CPU
// tuning) when a test that forces one ends, random rows and activations,
// and an attention call's arguments.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "tensor/fp16.h"

namespace glassbox::kernels::test_support {

inline constexpr const char* kAllIsas[] = {"scalar", "avx2", "avx512", "avx512vnni"};
inline constexpr DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,
                                      DType::Q5_0, DType::Q8_0, DType::Q4_K, DType::Q6_K};

class IsaGuard {
 public:
  IsaGuard() = default;
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;
  ~IsaGuard() { force_isa("auto"); }
};

// The ISAs of kAllIsas this CPU runs (forcing each in turn).
inline std::vector<std::string> available_isas() {
  IsaGuard guard;
  std::vector<std::string> out;
  for (const char* isa : kAllIsas)
    if (force_isa(isa)) out.push_back(isa);
  return out;
}

inline void put_u16(std::vector<uint8_t>& bytes, size_t at, uint16_t v) { std::memcpy(&bytes[at], &v, 2); }

// Random stored rows: random bytes with finite scales of moderate size.
inline std::vector<uint8_t> random_rows(DType type, int64_t n, int64_t rows, int64_t stride, std::mt19937& rng) {
  std::vector<uint8_t> bytes(static_cast<size_t>(stride * rows));
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::uniform_real_distribution<float> scale(-0.1f, 0.1f);
  for (int64_t r = 0; r < rows; ++r) {
    const size_t base = static_cast<size_t>(r * stride);
    const size_t row_len = static_cast<size_t>(row_bytes(type, n));
    auto half = [&](size_t at, float f) { put_u16(bytes, base + at, f32_to_fp16(f)); };
    switch (type) {
      case DType::F32:
        for (int64_t i = 0; i < n; ++i) {
          const float f = value(rng);
          std::memcpy(&bytes[base + 4 * i], &f, 4);
        }
        break;
      case DType::F16:
        for (int64_t i = 0; i < n; ++i) half(2 * i, value(rng));
        break;
      case DType::BF16:
        for (int64_t i = 0; i < n; ++i) put_u16(bytes, base + 2 * i, f32_to_bf16(value(rng)));
        break;
      case DType::Q4_0:
      case DType::Q5_0:
      case DType::Q8_0:
        for (size_t at = 0; at < row_len; at += static_cast<size_t>(traits(type).block_bytes)) half(at, scale(rng));
        break;
      case DType::Q4_K:
        for (size_t at = 0; at < row_len; at += 144) {
          half(at, scale(rng) * 0.1f);
          half(at + 2, scale(rng) * 0.1f);
        }
        break;
      case DType::Q6_K:
        for (size_t at = 0; at < row_len; at += 210) half(at + 208, scale(rng) * 0.1f);
        break;
      default:
        break;
    }
  }
  return bytes;
}

// Q8_0 rows as ggml's quantizer writes them: no value -128 (the packed
// form cannot hold it; Rows16Q8.MinusOneTwentyEightStaysInStoredRows).
inline void clear_minus_128(DType type, std::vector<uint8_t>& rows, int64_t n, int64_t n_rows, int64_t stride) {
  if (type != DType::Q8_0) return;
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t b = 0; b < n / 32; ++b)
      for (int i = 0; i < 32; ++i) {
        uint8_t& v = rows[static_cast<size_t>(r * stride + b * 34 + 2 + i)];
        if (v == 0x80) v = 0x81;
      }
}

inline std::vector<float> random_floats(int64_t n, std::mt19937& rng, float range = 1.0f) {
  std::uniform_real_distribution<float> value(-range, range);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = value(rng);
  return x;
}

// Attention over a cache of kv_type (rows kv_stride values apart): query and
// output heads head_stride values apart, every token's heads after the
// previous token's, scores scaled by 1 / sqrt(head_dim).
struct AttentionShape {
  int n_tokens, n_heads, head_dim, n_past;
};
inline AttentionArgs attention_args(const AttentionShape& s, const float* q, float* out, int64_t head_stride,
                                    DType kv_type, const void* k, const void* v, int64_t kv_stride) {
  AttentionArgs a;
  a.q = q;
  a.q_head_stride = head_stride;
  a.q_token_stride = static_cast<int64_t>(s.n_heads) * head_stride;
  a.out = out;
  a.out_head_stride = head_stride;
  a.out_token_stride = a.q_token_stride;
  a.n_tokens = s.n_tokens;
  a.n_heads = s.n_heads;
  a.head_dim = s.head_dim;
  a.n_past = s.n_past;
  a.kv_type = kv_type;
  a.k = k;
  a.v = v;
  a.kv_stride = kv_stride;
  a.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  return a;
}

}  // namespace glassbox::kernels::test_support
