// Step splitting, roles and step statistics on hand-made traces (values
// worked out by hand in the comments), answer extraction and request parsing.
#include "analysis/steps.h"

#include <gtest/gtest.h>

#include "analysis/analysis.h"
#include "analysis/internal.h"
#include "base/error.h"

namespace glassbox::analysis {
namespace {

TraceToken tok(const std::string& text, float confidence = 1, float logprob = -0.1f, float entropy = 0.5f,
               TokenPhase phase = TokenPhase::Thinking) {
  TraceToken t;
  t.text = text;
  t.confidence = confidence;
  t.logprob = logprob;
  t.entropy = entropy;
  t.phase = phase;
  return t;
}

std::vector<std::string> texts(const std::vector<Step>& steps) {
  std::vector<std::string> out;
  for (const Step& s : steps) out.push_back(s.text);
  return out;
}

TEST(Steps, SplitsLinesAtTokenBoundaries) {
  std::vector<TraceToken> trace = {tok("<think>", 1, 0, 0, TokenPhase::OpenMarker),
                                   tok("\n"),
                                   tok("57"),
                                   tok("+"),
                                   tok("12"),
                                   tok("\n"),  // step 0 (leading blank joins it)
                                   tok("57"),
                                   tok("+12"),
                                   tok("=69"),
                                   tok("\n"),
                                   tok("\n"),  // step 1 (blank line joins it)
                                   tok("69+4=73"),
                                   tok("\n"),  // step 2
                                   tok("</think>", 1, 0, 0, TokenPhase::CloseMarker)};
  const auto [b, e] = thinking_range(trace);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(e, 13);
  const auto steps = build_steps(trace, b, e, {});
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"57+12", "57+12=69", "69+4=73"}));
  EXPECT_EQ(steps[0].token_begin, 1);
  EXPECT_EQ(steps[0].token_end, 6);
  EXPECT_EQ(steps[1].token_begin, 6);
  EXPECT_EQ(steps[1].token_end, 11);
  EXPECT_EQ(steps[2].token_begin, 11);
  EXPECT_EQ(steps[2].token_end, 13);
  EXPECT_EQ(steps[0].role, StepRole::Setup);
  EXPECT_EQ(steps[1].role, StepRole::Compute);
  EXPECT_EQ(steps[1].result, 69);
  EXPECT_EQ(steps[2].result, 73);
}

TEST(Steps, SplitsSentences) {
  std::vector<TraceToken> trace = {tok("First"), tok(" we add."), tok(" Then"), tok(" 3.5"), tok(" is"),
                                   tok(" it!"),  tok("\n"),       tok("Done"),  tok("?")};
  const auto lines = build_steps(trace, 0, static_cast<int>(trace.size()), {});
  EXPECT_EQ(texts(lines), (std::vector<std::string>{"First we add. Then 3.5 is it!", "Done?"}));
  StepOptions o;
  o.split = StepSplit::Sentences;
  const auto sentences = build_steps(trace, 0, static_cast<int>(trace.size()), o);
  // "3.5": the '.' inside a token is not an end; " it!" then "\n" ends one.
  EXPECT_EQ(texts(sentences), (std::vector<std::string>{"First we add.", " Then 3.5 is it!", "Done?"}));
}

TEST(Steps, StatisticsByHand) {
  // Confidences 4, 2, 6, 8 | 1, 3 ; logprobs -0.1, -2, -0.3, -0.2 | -0.5, -4
  std::vector<TraceToken> trace = {tok("a", 4, -0.1f, 1.0f),  tok("b", 2, -2.0f, 0.0f), tok("c", 6, -0.3f, 0.5f),
                                   tok("\n", 8, -0.2f, 0.5f), tok("d", 1, -0.5f, 2.0f), tok("e", 3, -4.0f, 1.0f)};
  StepOptions o;
  o.tail_tokens = 2;
  o.group_window = 3;
  const auto steps = build_steps(trace, 0, 6, o);
  ASSERT_EQ(steps.size(), 2u);
  const Step& s0 = steps[0];
  EXPECT_DOUBLE_EQ(s0.mean_confidence, 5.0);  // (4+2+6+8)/4
  EXPECT_DOUBLE_EQ(s0.min_confidence, 2.0);
  EXPECT_DOUBLE_EQ(s0.tail_confidence, 7.0);  // (6+8)/2
  // Group means over the last 3: 4, 3, 4, 16/3 -> lowest 3.
  EXPECT_DOUBLE_EQ(s0.lowest_group_confidence, 3.0);
  EXPECT_DOUBLE_EQ(s0.mean_entropy, 0.5);  // (1+0+0.5+0.5)/4
  EXPECT_NEAR(s0.min_logprob, -2.0, 1e-6);
  EXPECT_EQ(s0.least_likely_token, 1);
  const Step& s1 = steps[1];
  EXPECT_DOUBLE_EQ(s1.mean_confidence, 2.0);
  // Windows ending at d: (6+8+1)/3 = 5; at e: (8+1+3)/3 = 4.
  EXPECT_DOUBLE_EQ(s1.lowest_group_confidence, 4.0);
  EXPECT_DOUBLE_EQ(s1.tail_confidence, 2.0);
  EXPECT_EQ(s1.least_likely_token, 5);
  // Whole trace, window 3: 4, 16/3, 5, 4 -> 4; window larger than the trace: the mean.
  EXPECT_DOUBLE_EQ(lowest_group_confidence(trace, 3), 4.0);
  EXPECT_DOUBLE_EQ(lowest_group_confidence(trace, 100), 4.0);
}

TEST(Steps, Roles) {
  EXPECT_EQ(classify_role("Wait, 57+12 is 69"), StepRole::Backtrack);
  EXPECT_EQ(classify_role("Actually the sum is wrong"), StepRole::Backtrack);
  EXPECT_EQ(classify_role("No, that's 12."), StepRole::Backtrack);
  EXPECT_EQ(classify_role("I made a mistake above"), StepRole::Backtrack);
  EXPECT_EQ(classify_role("Let me check: 69+4=73"), StepRole::Check);
  EXPECT_EQ(classify_role("To verify, 73-4=69"), StepRole::Check);
  EXPECT_EQ(classify_role("So the answer is 73."), StepRole::Conclude);
  EXPECT_EQ(classify_role("Therefore x is even"), StepRole::Conclude);
  EXPECT_EQ(classify_role("57+12=69"), StepRole::Compute);
  EXPECT_EQ(classify_role("417+48: 7+8=15,1+4+1=6,4 so 465"), StepRole::Compute);
  EXPECT_EQ(classify_role("7 and 8 so 15"), StepRole::Compute);
  EXPECT_EQ(classify_role("57+12+4"), StepRole::Setup);
  EXPECT_EQ(classify_role("We need the total of the numbers"), StepRole::Setup);
  EXPECT_EQ(classify_role("also 3 apples"), StepRole::Setup);
  EXPECT_STREQ(role_name(StepRole::Backtrack), "backtrack");
}

TEST(Steps, EmptyAndBlankThinking) {
  std::vector<TraceToken> trace = {tok("\n"), tok("\n")};
  EXPECT_TRUE(build_steps(trace, -1, -1, {}).empty());
  const auto blank = build_steps(trace, 0, 2, {});
  ASSERT_EQ(blank.size(), 1u);
  EXPECT_EQ(blank[0].text, "");
}

TEST(Answer, LastInteger) {
  auto value = [](std::string_view s) { return last_integer(s).value().value; };
  EXPECT_EQ(value("The answer is 73."), 73);
  EXPECT_EQ(value("The answer is -26."), -26);
  EXPECT_EQ(value("12 apples and 5 pears"), 5);
  EXPECT_EQ(value("5-3"), -3);  // as the CLI's eval reads it
  EXPECT_FALSE(last_integer("no numbers").has_value());
  EXPECT_FALSE(last_integer("99999999999999999999999").has_value());
  const auto m = last_integer("is 465.");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->begin, 3u);
  EXPECT_EQ(m->end, 6u);
}

TEST(Answer, Words) {
  const std::string q = "What is 57 + 12?  Héllo";
  std::vector<std::string> words;
  for (const auto& [b, e] : detail::split_words(q)) words.push_back(q.substr(b, e - b));
  EXPECT_EQ(words, (std::vector<std::string>{"What", "is", "57", "+", "12", "?", "Héllo"}));
}

TEST(Requests, ParseAttention) {
  AttentionRequest r = parse_attention_request("2:1");
  EXPECT_EQ(r.layer, 2);
  EXPECT_EQ(r.head, 1);
  EXPECT_EQ(r.query_begin, -1);
  r = parse_attention_request("0:*:10-12:0-8");
  EXPECT_EQ(r.head, -1);
  EXPECT_EQ(r.query_begin, 10);
  EXPECT_EQ(r.query_end, 12);
  EXPECT_EQ(r.key_begin, 0);
  EXPECT_EQ(r.key_end, 8);
  for (const char* bad : {"", "1", "a:1", "1:-2", "1:2:5-5", "1:2:7-3", "1:2:3", "1:2:3-4:5-6:7", "1:2x"})
    EXPECT_THROW(parse_attention_request(bad), Error) << bad;
}

}  // namespace
}  // namespace glassbox::analysis
