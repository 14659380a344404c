// Reasoning ("thinking") blocks in model output: which markers a model uses,
// whether the prompt already opened the block, and a streaming parser that
// splits generated text into reasoning and content.
//
// Whitespace convention (matching the reasoning models' own chat templates,
// e.g. Qwen3's `split('</think>')` / `strip('\n')`, which turn history back
// into "<think>\n{reasoning}\n</think>\n\n{content}"):
//   - newlines ('\n', '\r') right after the open marker and right before the
//     close marker are not part of the reasoning;
//   - newlines right after the close marker (the "\n\n" models emit) are not
//     part of the content;
//   - spaces and tabs are kept everywhere: only line breaks are layout.
//   - whitespace before a leading open marker is dropped; when the model
//     emits no open marker its output is content, verbatim.
// When the prompt opened the block, an open marker the model writes anyway at
// the very start is dropped too.
// Only one block is recognised, at the start of the output: once the block has
// closed (or content has started), marker text is ordinary content; inside
// the block, a second open marker is ordinary reasoning text.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace glassbox::chat {

struct ReasoningMarkers {
  std::string open = "<think>";
  std::string close = "</think>";
  // The rendered prompt ends inside an open block (DeepSeek-R1 distills,
  // QwQ, Qwen3.5 ... end the generation prompt with "<think>\n"): the model
  // starts in reasoning and never emits the open marker itself.
  bool prompt_opens_block = false;
  // The rendered prompt ends with an empty closed block ("<think>\n\n</think>\n\n",
  // Qwen3 with enable_thinking=false): the model starts in the answer.
  bool prompt_closes_block = false;
  // The markers were found in the template or the vocabulary (false: the
  // defaults above are a guess; the parser still works, it just never sees them).
  bool detected = false;
};

// Finds the reasoning markers of a model. Known pairs are tried in order
// (<think>/</think>, [THINK]/[/THINK], <|START_THINKING|>/<|END_THINKING|>,
// <seed:think>/</seed:think>, ◁think▷/◁/think▷); the first whose open marker is a
// vocabulary token wins, else the first that the template source mentions,
// else the <think> defaults with detected = false. vocab_has_token may be
// empty (no vocabulary check). rendered_prompt is the prompt as rendered for
// generation (its tail decides prompt_opens_block / prompt_closes_block).
ReasoningMarkers detect_markers(std::string_view template_source, std::string_view rendered_prompt,
                                const std::function<bool(std::string_view)>& vocab_has_token = {});

// Where the parser stands.
enum class ReasoningPhase {
  AwaitingBlock,  // nothing decisive yet: the output may still open a block
  Reasoning,      // inside the block
  Content,        // after the block, or no block at all
};

struct ReasoningSegment {
  enum class Kind { Reasoning, Content };
  Kind kind;
  std::string text;
  bool operator==(const ReasoningSegment&) const = default;
};

class ReasoningParser {
 public:
  explicit ReasoningParser(ReasoningMarkers markers);

  // Feeds the next piece of generated text (any split: markers may straddle
  // chunks, UTF-8 may be cut anywhere). Returns the segments that are now
  // certain, adjacent ones of the same kind merged. Text that could still be
  // part of a marker, or layout newlines that may yet be stripped, is held.
  std::vector<ReasoningSegment> push(std::string_view chunk);

  // Ends the reasoning block without a close marker in the text (a thinking
  // budget ran out and the caller does not feed the forced marker text). If
  // the caller does then push the close marker (optionally after newlines)
  // it is swallowed. Outside a block it only stops waiting for one.
  std::vector<ReasoningSegment> force_close();

  // End of generation: releases everything held.
  std::vector<ReasoningSegment> finish();

  ReasoningPhase phase() const { return phase_; }
  bool block_opened() const { return block_opened_; }  // a block began (prompt or output)
  bool block_closed() const { return block_closed_; }  // it ended (marker or force_close)
  bool closed_by_force() const { return closed_by_force_; }
  // After finish(): the output ended inside the block (no close ever came).
  bool unclosed() const { return finished_ && block_opened_ && !block_closed_; }
  const ReasoningMarkers& markers() const { return markers_; }

 private:
  void emit(std::vector<ReasoningSegment>& out, ReasoningSegment::Kind kind, std::string_view text);
  void run(std::vector<ReasoningSegment>& out);

  ReasoningMarkers markers_;
  ReasoningPhase phase_ = ReasoningPhase::AwaitingBlock;
  std::string pending_;              // received, not yet emitted
  bool at_reasoning_start_ = false;  // leading newlines of the reasoning are still dropped
  bool at_content_start_ = false;    // leading newlines after the block are still dropped
  bool swallow_close_ = false;       // after force_close: a close marker may still arrive
  bool swallow_open_ = false;        // prompt opened the block: a repeated open marker is dropped
  bool block_opened_ = false;
  bool block_closed_ = false;
  bool closed_by_force_ = false;
  bool finished_ = false;
};

// Whole-text convenience: splits a finished output in one go.
struct ParsedReasoning {
  std::string reasoning;
  std::string content;
  bool block_opened = false;
  bool unclosed = false;
};
ParsedReasoning parse_reasoning(std::string_view text, const ReasoningMarkers& markers);

}  // namespace glassbox::chat
