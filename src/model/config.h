// Model hyper-parameters, normalised from GGUF metadata before the engine
// sees them. Architectures differ only by the fields of this struct; the
// forward pass has no per-architecture branches beyond reading them.
#pragma once

#include <cstdint>
#include <string>

namespace glassbox::gguf {
class File;
}

namespace glassbox {

enum class RopeMode { Norm, Neox };  // adjacent pairs (llama) / half-split (qwen2, qwen3)
enum class RopeScaling { None, Linear, Yarn };

struct ModelConfig {
  std::string arch;  // "llama", "qwen2", "qwen3"
  std::string name;  // general.name when present
  int n_layer = 0;
  int n_embd = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim_k = 0;  // key_length
  int head_dim_v = 0;  // value_length
  int n_ff = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  float norm_eps = 1e-5f;

  RopeMode rope_mode = RopeMode::Norm;
  int rope_dims = 0;  // rotated dimensions per head (<= head_dim_k)
  float rope_base = 10000.0f;
  RopeScaling rope_scaling = RopeScaling::None;
  float rope_freq_scale = 1.0f;  // 1 / scaling factor
  int rope_ctx_orig = 0;         // YaRN: original training context
  float yarn_ext_factor = 0.0f;
  float yarn_attn_factor = 1.0f;
  float yarn_beta_fast = 32.0f;
  float yarn_beta_slow = 1.0f;
  bool rope_freq_factors = false;  // Llama 3: rope_freqs.weight divides the frequencies

  bool qkv_bias = false;  // qwen2
  bool qk_norm = false;   // qwen3: per-head RMSNorm on q and k before RoPE
  bool tied_output = false;

  int q_dim() const { return n_head * head_dim_k; }
  int kv_dim_k() const { return n_head_kv * head_dim_k; }
  int kv_dim_v() const { return n_head_kv * head_dim_v; }
};

// Reads and validates the config; throws glassbox::Error naming the missing or
// inconsistent key. `n_vocab` comes from the token embedding's shape.
ModelConfig config_from_gguf(const gguf::File& file);

}  // namespace glassbox
