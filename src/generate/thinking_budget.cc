#include "generate/thinking_budget.h"

#include <algorithm>

#include "base/error.h"

namespace glassbox {

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

ThinkingBudget::ThinkingBudget(ThinkingBudgetConfig config) : config_(std::move(config)) {
  const ThinkingBudgetConfig& c = config_;
  if (c.max_thinking_tokens < -1) {
    throw Error("thinking budget must be -1 (unlimited) or >= 0, got " + std::to_string(c.max_thinking_tokens));
  }
  if (c.min_thinking_tokens < 0) {
    throw Error("minimum thinking tokens must be >= 0, got " + std::to_string(c.min_thinking_tokens));
  }
  if (c.max_thinking_tokens >= 0 && c.min_thinking_tokens > c.max_thinking_tokens) {
    throw Error("minimum thinking tokens (" + std::to_string(c.min_thinking_tokens) + ") exceed the thinking budget (" +
                std::to_string(c.max_thinking_tokens) + ")");
  }
  if (c.no_think && c.min_thinking_tokens > 0) {
    throw Error("no-think and a minimum number of thinking tokens contradict each other");
  }
  if (c.open_marker_text.empty() || c.close_marker_text.empty()) {
    throw Error("thinking markers must not be empty");
  }
  if ((c.no_think || c.max_thinking_tokens >= 0) && c.close_marker_tokens.empty()) {
    throw Error("a thinking budget or no-think needs the close marker's tokens to force a close");
  }
  if (c.min_thinking_tokens > 0 && c.continuation_tokens.empty()) {
    throw Error("a minimum number of thinking tokens needs continuation tokens (e.g. \"Wait\")");
  }
  planned_.reserve(c.budget_message_tokens.size() + c.close_marker_tokens.size() + c.after_close_tokens.size() +
                   c.open_marker_tokens.size() + c.continuation_tokens.size() + 1);
}

void ThinkingBudget::append(TokenId id, TokenPhase phase, TokenOrigin origin) {
  planned_.push_back(PlannedToken{id, phase, origin});
}

bool ThinkingBudget::budget_reached() const {
  return config_.max_thinking_tokens >= 0 && thinking_count_ >= config_.max_thinking_tokens;
}

bool ThinkingBudget::is_end_of_generation(TokenId id) const {
  const auto& ids = config_.end_of_generation_tokens;
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

void ThinkingBudget::enter_thinking() {
  state_ = State::Thinking;
  recent_text_.clear();
}

void ThinkingBudget::force_close(bool with_message) {
  if (with_message) {
    for (TokenId id : config_.budget_message_tokens) {
      append(id, TokenPhase::Thinking, TokenOrigin::ForcedBudgetMessage);
    }
  }
  for (TokenId id : config_.close_marker_tokens) {
    append(id, TokenPhase::CloseMarker, TokenOrigin::ForcedClose);
  }
  for (TokenId id : config_.after_close_tokens) append(id, TokenPhase::Answer, TokenOrigin::ForcedClose);
  state_ = State::Answer;
  closed_by_force_ = true;
}

// Appends `text` to the remembered tail and reports whether `marker` now
// occurs. The tail keeps fewer bytes than the marker, so a match found here
// always ends in the new text.
bool ThinkingBudget::completes_marker(std::string_view marker, std::string_view text) {
  if (text.empty()) return false;
  recent_text_.append(text);
  const bool found = recent_text_.find(marker) != std::string::npos;
  const size_t keep = marker.size() - 1;
  if (recent_text_.size() > keep) recent_text_.erase(0, recent_text_.size() - keep);
  return found;
}

std::span<const PlannedToken> ThinkingBudget::start() {
  if (started_) throw Error("thinking budget: start() called twice");
  started_ = true;
  planned_.clear();
  if (config_.starts_in_thinking) {
    enter_thinking();
    if (config_.no_think) {
      force_close(/*with_message=*/false);
    } else if (budget_reached()) {
      force_close(/*with_message=*/true);
    }
  } else if (config_.no_think && !config_.open_marker_tokens.empty()) {
    // An empty block up front, as chat templates do for enable_thinking=false.
    for (TokenId id : config_.open_marker_tokens) append(id, TokenPhase::OpenMarker, TokenOrigin::ForcedOpen);
    enter_thinking();
    force_close(/*with_message=*/false);
  }
  return planned_;
}

TokenPhase ThinkingBudget::phase() const {
  switch (state_) {
    case State::BeforeThinking:
      return TokenPhase::BeforeThinking;
    case State::Thinking:
      return TokenPhase::Thinking;
    case State::Answer:
      break;
  }
  return TokenPhase::Answer;
}

Decision ThinkingBudget::step(TokenId sampled, std::string_view token_text) {
  if (!started_) throw Error("thinking budget: step() called before start()");
  planned_.clear();
  Decision decision;

  switch (state_) {
    case State::BeforeThinking: {
      const bool open_by_id = config_.open_marker_tokens.size() == 1 && sampled == config_.open_marker_tokens[0];
      const bool open_by_text = completes_marker(config_.open_marker_text, token_text);
      if (open_by_id || open_by_text) {
        append(sampled, TokenPhase::OpenMarker, TokenOrigin::Sampled);
        enter_thinking();
        if (config_.no_think) {
          force_close(/*with_message=*/false);
        } else if (budget_reached()) {
          force_close(/*with_message=*/true);
        }
        break;
      }
      // Still waiting while the output so far is whitespace plus, possibly,
      // the beginning of the open marker; anything else is the answer.
      before_text_.append(token_text);
      size_t space = 0;
      while (space < before_text_.size() && is_space(before_text_[space])) ++space;
      const std::string_view rest = std::string_view(before_text_).substr(space);
      const bool may_still_open = !token_text.empty() && std::string_view(config_.open_marker_text).starts_with(rest);
      if (may_still_open && !is_end_of_generation(sampled)) {
        append(sampled, TokenPhase::BeforeThinking, TokenOrigin::Sampled);
      } else {
        state_ = State::Answer;
        append(sampled, TokenPhase::Answer, TokenOrigin::Sampled);
      }
      break;
    }

    case State::Thinking: {
      if (thinking_count_ == 0 && !seen_thinking_output_ && config_.starts_in_thinking &&
          config_.open_marker_tokens.size() == 1 && sampled == config_.open_marker_tokens[0]) {
        // The prompt opened the block and the model writes the marker anyway.
        seen_thinking_output_ = true;
        append(sampled, TokenPhase::OpenMarker, TokenOrigin::Sampled);
        break;
      }
      seen_thinking_output_ = true;
      const bool close_by_id = config_.close_marker_tokens.size() == 1 && sampled == config_.close_marker_tokens[0];
      const bool close_by_text = completes_marker(config_.close_marker_text, token_text);
      const bool closes = close_by_id || close_by_text;
      const bool ends = is_end_of_generation(sampled);
      if ((closes || ends) && thinking_count_ < config_.min_thinking_tokens) {
        // Budget forcing: keep thinking. The continuation is cut short so
        // the block never exceeds the budget.
        decision.action = Decision::Action::Replace;
        decision.replaced = sampled;
        ++continuations_forced_;
        recent_text_.clear();
        for (TokenId id : config_.continuation_tokens) {
          if (budget_reached()) break;
          append(id, TokenPhase::Thinking, TokenOrigin::ForcedContinuation);
          ++thinking_count_;
        }
        if (budget_reached()) force_close(/*with_message=*/true);
        break;
      }
      if (closes) {
        append(sampled, TokenPhase::CloseMarker, TokenOrigin::Sampled);
        state_ = State::Answer;
        break;
      }
      append(sampled, TokenPhase::Thinking, TokenOrigin::Sampled);
      if (ends) break;  // the loop stops here; an end token is not reasoning
      ++thinking_count_;
      if (budget_reached()) force_close(/*with_message=*/true);
      break;
    }

    case State::Answer:
      append(sampled, TokenPhase::Answer, TokenOrigin::Sampled);
      break;
  }
  decision.tokens = planned_;
  return decision;
}

}  // namespace glassbox
