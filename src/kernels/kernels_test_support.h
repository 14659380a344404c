// What the kernel tests share: the instruction sets and weight types they
// run over, and a guard that restores automatic ISA selection when a test
// that forces one ends.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "kernels/kernels.h"

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
