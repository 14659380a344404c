#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <span>

#include "base/error.h"
#include "kernels/kernels.h"
#include "tensor/fp16.h"

namespace glassbox {

// ---------------------------------------------------------------- loading

namespace {

class TensorLoader {
 public:
  explicit TensorLoader(const gguf::File& f) : f_(f) {}

  // A required matrix [rows][cols] (ggml ne = {cols, rows}) of a supported type.
  TensorView matrix(const std::string& name, int64_t cols, int64_t rows) const {
    const gguf::TensorInfo& t = require(name);
    if (t.n_dims != 2 || t.ne[0] != cols || t.ne[1] != rows)
      throw Error(f_.path() + ": tensor '" + name + "' has shape " + shape(t) + ", expected [" + std::to_string(cols) +
                  ", " + std::to_string(rows) + "]");
    return t.view();
  }

  // A 1-D vector of length n, dequantized to float.
  std::vector<float> vector(const std::string& name, int64_t n) const {
    const gguf::TensorInfo& t = require(name);
    if (t.n_dims != 1 || t.ne[0] != n)
      throw Error(f_.path() + ": tensor '" + name + "' has shape " + shape(t) + ", expected [" + std::to_string(n) +
                  "]");
    std::vector<float> out(n);
    kernels::dequantize_row(t.type, t.data, out.data(), n);
    return out;
  }

  bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }

 private:
  const gguf::TensorInfo& require(const std::string& name) const {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    if (!t) throw Error(f_.path() + ": missing required tensor '" + name + "'");
    const auto tr = dtype_traits(static_cast<uint32_t>(t->type));
    if (!tr || !tr->supported)
      throw Error(f_.path() + ": tensor '" + name + "' has type " + std::string(tr ? tr->name : "?") +
                  ", which glassbox cannot compute with (supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K)");
    return *t;
  }
  static std::string shape(const gguf::TensorInfo& t) {
    std::string s = "[";
    for (int i = 0; i < t.n_dims; ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
    return s + "]";
  }
  const gguf::File& f_;
};

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
  auto m = std::unique_ptr<Model>(new Model());
  m->file_ = gguf::File::open(path, options.progress);
  m->config_ = config_from_gguf(*m->file_);
  const ModelConfig& c = m->config_;
  const TensorLoader t(*m->file_);
  Weights& w = m->weights_;

  w.token_embd = t.matrix("token_embd.weight", c.n_embd, c.n_vocab);
  w.output = c.tied_output ? w.token_embd : t.matrix("output.weight", c.n_embd, c.n_vocab);
  w.output_norm = t.vector("output_norm.weight", c.n_embd);
  if (c.rope_freq_factors) w.rope_freq_factors = t.vector("rope_freqs.weight", c.rope_dims / 2);

  w.layers.resize(c.n_layer);
  for (int il = 0; il < c.n_layer; ++il) {
    LayerWeights& l = w.layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    l.attn_norm = t.vector(p + "attn_norm.weight", c.n_embd);
    l.wq = t.matrix(p + "attn_q.weight", c.n_embd, c.q_dim());
    l.wk = t.matrix(p + "attn_k.weight", c.n_embd, c.kv_dim_k());
    l.wv = t.matrix(p + "attn_v.weight", c.n_embd, c.kv_dim_v());
    l.wo = t.matrix(p + "attn_output.weight", c.n_head * c.head_dim_v, c.n_embd);
    if (c.qkv_bias) {
      l.bq = t.vector(p + "attn_q.bias", c.q_dim());
      l.bk = t.vector(p + "attn_k.bias", c.kv_dim_k());
      l.bv = t.vector(p + "attn_v.bias", c.kv_dim_v());
    }
    if (c.qk_norm) {
      l.q_norm = t.vector(p + "attn_q_norm.weight", c.head_dim_k);
      l.k_norm = t.vector(p + "attn_k_norm.weight", c.head_dim_k);
    }
    l.ffn_norm = t.vector(p + "ffn_norm.weight", c.n_embd);
    l.w_gate = t.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
    l.w_up = t.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
    l.w_down = t.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
  }
  if (options.pack_for_generation) {
    // All packed matrices in one buffer of huge pages, each at a 64-byte
    // boundary: sized first, then filled.
    std::vector<TensorView*> to_pack;
    for (LayerWeights& l : w.layers)
      for (TensorView* W : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) to_pack.push_back(W);
    // A tied output matrix too: token_embd keeps the original rows for the
    // embedding lookup.
    to_pack.push_back(&w.output);
    std::erase_if(to_pack, [](const TensorView* W) {
      return !kernels::can_pack_rows16(*W) || !kernels::have_fast_rows16(W->type);
    });
    auto padded = [](const TensorView& W) { return (static_cast<size_t>(kernels::rows16_bytes(W)) + 63) / 64 * 64; };
    size_t total = 0;
    for (const TensorView* W : to_pack) total += padded(*W);
    m->packed_ = LargeBuffer(total);
    auto* at = static_cast<uint8_t*>(m->packed_.data());
    for (TensorView* W : to_pack) {
      kernels::attach_rows16(*W, at);
      at += padded(*W);
    }
  }
  if (options.load_tokenizer) m->tokenizer_ = Tokenizer::from_gguf(*m->file_);
  return m;
}

// ---------------------------------------------------------------- context

// Activations for one chunk of up to n_batch tokens, plus the KV cache.
struct Context::Buffers {
  // [n_batch][dim] row-major activations
  std::vector<float> x, xn, q, k, v, attn_out, proj, gate, up;
  std::vector<float> scores;              // [n_threads][n_ctx] attention scratch (hooks, unusual shapes)
  std::vector<float> probs;               // [n_threads][n_ctx] attention probabilities handed to hooks
  std::vector<float> rope_cos, rope_sin;  // [n_batch][rope_dims/2]
  std::vector<int> pos;
  // KV cache: [n_layer][n_head_kv][n_ctx][head_dim], F32 or F16 (the other
  // pair empty).
  // In huge pages like the packed weights (base/large_buffer.h; not
  // measured apart: attention is a few percent of a step). Pages are
  // committed as positions are first written: at 4096 positions of head
  // size 128 a run is 1 MiB, so the first token already touches every
  // 2 MiB page (the zero-filled vectors before committed all at creation).
  // Elements of the context's KV type (F32, F16, or Q8_0 blocks), addressed
  // through kv_bytes().
  LargeArray<uint8_t> k_cache, v_cache;
  // Fast path: the inputs of the matrix products with their quantized forms.
  kernels::Activations act_xn, act_attn, act_hidden;
  std::vector<kernels::AttentionScratch> attention_scratch;  // one per pool thread
};

Context::Context(const Model& model, const ContextOptions& o)
    : model_(model), pool_(o.n_threads, kernels::prepare_thread_scratch), buf_(std::make_unique<Buffers>()) {
  const ModelConfig& c = model.config();
  n_ctx_ = o.n_ctx > 0 ? o.n_ctx : std::min(c.n_ctx_train, 4096);
  n_batch_ = std::max(1, std::min(o.n_batch, n_ctx_));
  precision_ = o.precision;
  kv_type_ = o.kv_cache != KvCacheType::Auto ? o.kv_cache
                                             : (precision_ == Precision::Fast ? KvCacheType::F16 : KvCacheType::F32);
  Buffers& b = *buf_;
  const size_t nb = n_batch_;
  b.x.resize(nb * c.n_embd);
  b.xn.resize(nb * std::max(c.n_embd, c.n_ff));
  b.q.resize(nb * c.q_dim());
  b.k.resize(nb * c.kv_dim_k());
  b.v.resize(nb * c.kv_dim_v());
  b.attn_out.resize(nb * c.n_head * c.head_dim_v);
  b.proj.resize(nb * c.n_embd);
  b.gate.resize(nb * c.n_ff);
  b.up.resize(nb * c.n_ff);
  b.scores.resize(static_cast<size_t>(pool_.size()) * n_ctx_);
  b.probs.resize(static_cast<size_t>(pool_.size()) * n_ctx_);
  b.rope_cos.resize(nb * c.rope_dims / 2);
  b.rope_sin.resize(nb * c.rope_dims / 2);
  b.pos.resize(nb);
  // Head-major: [layer][KV head][position][head dim], so that the keys (and
  // values) one attention work item reads are one contiguous run.
  if (kv_type_ == KvCacheType::Q8_0 && (c.head_dim_k % 32 != 0 || c.head_dim_v % 32 != 0))
    throw Error("KV cache type q8_0 needs head sizes that are multiples of 32; this model's are " +
                std::to_string(c.head_dim_k) + " (keys) and " + std::to_string(c.head_dim_v) +
                " (values): use f16 or f32");
  const size_t k_elems = static_cast<size_t>(c.n_layer) * n_ctx_ * c.kv_dim_k();
  const size_t v_elems = static_cast<size_t>(c.n_layer) * n_ctx_ * c.kv_dim_v();
  b.k_cache = LargeArray<uint8_t>(kv_bytes(k_elems));
  b.v_cache = LargeArray<uint8_t>(kv_bytes(v_elems));
  if (precision_ == Precision::Fast) {
    // Sized now so that evaluation does not allocate. The final norm's
    // output goes through act_xn too.
    // Matrices multiplied with F32 activations read the tokens in panels
    // (kernels.h).
    auto f32_acts = [](const TensorView& W) {
      return kernels::act_format_for(W.type) == kernels::ActFormat::F32 || kernels::multi_token_f32(W.type);
    };
    bool xn_panels = f32_acts(model.weights().output), attn_panels = false, hidden_panels = false;
    for (const LayerWeights& l : model.weights().layers) {
      xn_panels =
          xn_panels || f32_acts(l.wq) || f32_acts(l.wk) || f32_acts(l.wv) || f32_acts(l.w_gate) || f32_acts(l.w_up);
      attn_panels = attn_panels || f32_acts(l.wo);
      hidden_panels = hidden_panels || f32_acts(l.w_down);
    }
    b.act_xn.reserve(n_batch_, c.n_embd, xn_panels);
    b.act_attn.reserve(n_batch_, c.n_head * c.head_dim_v, attn_panels);
    b.act_hidden.reserve(n_batch_, c.n_ff, hidden_panels);
  }
  // Attention scratch per thread: the running outputs of a block of up to
  // 16 tokens times the query heads of a KV head, and a block of 64 keys and
  // values in F32 (the kernels' needs, padded).
  const size_t head = static_cast<size_t>(std::max(c.head_dim_k, c.head_dim_v) + 16);
  const size_t group = static_cast<size_t>(c.n_head / std::max(1, c.n_head_kv));
  b.attention_scratch.resize(static_cast<size_t>(pool_.size()));
  for (auto& s : b.attention_scratch) s.buf.resize(16 * group * head + 4 * (head + 64) + 2 * 64 * head + 256);
  logits_.resize(c.n_vocab);
}

Context::~Context() = default;

ContextOptions Context::options() const {
  ContextOptions o;
  o.n_ctx = n_ctx_;
  o.n_batch = n_batch_;
  o.n_threads = pool_.size();
  o.precision = precision_;
  o.kv_cache = kv_type_;
  return o;
}

void Context::truncate(int n) { n_past_ = std::clamp(n, 0, n_past_); }

std::optional<KvCacheType> parse_kv_cache_type(std::string_view name) {
  if (name == "f32") return KvCacheType::F32;
  if (name == "f16") return KvCacheType::F16;
  if (name == "q8_0") return KvCacheType::Q8_0;
  return std::nullopt;
}

std::string_view kv_cache_type_name(KvCacheType type) {
  switch (type) {
    case KvCacheType::F32:
      return "f32";
    case KvCacheType::F16:
      return "f16";
    case KvCacheType::Q8_0:
      return "q8_0";
    default:
      return "auto";
  }
}

namespace {

DType kv_dtype(KvCacheType type) {
  switch (type) {
    case KvCacheType::F16:
      return DType::F16;
    case KvCacheType::Q8_0:
      return DType::Q8_0;
    default:
      return DType::F32;
  }
}

}  // namespace

size_t Context::kv_bytes(size_t elements) const {
  return static_cast<size_t>(kernels::kv_row_bytes(kv_dtype(kv_type_), static_cast<int64_t>(elements)));
}

namespace {

// Converts `rows` cached rows of n values from one KV type to another
// through floats (`row` holds n).
void convert_rows(DType from, const uint8_t* src, DType to, uint8_t* dst, size_t rows, int64_t n, float* row) {
  const auto src_bytes = static_cast<size_t>(kernels::kv_row_bytes(from, n));
  const auto dst_bytes = static_cast<size_t>(kernels::kv_row_bytes(to, n));
  for (size_t r = 0; r < rows; ++r, src += src_bytes, dst += dst_bytes) {
    if (from == DType::F16) {
      kernels::f16_to_f32_row(reinterpret_cast<const uint16_t*>(src), row, n);
    } else if (from == DType::Q8_0) {
      kernels::dequantize_row(DType::Q8_0, src, row, n);
    } else {
      std::memcpy(row, src, src_bytes);
    }
    if (to == DType::F16) {
      kernels::f32_to_f16_row(row, reinterpret_cast<uint16_t*>(dst), n);
    } else if (to == DType::Q8_0) {
      kernels::quantize_q8_0_row(row, n, dst);
    } else {
      std::memcpy(dst, row, dst_bytes);
    }
  }
}

}  // namespace

void Context::fork_from(const Context& src, int n) {
  if (&src.model_ != &model_) throw Error("fork_from: contexts of different models");
  if (n < 0 || n > src.n_past_ || n > n_ctx_)
    throw Error("fork_from: " + std::to_string(n) + " positions requested, source holds " +
                std::to_string(src.n_past_) + ", context size " + std::to_string(n_ctx_));
  const ModelConfig& c = model_.config();
  const size_t hk = c.head_dim_k, hv = c.head_dim_v;
  const Buffers& s = *src.buf_;
  Buffers& d = *buf_;
  // The first n positions of every (layer, KV head) run: copied, or
  // converted when the contexts' KV types differ (a Q8_0 cache then holds
  // the source's values requantized).
  const DType from = kv_dtype(src.kv_type_), to = kv_dtype(kv_type_);
  std::vector<float> row(std::max(hk, hv));
  for (size_t run = 0; run < static_cast<size_t>(c.n_layer) * c.n_head_kv; ++run) {
    const uint8_t* sk = &s.k_cache[src.kv_bytes(run * src.n_ctx_ * hk)];
    const uint8_t* sv = &s.v_cache[src.kv_bytes(run * src.n_ctx_ * hv)];
    uint8_t* dk = &d.k_cache[kv_bytes(run * n_ctx_ * hk)];
    uint8_t* dv = &d.v_cache[kv_bytes(run * n_ctx_ * hv)];
    if (from == to) {
      std::memcpy(dk, sk, kv_bytes(n * hk));
      std::memcpy(dv, sv, kv_bytes(n * hv));
    } else {
      convert_rows(from, sk, to, dk, static_cast<size_t>(n), static_cast<int64_t>(hk), row.data());
      convert_rows(from, sv, to, dv, static_cast<size_t>(n), static_cast<int64_t>(hv), row.data());
    }
  }
  n_past_ = n;
  n_logit_rows_ = 0;
}

const float* Context::logits(int row) const {
  if (n_logit_rows_ == 0) throw Error("no logits: nothing has been evaluated");
  if (row < 0) row = n_logit_rows_ - 1;
  if (row >= n_logit_rows_) throw Error("logits row out of range");
  return logits_.data() + static_cast<size_t>(row) * model_.config().n_vocab;
}

void Context::eval(std::span<const TokenId> tokens, bool all_logits) {
  const ModelConfig& c = model_.config();
  if (tokens.empty()) return;
  if (n_past_ + static_cast<int64_t>(tokens.size()) > n_ctx_)
    throw Error("context full: " + std::to_string(n_past_) + " + " + std::to_string(tokens.size()) +
                " tokens exceed the context size " + std::to_string(n_ctx_));
  for (TokenId t : tokens)
    if (t < 0 || t >= c.n_vocab)
      throw Error("token id " + std::to_string(t) + " is out of range [0, " + std::to_string(c.n_vocab) + ")");
  const int rows = all_logits ? static_cast<int>(tokens.size()) : 1;
  if (logits_.size() < static_cast<size_t>(rows) * c.n_vocab) logits_.resize(static_cast<size_t>(rows) * c.n_vocab);
  n_logit_rows_ = rows;
  kernels::prepare_thread_scratch();  // this thread's part of the products
  for (size_t start = 0; start < tokens.size(); start += n_batch_) {
    const int n = static_cast<int>(std::min<size_t>(n_batch_, tokens.size() - start));
    const bool last_chunk = start + n == tokens.size();
    forward_chunk(tokens.data() + start, n, all_logits || last_chunk,
                  all_logits ? static_cast<int>(start) : (last_chunk ? -1 : 0));
  }
}

namespace {

using kernels::rms_norm;

// ggml's YaRN ramp: 1 inside the extrapolated band, falling linearly to 0.
float yarn_ramp(float low, float high, int i0) {
  const float y = (static_cast<float>(i0) / 2 - low) / std::max(0.001f, high - low);
  return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot * 2 * static_cast<float>(M_PI))) / (2 * std::log(base));
}

// cos/sin tables for each position of the chunk: [n_tokens][rope_dims/2].
void rope_tables(const ModelConfig& c, const std::vector<float>& freq_factors, const int* pos, int n_tokens,
                 float* cos_out, float* sin_out) {
  const int half = c.rope_dims / 2;
  float corr_low = 0, corr_high = 0;
  if (c.rope_scaling == RopeScaling::Yarn) {
    corr_low = std::max(0.0f, std::floor(yarn_corr_dim(c.rope_dims, c.rope_ctx_orig, c.yarn_beta_fast, c.rope_base)));
    corr_high = std::min(static_cast<float>(c.rope_dims - 1),
                         std::ceil(yarn_corr_dim(c.rope_dims, c.rope_ctx_orig, c.yarn_beta_slow, c.rope_base)));
  }
  for (int t = 0; t < n_tokens; ++t) {
    for (int i = 0; i < half; ++i) {
      float theta_extrap = pos[t] * std::pow(c.rope_base, -2.0f * i / c.rope_dims);
      if (!freq_factors.empty()) theta_extrap /= freq_factors[i];
      float theta = theta_extrap * c.rope_freq_scale;
      float mscale = 1.0f;
      if (c.rope_scaling == RopeScaling::Yarn) {
        mscale = c.yarn_attn_factor;
        if (c.yarn_ext_factor != 0.0f) {
          const float mix = yarn_ramp(corr_low, corr_high, 2 * i) * c.yarn_ext_factor;
          theta = theta * (1 - mix) + theta_extrap * mix;
          mscale *= 1.0f + 0.1f * std::log(1.0f / c.rope_freq_scale);
        }
      }
      cos_out[t * half + i] = std::cos(theta) * mscale;
      sin_out[t * half + i] = std::sin(theta) * mscale;
    }
  }
}

// Rotates each head of x ([n_tokens][n_heads*head_dim]) in place.
void apply_rope(const ModelConfig& c, float* x, int n_tokens, int n_heads, int head_dim, const float* cos_t,
                const float* sin_t) {
  const int half = c.rope_dims / 2;
  for (int t = 0; t < n_tokens; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<size_t>(t) * n_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float cs = cos_t[t * half + i], sn = sin_t[t * half + i];
        // Norm: adjacent pairs (2i, 2i+1); Neox: (i, i + rope_dims/2).
        const int a = c.rope_mode == RopeMode::Norm ? 2 * i : i;
        const int b = c.rope_mode == RopeMode::Norm ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * cs - x1 * sn;
        v[b] = x0 * sn + x1 * cs;
      }
    }
  }
}

}  // namespace

namespace {

// Tokens per attention work item: their queries share each key and value
// row loaded.
constexpr int kAttentionTokenBlock = 16;

// Runs fn(begin, end, thread) over the tokens of a chunk: on the pool for
// prompt chunks, on the calling thread for a single token (no std::function
// is made then, so decoding does not allocate).
template <typename Fn>
void for_tokens(ThreadPool& pool, int n, const Fn& fn) {
  if (n >= 8) {
    pool.ParallelFor(n, [f = &fn](int64_t b, int64_t e, int t) { (*f)(b, e, t); });
  } else {
    fn(0, n, 0);
  }
}

// A run of the KV cache: elements of `type` (F32, F16 or Q8_0) from `base`.
struct CacheRun {
  DType type;
  const uint8_t* base;
  // Element `at` as a float.
  float at(size_t i) const {
    switch (type) {
      case DType::F16:
        return fp16_to_f32(reinterpret_cast<const uint16_t*>(base)[i]);
      case DType::Q8_0: {
        const uint8_t* block = base + i / 32 * 34;
        uint16_t d;
        std::memcpy(&d, block, 2);
        return fp16_to_f32(d) * static_cast<float>(static_cast<int8_t>(block[2 + i % 32]));
      }
      default:
        return reinterpret_cast<const float*>(base)[i];
    }
  }
};

// Brings [p, p + bytes) toward the core: kLocality 3 into L1, 2 into L2.
template <int kLocality>
void prefetch_lines(const void* p, int64_t bytes) {
  const auto* c = static_cast<const char*>(p);
  for (int64_t at = 0; at < bytes; at += 64) __builtin_prefetch(c + at, 0, kLocality);
}

// Softmax attention of one query over keys 0..n_keys-1 in plain loops: the
// probabilities handed to hooks, and the fallback for head shapes the
// kernel does not take (key and value sizes that differ).
void attention_probs(const float* q, const CacheRun& keys, size_t k_stride, int n_keys, int hk, float scale,
                     float* probs) {
  float max_score = -INFINITY;
  for (int j = 0; j < n_keys; ++j) {
    float s = 0.0f;
    for (int d = 0; d < hk; ++d) s += q[d] * keys.at(static_cast<size_t>(j) * k_stride + d);
    probs[j] = s * scale;
    max_score = std::max(max_score, probs[j]);
  }
  float sum = 0.0f;
  for (int j = 0; j < n_keys; ++j) {
    probs[j] = std::exp(probs[j] - max_score);
    sum += probs[j];
  }
  const float inv = 1.0f / sum;
  for (int j = 0; j < n_keys; ++j) probs[j] *= inv;
}

}  // namespace

// Token t of the chunk, KV heads [kv0, kv1) and their query heads: biases,
// q/k norms and the rotary embedding, then K and V into the cache.
void Context::prepare_heads(int il, int t, int kv0, int kv1) {
  const ModelConfig& c = model_.config();
  const LayerWeights& l = model_.weights().layers[il];
  Buffers& b = *buf_;
  const int hk = c.head_dim_k, hv = c.head_dim_v, group = c.n_head / c.n_head_kv;
  const int kv_k = c.kv_dim_k(), kv_v = c.kv_dim_v();
  const int h0 = kv0 * group, h1 = kv1 * group;  // query heads
  float* q = &b.q[static_cast<size_t>(t) * c.q_dim()];
  float* k = &b.k[static_cast<size_t>(t) * kv_k];
  float* v = &b.v[static_cast<size_t>(t) * kv_v];
  if (!l.bq.empty()) {
    for (int i = h0 * hk; i < h1 * hk; ++i) q[i] += l.bq[i];
    for (int i = kv0 * hk; i < kv1 * hk; ++i) k[i] += l.bk[i];
    for (int i = kv0 * hv; i < kv1 * hv; ++i) v[i] += l.bv[i];
  }
  if (c.qk_norm) {
    for (int h = h0; h < h1; ++h) rms_norm(q + h * hk, l.q_norm.data(), q + h * hk, hk, c.norm_eps);
    for (int h = kv0; h < kv1; ++h) rms_norm(k + h * hk, l.k_norm.data(), k + h * hk, hk, c.norm_eps);
  }
  const float* cos_t = &b.rope_cos[static_cast<size_t>(t) * (c.rope_dims / 2)];
  const float* sin_t = &b.rope_sin[static_cast<size_t>(t) * (c.rope_dims / 2)];
  apply_rope(c, q + h0 * hk, 1, h1 - h0, hk, cos_t, sin_t);
  apply_rope(c, k + kv0 * hk, 1, kv1 - kv0, hk, cos_t, sin_t);
  const size_t pos = static_cast<size_t>(n_past_ + t);
  for (int h = kv0; h < kv1; ++h) {
    // Position pos of the run of (layer il, KV head h).
    const size_t run = static_cast<size_t>(il) * c.n_head_kv + h;
    const size_t k_at = (run * n_ctx_ + pos) * hk, v_at = (run * n_ctx_ + pos) * hv;
    uint8_t* k_row = &b.k_cache[kv_bytes(k_at)];
    uint8_t* v_row = &b.v_cache[kv_bytes(v_at)];
    if (kv_type_ == KvCacheType::F16) {
      kernels::f32_to_f16_row(k + h * hk, reinterpret_cast<uint16_t*>(k_row), hk);
      kernels::f32_to_f16_row(v + h * hv, reinterpret_cast<uint16_t*>(v_row), hv);
    } else if (kv_type_ == KvCacheType::Q8_0) {
      kernels::quantize_q8_0_row(k + h * hk, hk, k_row);
      kernels::quantize_q8_0_row(v + h * hv, hv, v_row);
    } else {
      std::memcpy(k_row, k + h * hk, sizeof(float) * hk);
      std::memcpy(v_row, v + h * hv, sizeof(float) * hv);
    }
  }
}

// Causal attention of layer il for the chunk's n tokens: one work item per
// (KV head, block of tokens), the query heads of a KV head together so that
// each key is loaded once. The chunk's K and V are in the cache already, or,
// with `prepare` (one block of tokens: each item then owns its heads
// entirely), each item prepares its heads first.
void Context::attention_layer(int il, int n, bool prepare, const TensorView* quantize_for) {
  const ModelConfig& c = model_.config();
  struct Job {
    Context* self;
    int il, n, token_block;
    bool watch, prepare;
    const TensorView* quantize_for;
  };
  const bool watch = hooks_ && hooks_->on_attention && (!hooks_->wants_attention || hooks_->wants_attention(il));
  const int token_block = std::max(1, std::min(kAttentionTokenBlock, n));
  if (prepare && n > token_block) throw Error("attention_layer: heads prepared in place need one block of tokens");
  if (quantize_for != nullptr && n != 1) throw Error("attention_layer: outputs are quantized in place for one token");
  const Job job{this, il, n, token_block, watch, prepare, quantize_for};
  const int n_items = c.n_head_kv * ((n + token_block - 1) / token_block);
  auto work = [j = &job](int64_t begin, int64_t end, int thread) {
    Context& ctx = *j->self;
    const ModelConfig& c = ctx.model_.config();
    Buffers& b = *ctx.buf_;
    const int hk = c.head_dim_k, hv = c.head_dim_v, group = c.n_head / c.n_head_kv;
    const size_t k_layer = static_cast<size_t>(j->il) * ctx.n_ctx_ * c.kv_dim_k();
    const size_t v_layer = static_cast<size_t>(j->il) * ctx.n_ctx_ * c.kv_dim_v();
    const DType kv_type = kv_dtype(ctx.kv_type_);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hk));
    if (j->n == 1) {
      // The items of this thread known up front (see below): every line
      // they start on requested at once, so that the misses overlap instead
      // of each item waiting on its own in turn. Their q, k and v rows, which
      // the QKV section wrote (much of it on another core), into L1; the
      // first positions of their cached keys and values, last read a token
      // ago, into L2 (the kernel prefetches the rest as it goes).
      constexpr int64_t kCacheRunBytes = 32 * 1024;
      auto cached_bytes = [&](int head_dim) {
        return std::min<int64_t>(kCacheRunBytes,
                                 static_cast<int64_t>(ctx.kv_bytes(static_cast<size_t>(ctx.n_past_) * head_dim)));
      };
      for (int64_t item = begin; item < end; ++item) {
        const auto kvh = static_cast<size_t>(item % c.n_head_kv);
        prefetch_lines<3>(&b.q[kvh * group * hk], static_cast<int64_t>(sizeof(float)) * group * hk);
        prefetch_lines<3>(&b.k[kvh * hk], static_cast<int64_t>(sizeof(float)) * hk);
        prefetch_lines<3>(&b.v[kvh * hv], static_cast<int64_t>(sizeof(float)) * hv);
        prefetch_lines<2>(&b.k_cache[ctx.kv_bytes(k_layer + kvh * ctx.n_ctx_ * hk)], cached_bytes(hk));
        prefetch_lines<2>(&b.v_cache[ctx.kv_bytes(v_layer + kvh * ctx.n_ctx_ * hv)], cached_bytes(hv));
      }
    }
    for (int64_t item = begin; item < end; ++item) {
      const int kvh = static_cast<int>(item % c.n_head_kv);
      const int t0 = static_cast<int>(item / c.n_head_kv) * j->token_block;
      const int nt = std::min(j->token_block, j->n - t0);
      if (j->prepare)
        for (int t = t0; t < t0 + nt; ++t) ctx.prepare_heads(j->il, t, kvh, kvh + 1);
      // This KV head's run of positions.
      const CacheRun keys{kv_type, &b.k_cache[ctx.kv_bytes(k_layer + static_cast<size_t>(kvh) * ctx.n_ctx_ * hk)]};
      const CacheRun values{kv_type, &b.v_cache[ctx.kv_bytes(v_layer + static_cast<size_t>(kvh) * ctx.n_ctx_ * hv)]};
      if (hk == hv) {
        kernels::AttentionArgs a;
        a.q = &b.q[static_cast<size_t>(t0) * c.q_dim() + static_cast<size_t>(kvh) * group * hk];
        a.q_token_stride = c.q_dim();
        a.q_head_stride = hk;
        a.out = &b.attn_out[static_cast<size_t>(t0) * c.n_head * hv + static_cast<size_t>(kvh) * group * hv];
        a.out_token_stride = static_cast<int64_t>(c.n_head) * hv;
        a.out_head_stride = hv;
        a.n_tokens = nt;
        a.n_heads = group;
        a.head_dim = hk;
        a.n_past = ctx.n_past_ + t0;
        a.kv_type = kv_type;
        a.k = keys.base;
        a.v = values.base;
        a.kv_stride = hk;
        a.scale = scale;
        kernels::attention(a, b.attention_scratch[static_cast<size_t>(thread)]);
      }
      // This item's heads' outputs, once final, quantized for the next
      // product (columns of whole groups: checked by the caller).
      auto quantize_outputs = [&] {
        if (j->quantize_for != nullptr)
          b.act_attn.prepare_columns(j->quantize_for->type, static_cast<int64_t>(kvh) * group * hv,
                                     static_cast<int64_t>(kvh + 1) * group * hv);
      };
      if (!j->watch && hk == hv) {
        quantize_outputs();
        continue;
      }
      // Plain loops: probabilities for the hook (the output above stays as
      // computed, so watching changes nothing), or the output itself for
      // unusual head shapes.
      float* probs = &b.probs[static_cast<size_t>(thread) * ctx.n_ctx_];
      for (int t = t0; t < t0 + nt; ++t) {
        for (int g = 0; g < group; ++g) {
          const int h = kvh * group + g;
          const int n_keys = ctx.n_past_ + t + 1;
          attention_probs(&b.q[(static_cast<size_t>(t) * c.n_head + h) * hk], keys, hk, n_keys, hk, scale, probs);
          if (hk != hv) {
            float* out = &b.attn_out[(static_cast<size_t>(t) * c.n_head + h) * hv];
            std::fill(out, out + hv, 0.0f);
            for (int key = 0; key < n_keys; ++key)
              for (int d = 0; d < hv; ++d) out[d] += probs[key] * values.at(static_cast<size_t>(key) * hv + d);
          }
          if (j->watch) ctx.hooks_->on_attention(j->il, h, ctx.n_past_ + t, n_keys, probs);
        }
      }
      quantize_outputs();
    }
  };
  // One token: every item has the same keys, so the items are split evenly
  // and statically (each thread knows its items, and none takes the next
  // from a counter that bounces between the cores, ~370 ns a claim when the
  // AMD host's vCPUs sit far apart). Against the dynamic claims without
  // the prefetching, rounds in turn (bench/README.md, session 20): the
  // section 21.7 -> 15.4 us a layer in the fast memory phase (tokens ~1%
  // faster), 6-15% shorter in the slow.
  if (n == 1)
    pool_.ParallelFor(n_items, work);
  else
    pool_.ParallelForDynamic(n_items, 1, work);
}

void Context::forward_chunk(const TokenId* tokens, int n, bool want_logits, int logit_row0) {
  const ModelConfig& c = model_.config();
  const Weights& w = model_.weights();
  Buffers& b = *buf_;
  ThreadPool* pool = &pool_;
  const bool fast = precision_ == Precision::Fast;
  const int D = c.n_embd;
  const int kv_k = c.kv_dim_k(), kv_v = c.kv_dim_v();

  // Y = W X for the chunk: X's rows have `ld` floats; `acts` carries their
  // quantized forms on the fast path.
  auto product = [&](const TensorView& W, kernels::Activations& acts, const float* X, int ld, float* Y) {
    if (fast) {
      acts.set(X, ld, n, W.cols());
      kernels::matmul_fast(W, acts, Y, pool);
    } else {
      kernels::matmul(W, X, n, Y, pool);
    }
  };
  auto norm_rows = [&](const std::vector<float>& weight) {
    for_tokens(pool_, n, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) rms_norm(&b.x[t * D], weight.data(), &b.xn[t * D], D, c.norm_eps);
    });
  };
  // Generation (one token on the fast path): before each parallel section,
  // where the threads' runs of the product after it start, so that a thread
  // waiting for the others or for the serial steps brings those weights in.
  const bool hint_next = fast && n == 1;
  auto prefetch_next = [&](std::initializer_list<const TensorView*> weights) {
    if (hint_next) kernels::prefetch_next_product(pool_, std::span(weights.begin(), weights.size()));
  };
  auto add_residual = [&]() {
    for (size_t i = 0; i < static_cast<size_t>(n) * D; ++i) b.x[i] += b.proj[i];
  };

  // Embedding lookup: dequantize the token's row.
  for (int t = 0; t < n; ++t) {
    kernels::dequantize_row(w.token_embd.type, w.token_embd.row(tokens[t]), &b.x[static_cast<size_t>(t) * D], D);
    b.pos[t] = n_past_ + t;
  }
  rope_tables(c, w.rope_freq_factors, b.pos.data(), n, b.rope_cos.data(), b.rope_sin.data());

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& l = w.layers[il];

    // --- attention
    norm_rows(l.attn_norm);
    if (fast) {
      // Q, K and V from one quantized input, in one parallel section.
      b.act_xn.set(b.xn.data(), D, n, D);
      const kernels::MatmulTask tasks[] = {{&l.wq, &b.act_xn, b.q.data(), c.q_dim()},
                                           {&l.wk, &b.act_xn, b.k.data(), kv_k},
                                           {&l.wv, &b.act_xn, b.v.data(), kv_v}};
      prefetch_next({&l.wo});
      kernels::matmul_fast(tasks, pool);
    } else {
      kernels::matmul(l.wq, b.xn.data(), n, b.q.data(), pool);
      kernels::matmul(l.wk, b.xn.data(), n, b.k.data(), pool);
      kernels::matmul(l.wv, b.xn.data(), n, b.v.data(), pool);
    }
    // Biases, q/k norms, rotary embedding, and the new K/V into the cache:
    // inside the attention work items when the chunk is one block of tokens
    // (generation), as a pass of its own otherwise.
    const bool prepare_in_attention = n <= kAttentionTokenBlock;
    if (!prepare_in_attention) {
      for_tokens(pool_, n, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) prepare_heads(il, static_cast<int>(t), 0, c.n_head_kv);
      });
    }
    // One token on the fast path: each attention item quantizes its heads'
    // outputs for the attention-output product as soon as they are final
    // (when they are whole groups of the quantized form), in parallel and on
    // the core that wrote them, instead of one thread quantizing the row
    // after the section (~2.3 us a layer on the 0.6B shape).
    const int64_t attn_cols = static_cast<int64_t>(c.n_head) * c.head_dim_v;
    const int64_t item_cols = static_cast<int64_t>(c.n_head / c.n_head_kv) * c.head_dim_v;
    const int64_t col_group = kernels::Activations::column_group(l.wo.type);
    const bool quantize_in_attention = fast && n == 1 && col_group > 0 && item_cols % col_group == 0;
    if (quantize_in_attention) {
      b.act_attn.set(b.attn_out.data(), attn_cols, 1, attn_cols);
      b.act_attn.begin_columns(l.wo.type);
    }
    prefetch_next({&l.wo});
    attention_layer(il, n, prepare_in_attention, quantize_in_attention ? &l.wo : nullptr);
    prefetch_next({&l.w_gate, &l.w_up});  // swiglu_fast's runs: the gate matrix's units, then the up matrix's
    if (quantize_in_attention) {
      b.act_attn.finish_columns(l.wo.type);
      kernels::matmul_fast(l.wo, b.act_attn, b.proj.data(), pool);
    } else {
      product(l.wo, b.act_attn, b.attn_out.data(), static_cast<int>(attn_cols), b.proj.data());
    }
    add_residual();

    // --- feed-forward (SwiGLU)
    norm_rows(l.ffn_norm);
    if (fast && n == 1) {
      // One token: SwiGLU and the down product's quantizing happen in the
      // gate/up section, each group of rows by the thread that completes it.
      b.act_xn.set(b.xn.data(), D, 1, D);
      b.act_hidden.set(b.gate.data(), c.n_ff, 1, c.n_ff);
      prefetch_next({&l.w_down});
      kernels::swiglu_fast(l.w_gate, l.w_up, b.act_xn, b.gate.data(), b.up.data(), b.act_hidden, l.w_down.type, pool);
    } else {
      if (fast) {
        b.act_xn.set(b.xn.data(), D, n, D);
        const kernels::MatmulTask tasks[] = {{&l.w_gate, &b.act_xn, b.gate.data(), c.n_ff},
                                             {&l.w_up, &b.act_xn, b.up.data(), c.n_ff}};
        kernels::matmul_fast(tasks, pool);
      } else {
        kernels::matmul(l.w_gate, b.xn.data(), n, b.gate.data(), pool);
        kernels::matmul(l.w_up, b.xn.data(), n, b.up.data(), pool);
      }
      for_tokens(pool_, n, [&](int64_t t0, int64_t t1, int) {
        kernels::silu_mul(&b.gate[t0 * c.n_ff], &b.up[t0 * c.n_ff], (t1 - t0) * c.n_ff);
      });
      if (fast) b.act_hidden.set(b.gate.data(), c.n_ff, n, c.n_ff);
    }
    if (il + 1 < c.n_layer) {
      const LayerWeights& next = w.layers[il + 1];
      prefetch_next({&next.wq, &next.wk, &next.wv});
    } else if (want_logits) {
      prefetch_next({&w.output});
    }
    if (fast)
      kernels::matmul_fast(l.w_down, b.act_hidden, b.proj.data(), pool);
    else
      kernels::matmul(l.w_down, b.gate.data(), n, b.proj.data(), pool);
    add_residual();
    if (hooks_ && hooks_->on_layer_output) hooks_->on_layer_output(il, n_past_, n, b.x.data());
  }
  n_past_ += n;
  tokens_evaluated_ += n;

  if (!want_logits) return;
  // Final norm and unembedding, for all rows of the chunk or only the last.
  const int first = logit_row0 < 0 ? n - 1 : 0;
  const int rows = n - first;
  for (int t = first; t < n; ++t) rms_norm(&b.x[t * D], w.output_norm.data(), &b.xn[(t - first) * D], D, c.norm_eps);
  float* dst = logits_.data() + static_cast<size_t>(logit_row0 < 0 ? 0 : logit_row0) * c.n_vocab;
  if (fast) {
    b.act_xn.set(b.xn.data(), D, rows, D);
    kernels::matmul_fast(w.output, b.act_xn, dst, pool);
  } else {
    kernels::matmul(w.output, b.xn.data(), rows, dst, pool);
  }
}

}  // namespace glassbox
