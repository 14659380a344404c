#include "chat/reasoning.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"

namespace glassbox::chat {
namespace {

using Kind = ReasoningSegment::Kind;

struct Outcome {
  std::string reasoning;
  std::string content;
  bool unclosed = false;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{reasoning=\"" << o.reasoning << "\", content=\"" << o.content << "\", unclosed=" << o.unclosed << "}";
}

void collect(Outcome& outcome, const std::vector<ReasoningSegment>& segments) {
  for (const ReasoningSegment& s : segments) {
    EXPECT_FALSE(s.text.empty()) << "parser emitted an empty segment";
    (s.kind == Kind::Reasoning ? outcome.reasoning : outcome.content) += s.text;
  }
}

Outcome parse_pieces(const ReasoningMarkers& markers, const std::vector<std::string_view>& pieces) {
  ReasoningParser parser(markers);
  Outcome outcome;
  for (std::string_view piece : pieces) collect(outcome, parser.push(piece));
  collect(outcome, parser.finish());
  outcome.unclosed = parser.unclosed();
  return outcome;
}

// The result must not depend on how the stream is cut: whole, every 2-way
// and 3-way split, and byte by byte.
void expect_split_invariant(const ReasoningMarkers& markers, std::string_view text, const Outcome& expected) {
  ASSERT_EQ(parse_pieces(markers, {text}), expected) << "whole text: " << text;
  const size_t n = text.size();
  for (size_t i = 0; i <= n; ++i) {
    ASSERT_EQ(parse_pieces(markers, {text.substr(0, i), text.substr(i)}), expected)
        << "split at " << i << " of: " << text;
    for (size_t j = i; j <= n; ++j) {
      ASSERT_EQ(parse_pieces(markers, {text.substr(0, i), text.substr(i, j - i), text.substr(j)}), expected)
          << "split at " << i << "," << j << " of: " << text;
    }
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < n; ++i) bytes.push_back(text.substr(i, 1));
  ASSERT_EQ(parse_pieces(markers, bytes), expected) << "byte by byte: " << text;
}

ReasoningMarkers think_markers(bool prompt_opens = false) {
  ReasoningMarkers m;
  m.prompt_opens_block = prompt_opens;
  return m;
}

TEST(ReasoningParser, ThinkThenAnswerStripsLayoutNewlines) {
  expect_split_invariant(think_markers(), "<think>\nI think.\n</think>\n\nAnswer.", {"I think.", "Answer.", false});
}

TEST(ReasoningParser, PromptOpenedBlock) {
  expect_split_invariant(think_markers(true), "\nReasoning here.\n</think>\n\nThe answer.",
                         {"Reasoning here.", "The answer.", false});
}

TEST(ReasoningParser, RepeatedOpenMarkerAfterPromptOpenedIsDropped) {
  expect_split_invariant(think_markers(true), "<think>\nabc\n</think>\n\nx", {"abc", "x", false});
  expect_split_invariant(think_markers(true), "\n<think>\n\nabc</think>x", {"abc", "x", false});
  expect_split_invariant(think_markers(true), "<thinking is fun</think>x", {"<thinking is fun", "x", false});
  expect_split_invariant(think_markers(true), "a <think> b</think>x", {"a <think> b", "x", false});
}

TEST(ReasoningParser, NeverClosedBlockIsAllReasoning) {
  expect_split_invariant(think_markers(), "<think>\nstill thinking\nabout it\n",
                         {"still thinking\nabout it", "", true});
  expect_split_invariant(think_markers(true), "no close, ends in a partial </thi",
                         {"no close, ends in a partial </thi", "", true});
}

TEST(ReasoningParser, NoThinkMarkerMeansContentVerbatim) {
  expect_split_invariant(think_markers(), "  Hello <think> world\n", {"", "  Hello <think> world\n", false});
  expect_split_invariant(think_markers(), "<thi", {"", "<thi", false});
  expect_split_invariant(think_markers(), "\n\n", {"", "\n\n", false});
  expect_split_invariant(think_markers(), "<thinking>x", {"", "<thinking>x", false});
}

TEST(ReasoningParser, WhitespaceBeforeOpenMarkerIsDropped) {
  expect_split_invariant(think_markers(), "\n \t<think>abc</think>def", {"abc", "def", false});
}

TEST(ReasoningParser, MarkersInsideTheAnswerStayContent) {
  expect_split_invariant(think_markers(), "<think>a</think>\n\nUse <think> tags</think> like this.",
                         {"a", "Use <think> tags</think> like this.", false});
}

TEST(ReasoningParser, OpenMarkerInsideReasoningStaysReasoning) {
  expect_split_invariant(think_markers(), "<think>a <think> b</think>c", {"a <think> b", "c", false});
}

TEST(ReasoningParser, SpacesAreKeptOnlyNewlinesAreLayout) {
  expect_split_invariant(think_markers(), "<think>\n  indented  \n</think>\n \n Final.",
                         {"  indented  ", " \n Final.", false});
  expect_split_invariant(think_markers(), "<think>\r\nwindows\r\n</think>\r\n\r\nok\r\n", {"windows", "ok\r\n", false});
}

TEST(ReasoningParser, InnerBlankLinesAndTrailingContentNewlinesKept) {
  expect_split_invariant(think_markers(), "<think>\na\n\nb\n</think>\n\nc\n\nd\n", {"a\n\nb", "c\n\nd\n", false});
}

TEST(ReasoningParser, FalseAlarmPartialMarkers) {
  expect_split_invariant(think_markers(), "<think>a </thinking> b</th</think>c", {"a </thinking> b</th", "c", false});
  expect_split_invariant(think_markers(), "<think>x\n</\n</think>y", {"x\n</", "y", false});
}

TEST(ReasoningParser, EmptyBlocks) {
  expect_split_invariant(think_markers(), "<think>\n\n</think>\n\nX", {"", "X", false});
  expect_split_invariant(think_markers(), "<think></think>", {"", "", false});
  expect_split_invariant(think_markers(true), "</think>\n\nX", {"", "X", false});
}

TEST(ReasoningParser, PromptClosedBlockStartsInContent) {
  ReasoningMarkers m;
  m.prompt_closes_block = true;
  expect_split_invariant(m, "\n\nAnswer <think>x</think>", {"", "Answer <think>x</think>", false});
}

TEST(ReasoningParser, OtherMarkerPairs) {
  ReasoningMarkers mistral;
  mistral.open = "[THINK]";
  mistral.close = "[/THINK]";
  expect_split_invariant(mistral, "[THINK]draft[/THINK]Reply", {"draft", "Reply", false});
  ReasoningMarkers kimi;  // multi-byte UTF-8 markers, cut inside characters by the splits
  kimi.open = "\xe2\x97\x81think\xe2\x96\xb7";
  kimi.close = "\xe2\x97\x81/think\xe2\x96\xb7";
  expect_split_invariant(
      kimi, "\xe2\x97\x81think\xe2\x96\xb7\xe6\x80\x9d\xe8\x80\x83\xe2\x97\x81/think\xe2\x96\xb7\n\n\xe7\xad\x94",
      {"\xe6\x80\x9d\xe8\x80\x83", "\xe7\xad\x94", false});
}

TEST(ReasoningParser, StreamsAsSoonAsTextIsCertain) {
  ReasoningParser parser(think_markers());
  EXPECT_EQ(parser.phase(), ReasoningPhase::AwaitingBlock);
  EXPECT_TRUE(parser.push("<thi").empty());
  EXPECT_EQ(parser.phase(), ReasoningPhase::AwaitingBlock);
  EXPECT_TRUE(parser.push("nk>\n").empty());
  EXPECT_EQ(parser.phase(), ReasoningPhase::Reasoning);
  EXPECT_TRUE(parser.block_opened());
  auto out = parser.push("abc");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (ReasoningSegment{Kind::Reasoning, "abc"}));
  EXPECT_TRUE(parser.push("\n").empty());    // may be layout before </think>
  EXPECT_TRUE(parser.push("</th").empty());  // may be the marker
  EXPECT_TRUE(parser.push("ink>\n").empty());
  EXPECT_EQ(parser.phase(), ReasoningPhase::Content);
  EXPECT_TRUE(parser.block_closed());
  EXPECT_FALSE(parser.closed_by_force());
  out = parser.push("\nX");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], (ReasoningSegment{Kind::Content, "X"}));
  EXPECT_TRUE(parser.finish().empty());
  EXPECT_FALSE(parser.unclosed());
}

TEST(ReasoningParser, OneChunkHoldingBothKindsGivesOrderedSegments) {
  ReasoningParser parser(think_markers());
  auto out = parser.push("<think>r</think>c");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (ReasoningSegment{Kind::Reasoning, "r"}));
  EXPECT_EQ(out[1], (ReasoningSegment{Kind::Content, "c"}));
}

TEST(ReasoningParser, ForceCloseThenMarkerTextIsSwallowed) {
  for (std::string_view forced : {"\n</think>\n\nAnswer", "</think>Answer", "\n\nAnswer", "Answer"}) {
    ReasoningParser parser(think_markers(true));
    Outcome outcome;
    collect(outcome, parser.push("thinking so far\n"));
    collect(outcome, parser.force_close());
    EXPECT_TRUE(parser.block_closed());
    EXPECT_TRUE(parser.closed_by_force());
    EXPECT_EQ(parser.phase(), ReasoningPhase::Content);
    for (char c : forced) collect(outcome, parser.push(std::string_view(&c, 1)));
    collect(outcome, parser.finish());
    EXPECT_EQ(outcome.reasoning, "thinking so far") << forced;
    EXPECT_EQ(outcome.content, "Answer") << forced;
    EXPECT_FALSE(parser.unclosed());
  }
}

TEST(ReasoningParser, ForceCloseSettlesHeldText) {
  ReasoningParser parser(think_markers(true));
  Outcome outcome;
  collect(outcome, parser.push("abc</th"));
  collect(outcome, parser.force_close());
  collect(outcome, parser.push("</think>\n\nlater </think> stays"));
  collect(outcome, parser.finish());
  EXPECT_EQ(outcome.reasoning, "abc</th");
  EXPECT_EQ(outcome.content, "later </think> stays");
}

TEST(ReasoningParser, ForceCloseOutsideABlockStopsWaiting) {
  ReasoningParser parser(think_markers());
  Outcome outcome;
  collect(outcome, parser.push("\n"));
  collect(outcome, parser.force_close());
  EXPECT_FALSE(parser.block_opened());
  EXPECT_FALSE(parser.closed_by_force());
  collect(outcome, parser.push("<think>x"));
  collect(outcome, parser.finish());
  EXPECT_EQ(outcome.content, "<think>x");
  EXPECT_EQ(outcome.reasoning, "");
}

TEST(ReasoningParser, MisuseRaises) {
  ReasoningMarkers empty;
  empty.close.clear();
  EXPECT_THROW(ReasoningParser{empty}, Error);
  ReasoningParser parser(think_markers());
  parser.finish();
  EXPECT_THROW(parser.push("x"), Error);
}

TEST(ReasoningParser, ParseReasoningConvenience) {
  ParsedReasoning parsed = parse_reasoning("<think>\nr\n</think>\n\nc", think_markers());
  EXPECT_EQ(parsed.reasoning, "r");
  EXPECT_EQ(parsed.content, "c");
  EXPECT_TRUE(parsed.block_opened);
  EXPECT_FALSE(parsed.unclosed);
}

// ---------------------------------------------------------------------------
// Against the reference chat templates (tests/data/reference/templates).

nlohmann::json load_template_cases(const std::string& name) {
  const std::string path = std::string(GLASSBOX_TEST_DATA) + "/reference/templates/" + name + ".json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing reference file " + path);
  return nlohmann::json::parse(in);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing reference file " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The expected rendering of a case: where Jinja2 disagrees, Jinja2 is right
// (see the templates README).
std::string expected_rendering(const nlohmann::json& c) {
  const auto& cross = c.at("crosscheck");
  if (!cross.at("agrees").get<bool>()) return cross.at("rendered").get<std::string>();
  return c.at("rendered").get<std::string>();
}

// Qwen3's template turns an assistant message "<think>R</think>C" back into
// "<think>\n" + R' + "\n</think>\n\n" + C' with its own newline stripping; our
// parser's split must render to exactly what the template produced.
TEST(ReasoningParserReference, MatchesQwen3TemplateSplitting) {
  const nlohmann::json file = load_template_cases("Qwen-Qwen3-0.6B");
  int checked = 0;
  for (const auto& c : file.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    if (name.rfind("h3_strip_chars_inline_think", 0) != 0) continue;
    const std::string message = c.at("messages").back().at("content").get<std::string>();
    const ParsedReasoning parsed = parse_reasoning(message, ReasoningMarkers{});
    const std::string rerendered =
        "<|im_start|>assistant\n<think>\n" + parsed.reasoning + "\n</think>\n\n" + parsed.content + "<|im_end|>\n";
    const std::string expected = expected_rendering(c);
    ASSERT_GE(expected.size(), rerendered.size()) << name;
    EXPECT_EQ(expected.substr(expected.size() - rerendered.size()), rerendered) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

enum class PromptEnd { Neither, Opens, Closes };

// What each template's generation prompt does, read off the template sources
// (not computed): which kwargs make it open or close the thinking block.
PromptEnd expected_prompt_end(const std::string& tmpl, const nlohmann::json& kwargs, const std::string& case_name) {
  auto flag = [&](const char* key) -> int {  // -1 unset, 0 false, 1 true
    if (!kwargs.contains(key)) return -1;
    return kwargs.at(key).get<bool>() ? 1 : 0;
  };
  const int thinking = flag("enable_thinking");
  const bool scenario_i = case_name.rfind("i_system_no_think_flag", 0) == 0;
  const bool scenario_i2 = case_name.rfind("i2_system_think_flag", 0) == 0;
  const bool scenario_m = case_name.rfind("m_system_only", 0) == 0;
  if (tmpl == "HuggingFaceTB-SmolLM3-3B") {
    // "/no_think" in the system prompt or enable_thinking=false (unless "/think") → empty block.
    if (scenario_i || (thinking == 0 && !scenario_i2)) return PromptEnd::Closes;
    return PromptEnd::Neither;
  }
  if (tmpl == "Qwen-Qwen3-0.6B") return thinking == 0 ? PromptEnd::Closes : PromptEnd::Neither;
  if (tmpl == "Qwen3.5-4B") return thinking == 0 ? PromptEnd::Closes : PromptEnd::Opens;
  if (tmpl == "Qwen-QwQ-32B" || tmpl == "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B") {
    return thinking == 1 ? PromptEnd::Opens : PromptEnd::Closes;  // `if not enable_thinking`
  }
  if (tmpl == "deepseek-ai-DeepSeek-V3.1") {
    if (scenario_m) return PromptEnd::Neither;  // no user turn: no generation prompt
    return thinking == 1 ? PromptEnd::Opens : PromptEnd::Closes;
  }
  if (tmpl == "deepseek-ai-DeepSeek-R1-Distill-Llama-8B") return PromptEnd::Opens;
  return PromptEnd::Neither;
}

TEST(DetectMarkers, ReferenceTemplates) {
  struct TemplateExpectation {
    const char* name;
    const char* open;  // expected markers
    bool detected;
  };
  const TemplateExpectation templates[] = {
      {"HuggingFaceTB-SmolLM3-3B", "<think>", true},
      {"Mistral-Small-3.2-24B-Instruct-2506", "<think>", false},
      {"Qwen-QwQ-32B", "<think>", true},
      {"Qwen-Qwen2.5-7B-Instruct", "<think>", false},
      {"Qwen-Qwen3-0.6B", "<think>", true},
      {"Qwen3.5-4B", "<think>", true},
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B", "<think>", true},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "<think>", true},
      {"deepseek-ai-DeepSeek-V3.1", "<think>", true},
      {"google-gemma-2-2b-it", "<think>", false},
      {"ibm-granite-granite-3.3-2B-Instruct", "<think>", true},
      {"meta-llama-Llama-3.1-8B-Instruct", "<think>", false},
      {"meta-llama-Llama-3.2-3B-Instruct", "<think>", false},
      {"microsoft-Phi-3.5-mini-instruct", "<think>", false},
      {"mistralai-Ministral-3-14B-Reasoning-2512", "[THINK]", true},
      {"openai-gpt-oss-120b", "<think>", false},
  };
  int checked = 0;
  for (const auto& t : templates) {
    const nlohmann::json file = load_template_cases(t.name);
    const std::string source =
        read_text_file(std::string(GLASSBOX_TEST_DATA) + "/reference/templates/templates/" + t.name + ".jinja");
    for (const auto& c : file.at("cases")) {
      if (!c.at("add_generation_prompt").get<bool>() || !c.contains("rendered")) continue;
      const std::string name = c.at("name").get<std::string>();
      const ReasoningMarkers m = detect_markers(source, expected_rendering(c));
      EXPECT_EQ(m.open, t.open) << t.name;
      EXPECT_EQ(m.detected, t.detected) << t.name;
      const PromptEnd end = expected_prompt_end(t.name, c.at("kwargs"), name);
      EXPECT_EQ(m.prompt_opens_block, end == PromptEnd::Opens) << t.name << " " << name;
      EXPECT_EQ(m.prompt_closes_block, end == PromptEnd::Closes) << t.name << " " << name;
      ++checked;
    }
  }
  EXPECT_GT(checked, 300);
}

TEST(DetectMarkers, VocabularyWinsOverTemplate) {
  auto has_bracket_think = [](std::string_view token) { return token == "[THINK]"; };
  ReasoningMarkers m = detect_markers("no markers in here", "[INST]hi[/INST][THINK]", has_bracket_think);
  EXPECT_EQ(m.open, "[THINK]");
  EXPECT_EQ(m.close, "[/THINK]");
  EXPECT_TRUE(m.detected);
  EXPECT_TRUE(m.prompt_opens_block);

  m = detect_markers("{{ '<think>' }}", "x", [](std::string_view) { return false; });
  EXPECT_EQ(m.open, "<think>");
  EXPECT_TRUE(m.detected);
  EXPECT_FALSE(m.prompt_opens_block);

  m = detect_markers("", "user wrote <think> earlier\nassistant\n");
  EXPECT_FALSE(m.detected);
  EXPECT_FALSE(m.prompt_opens_block);  // only the very end of the prompt counts
}

}  // namespace
}  // namespace glassbox::chat
