#include "chat/reasoning.h"

#include <algorithm>
#include <array>

#include "base/error.h"

namespace glassbox::chat {

namespace {

struct MarkerPair {
  std::string_view open;
  std::string_view close;
};

// Known reasoning delimiters, most common first.
constexpr std::array<MarkerPair, 5> kKnownPairs{{
    {"<think>", "</think>"},                                              // Qwen3, QwQ, DeepSeek-R1, SmolLM3, Granite
    {"[THINK]", "[/THINK]"},                                              // Magistral / Ministral reasoning
    {"<|START_THINKING|>", "<|END_THINKING|>"},                           // Command-A reasoning
    {"<seed:think>", "</seed:think>"},                                    // Seed-OSS
    {"\xe2\x97\x81think\xe2\x96\xb7", "\xe2\x97\x81/think\xe2\x96\xb7"},  // Kimi: ◁think▷ ◁/think▷
}};

bool is_layout_newline(char c) { return c == '\n' || c == '\r'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim_trailing_space(std::string_view text) {
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::string_view strip_trailing_newlines(std::string_view text) {
  while (!text.empty() && is_layout_newline(text.back())) text.remove_suffix(1);
  return text;
}

size_t leading_newlines(std::string_view text) {
  size_t n = 0;
  while (n < text.size() && is_layout_newline(text[n])) ++n;
  return n;
}

// Length of the longest proper prefix of `marker` that `text` ends with.
size_t partial_marker_suffix(std::string_view text, std::string_view marker) {
  const size_t max_len = std::min(text.size(), marker.size() - 1);
  for (size_t len = max_len; len > 0; --len) {
    if (text.substr(text.size() - len) == marker.substr(0, len)) return len;
  }
  return 0;
}

}  // namespace

ReasoningMarkers detect_markers(std::string_view template_source, std::string_view rendered_prompt,
                                const std::function<bool(std::string_view)>& vocab_has_token) {
  ReasoningMarkers markers;
  const MarkerPair* chosen = nullptr;
  if (vocab_has_token) {
    for (const MarkerPair& pair : kKnownPairs) {
      if (vocab_has_token(pair.open)) {
        chosen = &pair;
        break;
      }
    }
  }
  if (chosen == nullptr) {
    for (const MarkerPair& pair : kKnownPairs) {
      if (template_source.find(pair.open) != std::string_view::npos) {
        chosen = &pair;
        break;
      }
    }
  }
  if (chosen != nullptr) {
    markers.open = std::string(chosen->open);
    markers.close = std::string(chosen->close);
    markers.detected = true;
  }
  // Only the very end of the prompt counts: a marker earlier on may sit in a
  // user message or in an earlier assistant turn.
  const std::string_view tail = trim_trailing_space(rendered_prompt);
  if (tail.ends_with(markers.open)) {
    markers.prompt_opens_block = true;
  } else if (tail.ends_with(markers.close)) {
    markers.prompt_closes_block = true;
  }
  return markers;
}

ReasoningParser::ReasoningParser(ReasoningMarkers markers) : markers_(std::move(markers)) {
  if (markers_.open.empty() || markers_.close.empty()) {
    throw Error("reasoning markers must not be empty");
  }
  if (markers_.prompt_opens_block) {
    phase_ = ReasoningPhase::Reasoning;
    block_opened_ = true;
    at_reasoning_start_ = true;
    swallow_open_ = true;
  } else if (markers_.prompt_closes_block) {
    phase_ = ReasoningPhase::Content;
    at_content_start_ = true;
  }
}

void ReasoningParser::emit(std::vector<ReasoningSegment>& out, ReasoningSegment::Kind kind, std::string_view text) {
  if (text.empty()) return;
  if (!out.empty() && out.back().kind == kind) {
    out.back().text.append(text);
  } else {
    out.push_back(ReasoningSegment{kind, std::string(text)});
  }
}

std::vector<ReasoningSegment> ReasoningParser::push(std::string_view chunk) {
  if (finished_) throw Error("reasoning parser: text pushed after finish()");
  std::vector<ReasoningSegment> out;
  pending_.append(chunk);
  run(out);
  return out;
}

// Consumes as much of pending_ as is decidable, moving between phases.
void ReasoningParser::run(std::vector<ReasoningSegment>& out) {
  using Kind = ReasoningSegment::Kind;
  const std::string_view open = markers_.open;
  const std::string_view close = markers_.close;
  for (;;) {
    switch (phase_) {
      case ReasoningPhase::AwaitingBlock: {
        size_t space = 0;
        while (space < pending_.size() && is_space(pending_[space])) ++space;
        const std::string_view rest = std::string_view(pending_).substr(space);
        if (rest.starts_with(open)) {
          pending_.erase(0, space + open.size());
          phase_ = ReasoningPhase::Reasoning;
          block_opened_ = true;
          at_reasoning_start_ = true;
          continue;
        }
        if (rest.size() < open.size() && open.starts_with(rest)) return;  // may still open
        phase_ = ReasoningPhase::Content;                                 // no block: the output is content, verbatim
        continue;
      }
      case ReasoningPhase::Reasoning: {
        if (at_reasoning_start_) {
          pending_.erase(0, leading_newlines(pending_));
          if (pending_.empty()) return;
          if (swallow_open_) {
            // The prompt opened the block, yet some models write the open
            // marker again: it is not reasoning text.
            if (pending_.size() < open.size() && open.starts_with(pending_)) return;
            swallow_open_ = false;
            if (std::string_view(pending_).starts_with(open)) {
              pending_.erase(0, open.size());
              continue;
            }
          }
          at_reasoning_start_ = false;
        }
        const size_t close_at = pending_.find(close);
        if (close_at != std::string::npos) {
          emit(out, Kind::Reasoning, strip_trailing_newlines(std::string_view(pending_).substr(0, close_at)));
          pending_.erase(0, close_at + close.size());
          phase_ = ReasoningPhase::Content;
          block_closed_ = true;
          at_content_start_ = true;
          continue;
        }
        // Hold a possible start of the close marker and the newlines before
        // it: both are dropped if the marker completes.
        const std::string_view text = pending_;
        size_t hold = partial_marker_suffix(text, close);
        while (hold < text.size() && is_layout_newline(text[text.size() - hold - 1])) ++hold;
        emit(out, Kind::Reasoning, text.substr(0, text.size() - hold));
        pending_.erase(0, pending_.size() - hold);
        return;
      }
      case ReasoningPhase::Content: {
        if (at_content_start_) {
          pending_.erase(0, leading_newlines(pending_));
          if (pending_.empty()) return;
          if (swallow_close_) {
            if (pending_.size() < close.size() && close.starts_with(pending_)) return;
            swallow_close_ = false;
            if (std::string_view(pending_).starts_with(close)) {
              pending_.erase(0, close.size());
              continue;  // newlines after the swallowed marker are layout too
            }
          }
          at_content_start_ = false;
        }
        emit(out, Kind::Content, pending_);
        pending_.clear();
        return;
      }
    }
  }
}

std::vector<ReasoningSegment> ReasoningParser::force_close() {
  if (finished_) throw Error("reasoning parser: force_close() after finish()");
  std::vector<ReasoningSegment> out;
  if (phase_ == ReasoningPhase::Reasoning) {
    // What was held (a partial close marker, trailing newlines) is settled now.
    emit(out, ReasoningSegment::Kind::Reasoning, strip_trailing_newlines(pending_));
    pending_.clear();
    block_closed_ = true;
    closed_by_force_ = true;
    swallow_close_ = true;
    at_reasoning_start_ = false;
    swallow_open_ = false;
    phase_ = ReasoningPhase::Content;
    at_content_start_ = true;
  } else if (phase_ == ReasoningPhase::AwaitingBlock) {
    phase_ = ReasoningPhase::Content;
    at_content_start_ = true;
    run(out);
  }
  return out;
}

std::vector<ReasoningSegment> ReasoningParser::finish() {
  std::vector<ReasoningSegment> out;
  if (finished_) return out;
  finished_ = true;
  switch (phase_) {
    case ReasoningPhase::AwaitingBlock:
      // Only whitespace or a partial open marker arrived: it was content.
      emit(out, ReasoningSegment::Kind::Content, pending_);
      break;
    case ReasoningPhase::Reasoning:
      // Newlines held before a close marker that never came are trailing
      // layout; a partial marker held after them is real text.
      emit(out, ReasoningSegment::Kind::Reasoning, strip_trailing_newlines(pending_));
      break;
    case ReasoningPhase::Content:
      // Held only at the start of content: newlines (dropped) or a partial
      // close marker after force_close that never completed (kept).
      emit(out, ReasoningSegment::Kind::Content, std::string_view(pending_).substr(leading_newlines(pending_)));
      break;
  }
  pending_.clear();
  return out;
}

ParsedReasoning parse_reasoning(std::string_view text, const ReasoningMarkers& markers) {
  ReasoningParser parser(markers);
  ParsedReasoning parsed;
  auto collect = [&parsed](const std::vector<ReasoningSegment>& segments) {
    for (const ReasoningSegment& segment : segments) {
      (segment.kind == ReasoningSegment::Kind::Reasoning ? parsed.reasoning : parsed.content) += segment.text;
    }
  };
  collect(parser.push(text));
  collect(parser.finish());
  parsed.block_opened = parser.block_opened();
  parsed.unclosed = parser.unclosed();
  return parsed;
}

}  // namespace glassbox::chat
