#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "kernels/kernels.h"

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
      throw Error(f_.path() + ": tensor '" + name + "' has shape " + shape(t) + ", expected [" +
                  std::to_string(cols) + ", " + std::to_string(rows) + "]");
    return t.view();
  }

  // A 1-D vector of length n, dequantized to float.
  std::vector<float> vector(const std::string& name, int64_t n) const {
    const gguf::TensorInfo& t = require(name);
    if (t.n_dims != 1 || t.ne[0] != n)
      throw Error(f_.path() + ": tensor '" + name + "' has shape " + shape(t) + ", expected [" +
                  std::to_string(n) + "]");
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
  if (options.load_tokenizer) m->tokenizer_ = Tokenizer::from_gguf(*m->file_);
  return m;
}

// ---------------------------------------------------------------- context

// Activations for one chunk of up to n_batch tokens, plus the KV cache.
struct Context::Buffers {
  // [n_batch][dim] row-major activations
  std::vector<float> x, xn, q, k, v, attn_out, proj, gate, up;
  std::vector<float> scores;  // [n_threads][n_ctx] attention scratch
  std::vector<float> probs;   // [n_threads][n_ctx] attention probabilities handed to hooks
  std::vector<float> rope_cos, rope_sin;  // [n_batch][rope_dims/2]
  std::vector<int> pos;
  // KV cache: [n_layer][n_ctx][kv_dim]
  std::vector<float> k_cache, v_cache;
};

Context::Context(const Model& model, const ContextOptions& o)
    : model_(model), pool_(o.n_threads), buf_(std::make_unique<Buffers>()) {
  const ModelConfig& c = model.config();
  n_ctx_ = o.n_ctx > 0 ? o.n_ctx : std::min(c.n_ctx_train, 4096);
  n_batch_ = std::max(1, std::min(o.n_batch, n_ctx_));
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
  b.k_cache.resize(static_cast<size_t>(c.n_layer) * n_ctx_ * c.kv_dim_k());
  b.v_cache.resize(static_cast<size_t>(c.n_layer) * n_ctx_ * c.kv_dim_v());
  logits_.resize(c.n_vocab);
}

Context::~Context() = default;

void Context::truncate(int n) { n_past_ = std::clamp(n, 0, n_past_); }

void Context::fork_from(const Context& src, int n) {
  if (&src.model_ != &model_) throw Error("fork_from: contexts of different models");
  if (n < 0 || n > src.n_past_ || n > n_ctx_)
    throw Error("fork_from: " + std::to_string(n) + " positions requested, source holds " +
                std::to_string(src.n_past_) + ", context size " + std::to_string(n_ctx_));
  const ModelConfig& c = model_.config();
  const size_t row_k = c.kv_dim_k(), row_v = c.kv_dim_v();
  for (int il = 0; il < c.n_layer; ++il) {
    std::copy_n(&src.buf_->k_cache[static_cast<size_t>(il) * src.n_ctx_ * row_k], n * row_k,
                &buf_->k_cache[static_cast<size_t>(il) * n_ctx_ * row_k]);
    std::copy_n(&src.buf_->v_cache[static_cast<size_t>(il) * src.n_ctx_ * row_v], n * row_v,
                &buf_->v_cache[static_cast<size_t>(il) * n_ctx_ * row_v]);
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
  for (size_t start = 0; start < tokens.size(); start += n_batch_) {
    const int n = static_cast<int>(std::min<size_t>(n_batch_, tokens.size() - start));
    const bool last_chunk = start + n == tokens.size();
    forward_chunk(tokens.data() + start, n, all_logits || last_chunk,
                  all_logits ? static_cast<int>(start) : (last_chunk ? -1 : 0));
  }
}

namespace {

void rms_norm(const float* x, const float* w, float* out, int n, float eps) {
  double ss = 0.0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void add_bias(float* x, const std::vector<float>& bias, int n_tokens) {
  if (bias.empty()) return;
  const size_t dim = bias.size();
  for (int t = 0; t < n_tokens; ++t)
    for (size_t i = 0; i < dim; ++i) x[t * dim + i] += bias[i];
}

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

void Context::forward_chunk(const TokenId* tokens, int n, bool want_logits, int logit_row0) {
  const ModelConfig& c = model_.config();
  const Weights& w = model_.weights();
  Buffers& b = *buf_;
  ThreadPool* pool = &pool_;
  const int D = c.n_embd, hk = c.head_dim_k, hv = c.head_dim_v;
  const int kv_k = c.kv_dim_k(), kv_v = c.kv_dim_v();
  const int group = c.n_head / c.n_head_kv;
  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(hk));

  // Embedding lookup: dequantize the token's row.
  for (int t = 0; t < n; ++t) {
    kernels::dequantize_row(w.token_embd.type, w.token_embd.row(tokens[t]), &b.x[static_cast<size_t>(t) * D], D);
    b.pos[t] = n_past_ + t;
  }
  rope_tables(c, w.rope_freq_factors, b.pos.data(), n, b.rope_cos.data(), b.rope_sin.data());

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& l = w.layers[il];
    float* k_cache = &b.k_cache[static_cast<size_t>(il) * n_ctx_ * kv_k];
    float* v_cache = &b.v_cache[static_cast<size_t>(il) * n_ctx_ * kv_v];

    // --- attention
    for (int t = 0; t < n; ++t) rms_norm(&b.x[t * D], l.attn_norm.data(), &b.xn[t * D], D, c.norm_eps);
    kernels::matmul(l.wq, b.xn.data(), n, b.q.data(), pool);
    kernels::matmul(l.wk, b.xn.data(), n, b.k.data(), pool);
    kernels::matmul(l.wv, b.xn.data(), n, b.v.data(), pool);
    add_bias(b.q.data(), l.bq, n);
    add_bias(b.k.data(), l.bk, n);
    add_bias(b.v.data(), l.bv, n);
    if (c.qk_norm) {
      for (int i = 0; i < n * c.n_head; ++i) rms_norm(&b.q[i * hk], l.q_norm.data(), &b.q[i * hk], hk, c.norm_eps);
      for (int i = 0; i < n * c.n_head_kv; ++i)
        rms_norm(&b.k[i * hk], l.k_norm.data(), &b.k[i * hk], hk, c.norm_eps);
    }
    apply_rope(c, b.q.data(), n, c.n_head, hk, b.rope_cos.data(), b.rope_sin.data());
    apply_rope(c, b.k.data(), n, c.n_head_kv, hk, b.rope_cos.data(), b.rope_sin.data());
    std::memcpy(k_cache + static_cast<size_t>(n_past_) * kv_k, b.k.data(), sizeof(float) * n * kv_k);
    std::memcpy(v_cache + static_cast<size_t>(n_past_) * kv_v, b.v.data(), sizeof(float) * n * kv_v);

    // Causal attention: one (token, head) pair per work item; scores use a
    // per-thread row of n_ctx floats, so memory stays linear in context.
    const int n_items = n * c.n_head;
    const bool watch_attention = hooks_ && hooks_->on_attention && (!hooks_->wants_attention || hooks_->wants_attention(il));
    pool_.ParallelFor(n_items, [&](int64_t begin, int64_t end, int thread) {
      float* scores = &b.scores[static_cast<size_t>(thread) * n_ctx_];
      for (int64_t item = begin; item < end; ++item) {
        const int t = static_cast<int>(item / c.n_head), h = static_cast<int>(item % c.n_head);
        const int kvh = h / group;
        const float* q = &b.q[(static_cast<size_t>(t) * c.n_head + h) * hk];
        const int n_keys = n_past_ + t + 1;
        float max_score = -INFINITY;
        for (int j = 0; j < n_keys; ++j) {
          const float* kj = k_cache + static_cast<size_t>(j) * kv_k + kvh * hk;
          float s = 0.0f;
          for (int d = 0; d < hk; ++d) s += q[d] * kj[d];
          s *= attn_scale;
          scores[j] = s;
          max_score = std::max(max_score, s);
        }
        float sum = 0.0f;
        for (int j = 0; j < n_keys; ++j) {
          scores[j] = std::exp(scores[j] - max_score);
          sum += scores[j];
        }
        const float inv = 1.0f / sum;
        if (watch_attention) {  // the hook gets a copy: the forward pass is untouched
          float* probs = &b.probs[static_cast<size_t>(thread) * n_ctx_];
          for (int j = 0; j < n_keys; ++j) probs[j] = scores[j] * inv;
          hooks_->on_attention(il, h, n_past_ + t, n_keys, probs);
        }
        float* out = &b.attn_out[(static_cast<size_t>(t) * c.n_head + h) * hv];
        std::fill(out, out + hv, 0.0f);
        for (int j = 0; j < n_keys; ++j) {
          const float p = scores[j] * inv;
          const float* vj = v_cache + static_cast<size_t>(j) * kv_v + kvh * hv;
          for (int d = 0; d < hv; ++d) out[d] += p * vj[d];
        }
      }
    });
    kernels::matmul(l.wo, b.attn_out.data(), n, b.proj.data(), pool);
    for (size_t i = 0; i < static_cast<size_t>(n) * D; ++i) b.x[i] += b.proj[i];

    // --- feed-forward (SwiGLU)
    for (int t = 0; t < n; ++t) rms_norm(&b.x[t * D], l.ffn_norm.data(), &b.xn[t * D], D, c.norm_eps);
    kernels::matmul(l.w_gate, b.xn.data(), n, b.gate.data(), pool);
    kernels::matmul(l.w_up, b.xn.data(), n, b.up.data(), pool);
    for (size_t i = 0; i < static_cast<size_t>(n) * c.n_ff; ++i) {
      const float g = b.gate[i];
      b.gate[i] = g / (1.0f + std::exp(-g)) * b.up[i];
    }
    kernels::matmul(l.w_down, b.gate.data(), n, b.proj.data(), pool);
    for (size_t i = 0; i < static_cast<size_t>(n) * D; ++i) b.x[i] += b.proj[i];
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
  kernels::matmul(w.output, b.xn.data(), rows, dst, pool);
}

}  // namespace glassbox
