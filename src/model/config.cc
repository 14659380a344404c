#include "model/config.h"

#include <cmath>
#include <string_view>

#include "base/error.h"
#include "gguf/gguf.h"

namespace glassbox {
namespace {

// What distinguishes the supported architectures. Adding an architecture
// means adding a row, not a branch in the forward pass.
struct ArchTraits {
  std::string_view name;
  RopeMode rope_mode;
  bool qkv_bias;
  bool qk_norm;
};

constexpr ArchTraits kArchitectures[] = {
    {"llama", RopeMode::Norm, false, false},
    {"qwen2", RopeMode::Neox, true, false},
    {"qwen3", RopeMode::Neox, false, true},
};

class MetaReader {
 public:
  MetaReader(const gguf::File& f, std::string arch) : f_(f), arch_(std::move(arch)) {}

  std::string key(std::string_view suffix) const { return arch_ + "." + std::string(suffix); }

  int required_int(std::string_view suffix, int64_t lo, int64_t hi) const {
    const std::string k = key(suffix);
    const auto v = f_.get_int(k);
    if (!v) throw Error(f_.path() + ": missing or non-integer metadata key '" + k + "'");
    return checked(k, *v, lo, hi);
  }
  int optional_int(std::string_view suffix, int fallback, int64_t lo, int64_t hi) const {
    const std::string k = key(suffix);
    if (!f_.find(k)) return fallback;
    const auto v = f_.get_int(k);
    if (!v) throw Error(f_.path() + ": metadata key '" + k + "' is not an integer");
    return checked(k, *v, lo, hi);
  }
  float optional_float(std::string_view suffix, float fallback) const {
    const std::string k = key(suffix);
    if (!f_.find(k)) return fallback;
    const auto v = f_.get_float(k);
    if (!v || !std::isfinite(*v)) throw Error(f_.path() + ": metadata key '" + k + "' is not a finite number");
    return static_cast<float>(*v);
  }

 private:
  int checked(const std::string& k, int64_t v, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi)
      throw Error(f_.path() + ": metadata '" + k + "' = " + std::to_string(v) + " is out of range [" +
                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int>(v);
  }
  const gguf::File& f_;
  std::string arch_;
};

}  // namespace

ModelConfig config_from_gguf(const gguf::File& f) {
  ModelConfig c;
  const auto arch = f.get_string("general.architecture");
  if (!arch) throw Error(f.path() + ": missing metadata key 'general.architecture'");
  const ArchTraits* traits = nullptr;
  for (const auto& a : kArchitectures)
    if (a.name == *arch) traits = &a;
  if (!traits) throw Error(f.path() + ": unsupported architecture '" + *arch + "' (supported: llama, qwen2, qwen3)");
  c.arch = *arch;
  c.name = f.get_string("general.name").value_or(c.arch);
  c.rope_mode = traits->rope_mode;
  c.qkv_bias = traits->qkv_bias;
  c.qk_norm = traits->qk_norm;

  const MetaReader m(f, c.arch);
  c.n_layer = m.required_int("block_count", 1, 4096);
  c.n_embd = m.required_int("embedding_length", 1, 1 << 20);
  c.n_ff = m.required_int("feed_forward_length", 1, 1 << 22);
  c.n_head = m.required_int("attention.head_count", 1, 4096);
  c.n_head_kv = m.optional_int("attention.head_count_kv", c.n_head, 1, c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    throw Error(f.path() + ": head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                std::to_string(c.n_head_kv));
  const int default_head_dim = c.n_embd % c.n_head == 0 ? c.n_embd / c.n_head : 0;
  c.head_dim_k = m.optional_int("attention.key_length", default_head_dim, 1, 1 << 16);
  c.head_dim_v = m.optional_int("attention.value_length", c.head_dim_k, 1, 1 << 16);
  if (c.head_dim_k == 0) throw Error(f.path() + ": embedding_length is not a multiple of head_count and no key_length");
  c.n_ctx_train = m.optional_int("context_length", 2048, 1, 1 << 24);
  c.norm_eps = m.optional_float("attention.layer_norm_rms_epsilon", 1e-5f);
  if (!(c.norm_eps > 0.0f)) throw Error(f.path() + ": layer_norm_rms_epsilon must be positive");
  c.rope_dims = m.optional_int("rope.dimension_count", c.head_dim_k, 2, c.head_dim_k);
  if (c.rope_dims % 2 != 0) throw Error(f.path() + ": rope.dimension_count must be even");
  c.rope_base = m.optional_float("rope.freq_base", 10000.0f);
  if (!(c.rope_base > 1.0f)) throw Error(f.path() + ": rope.freq_base must be > 1");

  // RoPE scaling: `rope.scaling.type` (linear / yarn / none) with its factor;
  // older files carry only `rope.scale_linear`.
  const std::string scaling = f.get_string(m.key("rope.scaling.type")).value_or("");
  float factor = m.optional_float("rope.scaling.factor", 0.0f);
  if (scaling.empty() && f.find(m.key("rope.scale_linear"))) {
    factor = m.optional_float("rope.scale_linear", 1.0f);
    c.rope_scaling = factor != 1.0f ? RopeScaling::Linear : RopeScaling::None;
  } else if (scaling == "linear") {
    c.rope_scaling = RopeScaling::Linear;
  } else if (scaling == "yarn") {
    c.rope_scaling = RopeScaling::Yarn;
  } else if (scaling.empty() || scaling == "none") {
    c.rope_scaling = RopeScaling::None;
  } else {
    throw Error(f.path() + ": unsupported rope scaling type '" + scaling + "'");
  }
  if (c.rope_scaling != RopeScaling::None) {
    if (!(factor > 0.0f)) throw Error(f.path() + ": rope scaling factor must be positive");
    c.rope_freq_scale = 1.0f / factor;
  }
  c.rope_ctx_orig = m.optional_int("rope.scaling.original_context_length", c.n_ctx_train, 1, 1 << 24);
  if (c.rope_scaling == RopeScaling::Yarn) {
    c.yarn_ext_factor = m.optional_float("rope.scaling.yarn_ext_factor", 1.0f);
    c.yarn_attn_factor = m.optional_float("rope.scaling.attn_factor", 1.0f);
    c.yarn_beta_fast = m.optional_float("rope.scaling.yarn_beta_fast", 32.0f);
    c.yarn_beta_slow = m.optional_float("rope.scaling.yarn_beta_slow", 1.0f);
  }

  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd) throw Error(f.path() + ": missing tensor 'token_embd.weight'");
  if (embd->n_dims != 2 || embd->ne[0] != c.n_embd)
    throw Error(f.path() + ": tensor 'token_embd.weight' has shape incompatible with embedding_length " +
                std::to_string(c.n_embd));
  if (embd->ne[1] < 1 || embd->ne[1] > (1 << 24)) throw Error(f.path() + ": absurd vocabulary size");
  c.n_vocab = static_cast<int>(embd->ne[1]);
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  c.rope_freq_factors = f.find_tensor("rope_freqs.weight") != nullptr;
  return c;
}

}  // namespace glassbox
