#include "session/chat_session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>

#include "base/error.h"
#include "chat/chat_template.h"
#include "generate/stop_strings.h"
#include "kernels/kernels.h"

namespace glassbox {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

}  // namespace

TokenStats trace_token_stats(const float* logits, int n_vocab, TokenId chosen, int k) {
  if (n_vocab <= 0 || chosen < 0 || chosen >= n_vocab || k < 0)
    return compute_token_stats(logits, n_vocab, chosen, k);  // throws, naming the problem
  // log Z = max + log S and the entropy is log S - T/S (kernels.h).
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const kernels::SoftmaxSums sums = kernels::softmax_sums(logits, n_vocab);
  if (!sums.finite || sums.max == -kInf) return compute_token_stats(logits, n_vocab, chosen, k);  // throws
  const double max_logit = sums.max, sum = sums.sum, weighted = sums.weighted;
  const double log_z = max_logit + std::log(sum);

  TokenStats stats;
  stats.chosen = chosen;
  stats.chosen_logprob = static_cast<float>(double(logits[chosen]) - log_z);
  stats.entropy = static_cast<float>(std::max(0.0, std::log(sum) - weighted / sum));

  // Pass 3: the k largest by a bounded heap whose front is the weakest kept
  // entry. Ids arrive in increasing order, so a tie never displaces an entry.
  k = std::min(k, n_vocab);
  if (k == 0) return stats;
  struct Entry {
    TokenId id;
    float logit;
  };
  auto better = [](const Entry& a, const Entry& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  std::vector<Entry> heap;
  heap.reserve(static_cast<size_t>(k));
  for (TokenId id = 0; id < k; ++id) heap.push_back({id, logits[id]});
  std::make_heap(heap.begin(), heap.end(), better);
  float weakest = heap.front().logit;
  // Once the heap holds good entries almost nothing beats the weakest: the
  // scan skips ahead with the SIMD search.
  for (TokenId id = k; (id = static_cast<TokenId>(kernels::find_above(logits, id, n_vocab, weakest))) < n_vocab; ++id) {
    std::pop_heap(heap.begin(), heap.end(), better);
    heap.back() = {id, logits[id]};
    std::push_heap(heap.begin(), heap.end(), better);
    weakest = heap.front().logit;
  }
  std::sort(heap.begin(), heap.end(), better);
  stats.top.reserve(heap.size());
  double logprob_sum = 0;
  int finite = 0;
  for (const Entry& e : heap) {
    const double logprob = double(e.logit) - log_z;
    stats.top.push_back(TokenLogprob{e.id, static_cast<float>(logprob)});
    if (e.logit != -kInf) {
      logprob_sum += logprob;
      ++finite;
    }
  }
  stats.confidence = finite > 0 ? static_cast<float>(-logprob_sum / finite) : 0.0f;
  return stats;
}

ChatSession::ChatSession(const Model& model, ContextOptions context_options)
    : model_(model), ctx_(std::make_unique<Context>(model, context_options)) {
  if (!model.has_tokenizer()) throw Error("the model has no tokenizer");
  template_source_ = model.file().get_string("tokenizer.chat_template").value_or("");
}

ChatSession::~ChatSession() = default;

std::string ChatSession::render_prompt(const nlohmann::ordered_json& messages, const ChatOptions& options,
                                       bool add_generation_prompt) const {
  const std::string& source = options.template_override.empty() ? template_source_ : options.template_override;
  if (source.empty()) throw Error("the model has no chat template (tokenizer.chat_template); pass one with --template");
  chat::ChatRequest req;
  req.messages = messages;
  req.add_generation_prompt = add_generation_prompt;
  req.kwargs = options.template_kwargs;
  if (options.no_think && !req.kwargs.contains("enable_thinking") &&
      source.find("enable_thinking") != std::string::npos)
    req.kwargs["enable_thinking"] = false;
  const Tokenizer& tok = model_.tokenizer();
  req.bos_token = tok.bos() >= 0 ? tok.token_text(tok.bos()) : "";
  req.eos_token = tok.eos() >= 0 ? tok.token_text(tok.eos()) : "";
  if (!compiled_ || compiled_source_ != source) {
    compiled_ = std::make_unique<chat::ChatTemplate>(source);
    compiled_source_ = source;
  }
  return compiled_->render(req);
}

ChatResult ChatSession::generate(const nlohmann::ordered_json& messages, const ChatOptions& options,
                                 const StreamCallbacks& callbacks) {
  validate(options.sampling);
  if (options.max_tokens < 1) throw Error("max_tokens must be at least 1");
  if (options.think_budget < -1) throw Error("the thinking budget must be >= 0 (or -1 for none)");
  if (options.min_think < 0) throw Error("the minimum thinking must be >= 0");
  const Tokenizer& tok = model_.tokenizer();
  Context& ctx = *ctx_;
  const int n_vocab = ctx.n_vocab();
  ChatResult r;
  const auto t0 = Clock::now();

  r.prompt = render_prompt(messages, options);
  r.prompt_tokens = tok.encode(r.prompt, /*parse_special=*/true, /*add_bos=*/false);
  if (r.prompt_tokens.empty()) throw Error("the rendered prompt is empty");
  if (static_cast<int>(r.prompt_tokens.size()) >= ctx.n_ctx())
    throw Error("the prompt (" + std::to_string(r.prompt_tokens.size()) + " tokens) does not fit the context of " +
                std::to_string(ctx.n_ctx()) + " tokens");

  if (callbacks.should_stop && callbacks.should_stop()) {
    r.finish_reason = "cancelled";
    return r;
  }

  // Reuse the cached prefix (multi-turn chat); at least the last prompt token
  // is evaluated again so that its logits are fresh.
  size_t common = 0;
  while (common < cached_.size() && common < r.prompt_tokens.size() && cached_[common] == r.prompt_tokens[common])
    ++common;
  common = std::min(common, r.prompt_tokens.size() - 1);
  ctx.truncate(static_cast<int>(common));
  cached_.resize(common);
  ctx.eval(std::span<const TokenId>(r.prompt_tokens.data() + common, r.prompt_tokens.size() - common));
  cached_ = r.prompt_tokens;
  r.prompt_ms = ms_since(t0);
  const auto t_gen = Clock::now();

  const std::string& source = options.template_override.empty() ? template_source_ : options.template_override;
  const chat::ReasoningMarkers markers =
      chat::detect_markers(source, r.prompt, [&](std::string_view text) { return tok.find_token(text) >= 0; });

  ThinkingBudgetConfig bc;
  bc.max_thinking_tokens = options.think_budget;
  bc.min_thinking_tokens = options.min_think;
  bc.no_think = options.no_think && !markers.prompt_closes_block;
  bc.starts_in_thinking = markers.prompt_opens_block;
  bc.open_marker_text = markers.open;
  bc.close_marker_text = markers.close;
  bc.open_marker_tokens = tok.encode(markers.open, true, false);
  bc.close_marker_tokens = tok.encode(markers.close, true, false);
  bc.after_close_tokens = tok.encode("\n\n", false, false);
  if (options.budget_message) bc.budget_message_tokens = tok.encode(options.budget_message_text, false, false);
  bc.continuation_tokens = tok.encode(options.continuation_text, false, false);
  for (TokenId id = 0; id < tok.vocab_size(); ++id)
    if (tok.is_end_of_generation(id)) bc.end_of_generation_tokens.push_back(id);
  ThinkingBudget budget(bc);

  chat::ReasoningParser parser(markers);
  StopStringMatcher stops(options.stop);
  StreamDecoder decoder(tok, /*render_special=*/true);
  Sampler sampler(options.sampling, n_vocab);
  std::vector<TokenId> history = r.prompt_tokens;

  auto deliver = [&](const std::vector<chat::ReasoningSegment>& segments) {
    for (const auto& s : segments) {
      if (s.kind == chat::ReasoningSegment::Kind::Reasoning) {
        r.reasoning += s.text;
        if (callbacks.on_reasoning) callbacks.on_reasoning(s.text);
      } else {
        r.content += s.text;
        if (callbacks.on_content) callbacks.on_content(s.text);
      }
    }
  };

  int generated = 0;
  bool done = false;
  bool in_prefix = false;  // feeding ChatOptions::assistant_prefix
  // Feeds one planned token: records its trace entry from the logits that
  // predicted it, streams its text, and evaluates it for the next logits.
  auto feed = [&](const PlannedToken& p) {
    TraceToken t;
    t.id = p.id;
    t.phase = p.phase;
    t.origin = p.origin;
    TokenStats stats = trace_token_stats(ctx.logits(), n_vocab, p.id, options.trace_top_k);
    t.logprob = stats.chosen_logprob;
    t.entropy = stats.entropy;
    t.confidence = stats.confidence;
    t.top = std::move(stats.top);
    t.text = tok.token_bytes(p.id, true);
    t.time_ms = ms_since(t_gen);
    t.from_prefix = in_prefix;
    r.trace.push_back(std::move(t));
    if (callbacks.on_token) callbacks.on_token(r.trace.back());
    ++generated;
    if (tok.is_end_of_generation(p.id)) {
      r.finish_reason = "stop";
      done = true;
      return;
    }
    if (p.phase == TokenPhase::Thinking) ++r.reasoning_tokens;
    if (p.phase == TokenPhase::Answer || p.phase == TokenPhase::BeforeThinking) ++r.content_tokens;
    history.push_back(p.id);
    const StopStringMatcher::Result sr = stops.push(decoder.push(p.id));
    deliver(parser.push(sr.text));
    if (sr.stopped) {
      r.finish_reason = "stop";
      done = true;
      return;
    }
    if (generated >= options.max_tokens || ctx.n_past() + 1 > ctx.n_ctx()) {
      r.finish_reason = "length";
      done = true;
      return;
    }
    ctx.eval(std::span<const TokenId>(&p.id, 1));
    cached_.push_back(p.id);
  };

  auto cancelled = [&] {
    if (!callbacks.should_stop || !callbacks.should_stop()) return false;
    r.finish_reason = "cancelled";
    done = true;
    return true;
  };
  for (const PlannedToken& p : budget.start()) {
    if (done || cancelled()) break;
    feed(p);
  }
  // The forced start of the reply: classified by the budget like sampled
  // tokens, so that markers in it open or close the thinking block.
  if (!options.assistant_prefix.empty()) {
    in_prefix = true;
    for (const TokenId id : tok.encode(options.assistant_prefix, /*parse_special=*/true, /*add_bos=*/false)) {
      if (done || cancelled()) break;
      const Decision d = budget.step(id, tok.token_bytes(id, true));
      for (const PlannedToken& p : d.tokens) {
        if (done) break;
        feed(p);
      }
    }
    in_prefix = false;
  }
  while (!done && !cancelled()) {
    const TokenId id = sampler.sample(ctx.logits(), n_vocab, history);
    const Decision d = budget.step(id, tok.token_bytes(id, true));
    for (const PlannedToken& p : d.tokens) {
      if (done) break;
      feed(p);
    }
  }
  if (!stops.stopped()) deliver(parser.push(stops.flush()));
  deliver(parser.push(decoder.flush()));
  deliver(parser.finish());
  r.thinking_forced_closed = budget.closed_by_force();
  r.thinking_unclosed = parser.unclosed();
  r.generate_ms = ms_since(t_gen);
  return r;
}

void ChatSession::sync_tokens(std::span<const TokenId> tokens, const std::function<void(int, int)>& on_rows) {
  Context& ctx = *ctx_;
  if (static_cast<int64_t>(tokens.size()) > ctx.n_ctx())
    throw Error(std::to_string(tokens.size()) + " tokens do not fit the context of " + std::to_string(ctx.n_ctx()) +
                " tokens");
  for (const TokenId id : tokens)
    if (id < 0 || id >= ctx.n_vocab())
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(ctx.n_vocab()));
  size_t common = 0;
  while (common < cached_.size() && common < tokens.size() && cached_[common] == tokens[common]) ++common;
  ctx.truncate(static_cast<int>(common));
  cached_.resize(common);
  // Chunks bound the logits buffer (rows x vocabulary) when rows are kept.
  const size_t chunk = on_rows ? 64 : tokens.size();
  for (size_t start = common; start < tokens.size(); start += chunk) {
    const size_t n = std::min(chunk, tokens.size() - start);
    ctx.eval(tokens.subspan(start, n), /*all_logits=*/static_cast<bool>(on_rows));
    cached_.insert(cached_.end(), tokens.begin() + static_cast<std::ptrdiff_t>(start),
                   tokens.begin() + static_cast<std::ptrdiff_t>(start + n));
    if (on_rows) on_rows(static_cast<int>(start), static_cast<int>(n));
  }
}

}  // namespace glassbox
