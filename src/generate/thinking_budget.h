// Thinking-budget state machine, consulted by the generation loop once per
// sampled token. It decides which tokens actually go into the sequence: the
// sampled one, or forced ones in its place or after it. Token ids only: the
// caller tokenizes the marker / message / continuation texts once up front.
//
// Loop shape:
//
//   ThinkingBudget budget(config);
//   feed(budget.start());                       // forced tokens before the first sample
//   while (...) {
//     TokenId id = sampler.sample(logits, n_vocab, history);
//     Decision d = budget.step(id, tokenizer.token_bytes(id));
//     feed(d.tokens);                           // evaluate these, in order; trace each
//     if (any of d.tokens ends generation) break;
//   }
//
// where feed() appends the ids to the history, streams their text and
// evaluates them (one batch) to get the next logits. Nothing sampled is ever
// dropped silently: a replaced token appears in Decision::replaced.
//
// Modes (combinable):
//   max_thinking_tokens = N  (--think-budget N): once N thinking tokens are in
//     the block, budget_message_tokens + close_marker_tokens +
//     after_close_tokens are forced right after the N-th one. The block never
//     holds more than N thinking tokens.
//   no_think (--no-think): the block is closed at once (no budget message):
//     at start() when the prompt opened it, else right after the model opens
//     it (or, with open_marker_tokens set, an empty block is forced at start()).
//   min_thinking_tokens = M  (--min-think M, "budget forcing" from the s1
//     paper): a close marker (or end-of-generation token) sampled while the
//     block holds fewer than M thinking tokens is replaced with
//     continuation_tokens ("Wait") and thinking goes on.
//
// Counting: a "thinking token" is a token inside the block other than the
// markers and the forced budget message, i.e. sampled reasoning tokens plus
// forced continuation tokens (they are reasoning the model then builds on).
// Forced continuations are cut short if they would overrun max_thinking_tokens.
//
// When the prompt opened the block and the model still samples the
// (single-token) open marker first, it is accepted as OpenMarker, not counted.
//
// Close-marker detection: the sampled id equals the single-token close marker
// (close_marker_tokens.size() == 1), or the sampled token's text completes
// close_marker_text in the stream of thinking text. For a marker spelled over
// several tokens only the completing token can be replaced by min-think; the
// earlier pieces are already in the sequence (and were counted as thinking).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"  // TokenId

namespace glassbox {

struct ThinkingBudgetConfig {
  int max_thinking_tokens = -1;     // -1: unlimited; >= 0: the budget
  int min_thinking_tokens = 0;      // 0: off
  bool no_think = false;            // close the block at once
  bool starts_in_thinking = false;  // the prompt opened the block (ReasoningMarkers::prompt_opens_block)

  std::string open_marker_text = "<think>";
  std::string close_marker_text = "</think>";
  std::vector<TokenId> open_marker_tokens;        // tokens of open_marker_text (needed only to force an empty block)
  std::vector<TokenId> close_marker_tokens;       // tokens of close_marker_text (required when anything may be forced)
  std::vector<TokenId> after_close_tokens;        // e.g. tokens of "\n\n", forced after a forced close
  std::vector<TokenId> budget_message_tokens;     // e.g. "\n\nConsidering the limited time, ...\n"; may be empty
  std::vector<TokenId> continuation_tokens;       // e.g. tokens of "Wait" (required when min_thinking_tokens > 0)
  std::vector<TokenId> end_of_generation_tokens;  // eos/eot ids: never counted; replaced under min-think
};

enum class TokenPhase : uint8_t {
  BeforeThinking,  // output before any block (whitespace, or the whole answer if no block comes)
  OpenMarker,      // the open marker
  Thinking,        // inside the block
  CloseMarker,     // the close marker
  Answer,          // after the block
};

enum class TokenOrigin : uint8_t {
  Sampled,
  ForcedContinuation,   // min-think "Wait" in place of a close
  ForcedBudgetMessage,  // the message before a budget close
  ForcedClose,          // close marker and after_close tokens of a forced close
  ForcedOpen,           // open marker of a forced empty block (no_think)
};

struct PlannedToken {
  TokenId id;
  TokenPhase phase;
  TokenOrigin origin;
  bool forced() const { return origin != TokenOrigin::Sampled; }
  bool operator==(const PlannedToken&) const = default;
};

struct Decision {
  enum class Action : uint8_t {
    Accept,   // tokens = {sampled} (possibly followed by forced tokens)
    Replace,  // the sampled token is discarded; tokens are fed instead
  };
  Action action = Action::Accept;
  TokenId replaced = -1;                 // the discarded sampled token when action == Replace
  std::span<const PlannedToken> tokens;  // feed in order; valid until the next call
};

class ThinkingBudget {
 public:
  // Throws glassbox::Error on inconsistent settings (min > max, a mode that
  // must force tokens it was not given, negative values, ...).
  explicit ThinkingBudget(ThinkingBudgetConfig config);

  // Forced tokens to feed before the first sample (empty in most modes).
  // Must be called once, before step().
  std::span<const PlannedToken> start();

  // Classifies the sampled token and decides what to feed. token_text is the
  // token's bytes as decoded (used to spot a close marker spelled over
  // several tokens); it may be empty when close_marker_tokens is one token.
  Decision step(TokenId sampled, std::string_view token_text = {});

  TokenPhase phase() const;  // phase the next sampled token would get
  bool in_thinking() const { return state_ == State::Thinking; }
  int thinking_tokens() const { return thinking_count_; }
  bool closed_by_force() const { return closed_by_force_; }
  int continuations_forced() const { return continuations_forced_; }
  const ThinkingBudgetConfig& config() const { return config_; }

 private:
  enum class State : uint8_t { BeforeThinking, Thinking, Answer };

  void enter_thinking();
  void force_close(bool with_message);
  bool completes_marker(std::string_view marker, std::string_view text);
  bool is_end_of_generation(TokenId id) const;
  bool budget_reached() const;
  void append(TokenId id, TokenPhase phase, TokenOrigin origin);

  ThinkingBudgetConfig config_;
  State state_ = State::BeforeThinking;
  int thinking_count_ = 0;
  int continuations_forced_ = 0;
  bool closed_by_force_ = false;
  bool started_ = false;
  bool seen_thinking_output_ = false;  // a token was sampled inside the block
  std::string recent_text_;            // last bytes of the current phase's text, for marker spotting
  std::string before_text_;            // output before any block: whitespace and a partial open marker
  std::vector<PlannedToken> planned_;
};

}  // namespace glassbox
