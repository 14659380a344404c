// Generation with thinking control: renders the chat template, runs the
// sampling loop with the thinking-budget state machine, splits the stream
// into reasoning and answer, and records the token trace.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "chat/reasoning.h"
#include "generate/sampler.h"
#include "generate/thinking_budget.h"
#include "model/model.h"

namespace glassbox {

// One generated (or forced) token with what the model thought of it.
struct TraceToken {
  TokenId id = -1;
  std::string text;  // exact bytes (special tokens rendered)
  TokenPhase phase = TokenPhase::Answer;
  TokenOrigin origin = TokenOrigin::Sampled;
  float logprob = 0;     // log p(token) under the raw model distribution
  float entropy = 0;     // nats
  float confidence = 0;  // DeepConf: -mean logprob of the top-k
  std::vector<TokenLogprob> top;
  double time_ms = 0;        // since generation started
  bool from_prefix = false;  // forced by ChatOptions::assistant_prefix
};

struct ChatOptions {
  SamplingParams sampling;
  int max_tokens = 2048;  // generated tokens (thinking + answer), forced ones included
  int think_budget = -1;  // -1: unlimited
  int min_think = 0;      // budget forcing: at least this many thinking tokens
  bool no_think = false;
  bool budget_message = false;  // inject a short message before a budget close
  std::string budget_message_text =
      "\n\nConsidering the limited time, I have to give the solution based on the thinking directly now.\n";
  std::string continuation_text = "Wait";
  std::vector<std::string> stop;  // stop strings (matched in the answer and the thinking)
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
  std::string template_override;  // Jinja source replacing the model's template
  int trace_top_k = 20;           // alternatives recorded per token (0: none)
  // Text the reply is forced to start with (e.g. "<think>\nfirst step\n" to
  // make the thinking start with a given prefix; write the open marker when
  // the prompt does not open the block). Its tokens go through the thinking
  // budget as if sampled, are traced (TraceToken::from_prefix) and count
  // towards max_tokens.
  std::string assistant_prefix;
};

struct ChatResult {
  std::string prompt;  // rendered prompt text
  std::vector<TokenId> prompt_tokens;
  std::string reasoning, content;
  int reasoning_tokens = 0;   // tokens inside the thinking block (markers excluded)
  int content_tokens = 0;     // answer tokens (end-of-generation token excluded)
  std::string finish_reason;  // "stop" (end token or stop string), "length", "cancelled"
  bool thinking_forced_closed = false;
  bool thinking_unclosed = false;
  std::vector<TraceToken> trace;
  double prompt_ms = 0, generate_ms = 0;
};

// The statistics the session records for every traced token: the values of
// compute_token_stats (generate/sampler.h) to float precision, from the
// kernels' SIMD scans of the row (kernels::softmax_sums, find_above): the
// trace is always on, so its cost counts against decoding (`glassbox bench
// --trace-top-k` and bench/analysis_bench measure it). Throws
// glassbox::Error on the same bad input as compute_token_stats.
TokenStats trace_token_stats(const float* logits, int n_vocab, TokenId chosen, int k);

struct StreamCallbacks {
  std::function<void(const std::string&)> on_reasoning;  // reasoning text as it becomes certain
  std::function<void(const std::string&)> on_content;    // answer text
  // Each generated (or forced) token as soon as it is traced, before its text
  // reaches on_reasoning / on_content (the parser may hold text back).
  std::function<void(const TraceToken&)> on_token;
  // Polled before the prompt is evaluated and before every token: returning
  // true ends generation early with finish_reason "cancelled" (a server
  // whose client went away).
  std::function<bool()> should_stop;
};

class ChatSession {
 public:
  // Uses the model's chat template (tokenizer.chat_template) unless
  // options.template_override is set. Throws Error if neither exists.
  explicit ChatSession(const Model& model, ContextOptions context_options = {});
  ~ChatSession();

  // Renders the prompt for `messages` (OpenAI-style array) with the
  // generation prompt and the kwargs (enable_thinking=false is added for
  // --no-think when the template knows it).
  std::string render_prompt(const nlohmann::ordered_json& messages, const ChatOptions& options,
                            bool add_generation_prompt = true) const;

  // Generates the assistant's reply. Reuses the KV cache for the prefix the
  // new prompt shares with the previous call (multi-turn chat).
  ChatResult generate(const nlohmann::ordered_json& messages, const ChatOptions& options,
                      const StreamCallbacks& callbacks = {});

  const Model& model() const { return model_; }
  Context& context() { return *ctx_; }
  // Tokens whose K/V the context holds, in order (the last prompt and reply).
  const std::vector<TokenId>& cached_tokens() const { return cached_; }
  // Makes the context hold exactly `tokens`, evaluating only what differs
  // from the cached prefix (nothing when they are equal). With on_rows, the
  // evaluated suffix goes in chunks with all logits kept, and on_rows(pos0, n)
  // is called after each chunk: context().logits(i) for i < n then predicts
  // the token after position pos0 + i. Throws Error if the tokens do not fit
  // the context or an id is outside the vocabulary.
  void sync_tokens(std::span<const TokenId> tokens, const std::function<void(int pos0, int n_rows)>& on_rows = {});

 private:
  const Model& model_;
  std::unique_ptr<Context> ctx_;
  std::vector<TokenId> cached_;  // tokens whose K/V are in the context
  std::string template_source_;
  // The last template compiled (the model's or an override): parsing once
  // per distinct source, not once per request.
  mutable std::string compiled_source_;
  mutable std::unique_ptr<chat::ChatTemplate> compiled_;
};

}  // namespace glassbox
