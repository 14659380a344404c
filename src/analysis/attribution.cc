// Prompt attribution (occlusion and attention), logit lens and attention
// maps. The hooked passes re-evaluate only the few positions they observe,
// forked from the main context.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "analysis/internal.h"
#include "base/error.h"
#include "kernels/kernels.h"

namespace glassbox::analysis::detail {
namespace {

// Sets hooks on a context for one scope.
class HookScope {
 public:
  HookScope(Context& ctx, const ForwardHooks& hooks) : ctx_(ctx) { ctx_.set_hooks(&hooks); }
  ~HookScope() { ctx_.set_hooks(nullptr); }
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;

 private:
  Context& ctx_;
};

// The positions whose logits predict the answer tokens: [first, first + n).
std::pair<int, int> answer_queries(const Workspace& ws, const AnswerInfo& answer) {
  return {ws.position_of(answer.token_begin) - 1, answer.token_end - answer.token_begin};
}

// The model's final RMSNorm (same arithmetic as the forward pass).
void final_norm(const Model& model, const float* x, float* out) {
  const ModelConfig& c = model.config();
  const std::vector<float>& w = model.weights().output_norm;
  double ss = 0.0;
  for (int i = 0; i < c.n_embd; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / c.n_embd) + c.norm_eps);
  for (int i = 0; i < c.n_embd; ++i) out[i] = x[i] * scale * w[i];
}

}  // namespace

PromptAttribution prompt_attribution(Workspace& ws, const std::string& question, const AnswerInfo& answer) {
  PromptAttribution out;
  out.question = question;
  if (question.empty()) {
    out.skipped = "no user question";
    return out;
  }
  if (!answer.found) {
    out.skipped = "no answer to attribute";
    return out;
  }
  const auto t0 = Clock::now();
  const int64_t evaluated_before = ws.work.tokens_evaluated();
  const AnalysisOptions& o = ws.options;
  const int P = ws.prompt_len;

  // Byte offsets of the prompt tokens; the question is found in their text.
  std::vector<size_t> offset;
  std::string text;
  for (int i = 0; i < P; ++i) {
    offset.push_back(text.size());
    text += ws.tok.token_bytes(ws.sequence[static_cast<size_t>(i)], true);
  }
  offset.push_back(text.size());
  const size_t at = text.rfind(question);
  if (at == std::string::npos) {
    out.skipped = "the question's text is not in the prompt tokens";
    return out;
  }
  int q_token_begin = P, q_token_end = 0;
  for (const auto& [wb, we] : split_words(question)) {
    WordAttribution w;
    w.word = question.substr(wb, we - wb);
    w.byte_begin = static_cast<int>(wb);
    w.byte_end = static_cast<int>(we);
    int tb = -1, te = -1;
    for (int t = 0; t < P; ++t) {
      if (offset[t] < at + we && offset[t + 1] > at + wb) {
        if (tb < 0) tb = t;
        te = t + 1;
      }
    }
    if (tb < 0) continue;  // cannot happen for a non-empty word inside the text
    w.token_begin = tb;
    w.token_end = te;
    q_token_begin = std::min(q_token_begin, tb);
    q_token_end = std::max(q_token_end, te);
    out.words.push_back(std::move(w));
  }
  if (out.words.empty()) {
    out.skipped = "the question has no words";
    return out;
  }

  for (int j = 0; j < answer.token_end; ++j) out.baseline_response_logprob += ws.result.trace[j].logprob;

  if (o.occlusion) {
    const std::vector<TokenId> mask = ws.tok.encode(o.mask_text, /*parse_special=*/false, /*add_bos=*/false);
    if (mask.empty()) throw Error("the occlusion mask text gives no token");
    const int n = std::min<int>(o.max_occlusion_words, static_cast<int>(out.words.size()));
    for (int wi = 0; wi < n; ++wi) {
      WordAttribution& w = out.words[wi];
      // One batch: the masked word, the rest of the prompt, the reply up to the answer's end.
      std::vector<TokenId> batch(static_cast<size_t>(w.token_end - w.token_begin), mask.front());
      batch.insert(batch.end(), ws.sequence.begin() + w.token_end, ws.sequence.begin() + P + answer.token_end);
      ws.fork_eval(w.token_begin, batch);
      const int shift = P - w.token_begin;  // batch index of trace token j is shift + j
      double response = 0, ans = 0;
      for (int j = 0; j < answer.token_end; ++j) {
        const double lp = ws.logprob(shift + j - 1, batch[static_cast<size_t>(shift + j)]);
        response += lp;
        if (j >= answer.token_begin) ans += lp;
      }
      w.occlusion = answer.logprob - ans;
      w.occlusion_response = out.baseline_response_logprob - response;
    }
  }

  if (o.attention) {
    const ModelConfig& c = ws.model.config();
    const auto [q0, m] = answer_queries(ws, answer);
    const int n_words = static_cast<int>(out.words.size());
    const size_t stride = static_cast<size_t>(n_words) + 1;  // + the whole question
    std::vector<double> sums(static_cast<size_t>(c.n_layer) * c.n_head * m * stride, 0.0);
    ForwardHooks hooks;
    // Each (layer, head, query) slot is written by exactly one call: no lock.
    hooks.on_attention = [&](int layer, int head, int pos, int n_keys, const float* probs) {
      const int qi = pos - q0;
      if (qi < 0 || qi >= m) return;
      double* slot = &sums[((static_cast<size_t>(layer) * c.n_head + head) * m + qi) * stride];
      for (int wi = 0; wi < n_words; ++wi) {
        const WordAttribution& w = out.words[wi];
        double s = 0;
        for (int k = w.token_begin; k < std::min(w.token_end, n_keys); ++k) s += probs[k];
        slot[wi] = s;
      }
      double q = 0;
      for (int k = q_token_begin; k < std::min(q_token_end, n_keys); ++k) q += probs[k];
      slot[n_words] = q;
    };
    {
      HookScope scope(ws.work, hooks);
      ws.fork_eval(q0, std::span<const TokenId>(ws.sequence).subspan(static_cast<size_t>(q0), static_cast<size_t>(m)));
    }
    const double n_slots = static_cast<double>(c.n_layer) * c.n_head * m;
    for (size_t s = 0; s < sums.size(); s += stride) {
      for (int wi = 0; wi < n_words; ++wi) out.words[wi].attention += sums[s + wi] / n_slots;
      out.attention_on_question += sums[s + n_words] / n_slots;
    }
  }
  out.computed = true;
  out.tokens_evaluated = ws.work.tokens_evaluated() - evaluated_before;
  out.seconds = seconds_since(t0);
  return out;
}

LogitLens logit_lens(Workspace& ws, const AnswerInfo& answer) {
  LogitLens out;
  if (!answer.found) {
    out.skipped = "no answer";
    return out;
  }
  const ModelConfig& c = ws.model.config();
  const auto [q0, m] = answer_queries(ws, answer);
  (void)m;
  out.position = q0;
  out.target = ws.sequence[static_cast<size_t>(q0 + 1)];
  out.target_text = ws.tok.token_bytes(out.target, true);
  std::vector<float> residual(static_cast<size_t>(c.n_layer) * c.n_embd);
  ForwardHooks hooks;
  hooks.on_layer_output = [&](int layer, int pos0, int n_tokens, const float* x) {
    if (q0 < pos0 || q0 >= pos0 + n_tokens) return;
    std::memcpy(&residual[static_cast<size_t>(layer) * c.n_embd], x + static_cast<size_t>(q0 - pos0) * c.n_embd,
                sizeof(float) * c.n_embd);
  };
  {
    HookScope scope(ws.work, hooks);
    ws.fork_eval(q0, std::span<const TokenId>(ws.sequence).subspan(static_cast<size_t>(q0), 1));
  }
  std::vector<float> normed(static_cast<size_t>(c.n_embd)), logits(static_cast<size_t>(c.n_vocab));
  for (int layer = 0; layer < c.n_layer; ++layer) {
    final_norm(ws.model, &residual[static_cast<size_t>(layer) * c.n_embd], normed.data());
    kernels::matmul(ws.model.weights().output, normed.data(), 1, logits.data(), &ws.work.pool());
    const double lse = log_sum_exp(logits.data(), c.n_vocab);
    LogitLensLayer l;
    l.layer = layer;
    const float target = logits[static_cast<size_t>(out.target)];
    for (TokenId id = 0; id < c.n_vocab; ++id)
      l.rank += logits[id] > target || (logits[id] == target && id < out.target);
    l.probability = std::exp(static_cast<double>(target) - lse);
    l.top_id = argmax(logits.data(), c.n_vocab);
    l.top_text = ws.tok.token_bytes(l.top_id, true);
    l.top_probability = std::exp(static_cast<double>(logits[static_cast<size_t>(l.top_id)]) - lse);
    out.layers.push_back(std::move(l));
  }
  out.computed = true;
  return out;
}

std::vector<AttentionMap> attention_maps(Workspace& ws, const AnswerInfo& answer) {
  std::vector<AttentionMap> maps;
  const ModelConfig& c = ws.model.config();
  const int seq_len = static_cast<int>(ws.sequence.size());
  for (const AttentionRequest& req : ws.options.attention_maps) {
    AttentionRequest r = req;
    const std::string name = "attention map " + std::to_string(req.layer) + ":" +
                             (req.head < 0 ? std::string("*") : std::to_string(req.head));
    if (r.layer < 0 || r.layer >= c.n_layer)
      throw Error(name + ": the model has layers 0.." + std::to_string(c.n_layer - 1));
    if (r.head < -1 || r.head >= c.n_head)
      throw Error(name + ": the model has heads 0.." + std::to_string(c.n_head - 1));
    if (r.query_begin < 0) {
      if (answer.found) {
        const auto [q0, m] = answer_queries(ws, answer);
        r.query_begin = q0;
        r.query_end = q0 + m;
      } else {
        r.query_begin = seq_len - 1;
        r.query_end = seq_len;
      }
    }
    if (r.query_begin < 0 || r.query_end > seq_len || r.query_end <= r.query_begin)
      throw Error(name + ": query positions must lie in [0, " + std::to_string(seq_len) + ")");
    if (r.key_begin < 0) {
      r.key_begin = 0;
      r.key_end = r.query_end;
    }
    if (r.key_end > r.query_end || r.key_end <= r.key_begin)
      throw Error(name + ": key positions must lie before the last query (" + std::to_string(r.query_end) + ")");
    const size_t nq = static_cast<size_t>(r.query_end - r.query_begin);
    const size_t nk = static_cast<size_t>(r.key_end - r.key_begin);
    const size_t heads = r.head < 0 ? static_cast<size_t>(c.n_head) : 1;
    if (nq * nk * heads > (size_t{1} << 24)) throw Error(name + ": too large (queries x keys x heads > 16M)");

    std::vector<float> per_head(heads * nq * nk, 0.0f);
    ForwardHooks hooks;
    hooks.wants_attention = [&](int layer) { return layer == r.layer; };
    hooks.on_attention = [&](int layer, int head, int pos, int n_keys, const float* probs) {
      if (layer != r.layer || (r.head >= 0 && head != r.head)) return;
      const int qi = pos - r.query_begin;
      if (qi < 0 || qi >= static_cast<int>(nq)) return;
      float* dst = &per_head[((r.head < 0 ? static_cast<size_t>(head) : 0) * nq + static_cast<size_t>(qi)) * nk];
      for (int k = r.key_begin; k < std::min(r.key_end, n_keys); ++k) dst[k - r.key_begin] = probs[k];
    };
    {
      HookScope scope(ws.work, hooks);
      ws.fork_eval(r.query_begin,
                   std::span<const TokenId>(ws.sequence).subspan(static_cast<size_t>(r.query_begin), nq));
    }
    AttentionMap map;
    map.request = r;
    map.weights.assign(nq * nk, 0.0f);
    for (size_t h = 0; h < heads; ++h)
      for (size_t i = 0; i < nq * nk; ++i) map.weights[i] += per_head[h * nq * nk + i] / static_cast<float>(heads);
    for (int p = r.query_begin; p < r.query_end; ++p)
      map.query_tokens.push_back(ws.tok.token_bytes(ws.sequence[static_cast<size_t>(p)], true));
    for (int p = r.key_begin; p < r.key_end; ++p)
      map.key_tokens.push_back(ws.tok.token_bytes(ws.sequence[static_cast<size_t>(p)], true));
    maps.push_back(std::move(map));
  }
  return maps;
}

}  // namespace glassbox::analysis::detail
