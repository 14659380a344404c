// A loaded model (mapped weights + config + tokenizer) and an inference
// context (KV cache + activations) with one straight-line forward pass.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/large_buffer.h"
#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "tensor/tensor_view.h"
#include "tokenizer/tokenizer.h"

namespace glassbox {

struct LayerWeights {
  // Matrices stay in the mapped file (any supported dtype).
  TensorView wq, wk, wv, wo, w_gate, w_up, w_down;
  // Small vectors are dequantized to float at load time.
  std::vector<float> attn_norm, ffn_norm, q_norm, k_norm, bq, bk, bv;
};

struct Weights {
  TensorView token_embd, output;  // output == token_embd when tied
  std::vector<float> output_norm;
  std::vector<float> rope_freq_factors;  // Llama 3 rope_freqs.weight, empty if absent
  std::vector<LayerWeights> layers;
};

struct LoadOptions {
  gguf::ProgressFn progress;  // called while mapping and checking the file
  bool load_tokenizer = true;
  // Q4_K, Q6_K, Q8_0, Q4_0 and Q5_0 matrices also packed in the layout of the one-token
  // kernel, where this CPU has a fast one (more memory, faster generation).
  bool pack_for_generation = true;
};

class Model {
 public:
  // Throws glassbox::Error naming the problem (missing tensor, wrong shape,
  // unsupported type, bad metadata).
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& options = {});

  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const gguf::File& file() const { return *file_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  bool has_tokenizer() const { return tokenizer_ != nullptr; }

 private:
  std::unique_ptr<gguf::File> file_;
  ModelConfig config_;
  Weights weights_;
  LargeBuffer packed_;  // storage behind the TensorView::rows16 of every packed matrix
  std::unique_ptr<Tokenizer> tokenizer_;
};

// Named observation points of the forward pass, for the analysis layer. The
// forward pass checks one pointer per point: with no hooks set it costs
// nothing, and a hook only reads what it is given, never changes it.
struct ForwardHooks {
  // After each layer: the residual stream of the chunk's tokens,
  // [n_tokens][n_embd], for positions pos0 .. pos0+n_tokens-1.
  std::function<void(int layer, int pos0, int n_tokens, const float* residual)> on_layer_output;
  // Attention probabilities of one query (position `pos`) in one head of one
  // layer over keys 0..n_keys-1. Called from pool threads, concurrently for
  // different (pos, head): the hook must be thread-safe. `wants_attention`
  // filters by layer first so that unwatched layers pay nothing.
  std::function<bool(int layer)> wants_attention;
  std::function<void(int layer, int head, int pos, int n_keys, const float* probs)> on_attention;
};

// How the forward pass computes.
enum class Precision : uint8_t {
  // Activations quantized to 8-bit blocks before each quantized matrix
  // product, as llama.cpp does on CPU (integer dot products), F16 KV cache.
  // Logits move by about 0.1 against F32 arithmetic on the same weights
  // (tests/data/reference/MODELS.md) and stay within that of llama.cpp's.
  Fast,
  // F32 activations and F32 KV cache: matches llama.cpp run on the
  // dequantized-F32 weights to about 1e-4.
  Exact,
};

// Element type of the KV cache. Auto: F16 for Fast, F32 for Exact. Q8_0:
// ggml's 8-bit blocks of 32 values (0.53x the bytes of F16, as llama.cpp's
// --cache-type-k/v q8_0); attention then quantizes each query to 8 bits
// too. Needs head sizes that are multiples of 32.
enum class KvCacheType : uint8_t { Auto, F32, F16, Q8_0 };
// "f32", "f16", "q8_0" (as llama.cpp names them), and back: nullopt for an
// unknown name.
std::optional<KvCacheType> parse_kv_cache_type(std::string_view name);
std::string_view kv_cache_type_name(KvCacheType type);

struct ContextOptions {
  int n_ctx = 0;      // 0: min(model's training context, 4096)
  int n_batch = 256;  // tokens per forward chunk during prefill
  int n_threads = 0;  // 0: hardware threads
  Precision precision = Precision::Fast;
  KvCacheType kv_cache = KvCacheType::Auto;
};

// KV cache + scratch activations for one sequence. All buffers are sized at
// construction: eval() does not allocate.
class Context {
 public:
  Context(const Model& model, const ContextOptions& options = {});
  ~Context();

  // Evaluates `tokens` at positions n_past() .. n_past()+size-1 and appends
  // them to the cache. With all_logits, logits for every input position are
  // kept (row i = position n_past_before + i); otherwise only the last one.
  void eval(std::span<const TokenId> tokens, bool all_logits = false);

  const float* logits(int row = -1) const;  // -1: last evaluated position
  int n_logit_rows() const { return n_logit_rows_; }
  int n_vocab() const { return model_.config().n_vocab; }
  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  // Forgets cached positions >= n (rewind / fork from an earlier point).
  void truncate(int n);
  // Makes this context hold the first n cached positions of `src` (same
  // model), copying their K/V rows: a fork that evaluates nothing again.
  void fork_from(const Context& src, int n);
  // Observation hooks (nullptr: none). The hooks object must outlive its use.
  void set_hooks(const ForwardHooks* hooks) { hooks_ = hooks; }
  // Tokens evaluated by this context since construction (forward work done).
  int64_t tokens_evaluated() const { return tokens_evaluated_; }
  const Model& model() const { return model_; }
  ThreadPool& pool() { return pool_; }
  Precision precision() const { return precision_; }
  // F16, F32 or Q8_0 (never Auto).
  KvCacheType kv_cache_type() const { return kv_type_; }
  // The options as resolved (n_ctx, n_batch, n_threads and the KV type
  // filled in): a context made with them computes the same way.
  ContextOptions options() const;

 private:
  void forward_chunk(const TokenId* tokens, int n_tokens, bool all_logits, int logit_row0);
  // quantize_for: one token, each item then quantizes its heads' outputs
  // for this matrix (Buffers::act_attn, begun by the caller).
  void attention_layer(int il, int n_tokens, bool prepare, const TensorView* quantize_for = nullptr);
  void prepare_heads(int il, int t, int kv0, int kv1);
  // Bytes of `elements` cache elements (whole Q8_0 blocks: offsets and
  // lengths of whole heads).
  size_t kv_bytes(size_t elements) const;

  const Model& model_;
  int n_ctx_ = 0;
  int n_batch_ = 0;
  int n_past_ = 0;
  Precision precision_ = Precision::Fast;
  KvCacheType kv_type_ = KvCacheType::F16;
  ThreadPool pool_;
  struct Buffers;
  std::unique_ptr<Buffers> buf_;
  std::vector<float> logits_;  // [rows][n_vocab]
  int n_logit_rows_ = 0;
  const ForwardHooks* hooks_ = nullptr;
  int64_t tokens_evaluated_ = 0;
};

}  // namespace glassbox
