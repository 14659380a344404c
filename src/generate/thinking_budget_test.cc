#include "generate/thinking_budget.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "base/error.h"

namespace glassbox {
namespace {

// A fake vocabulary: markers, layout, a budget message, "Wait", words.
enum : TokenId {
  kOpen = 0,      // "<think>"
  kClose = 1,     // "</think>"
  kWait = 2,      // "Wait"
  kComma = 3,     // ","
  kNewlines = 4,  // "\n\n"
  kEos = 5,       // end of generation
  kMsg1 = 6,      // "\n\nConsidering the limited time"
  kMsg2 = 7,      // ", I have to answer now.\n"
  kLt = 8,        // "</"   (a close marker spelled over three tokens)
  kThink = 9,     // "think"
  kGt = 10,       // ">"
  kNewline = 11,  // "\n"
  kLtOpen = 12,   // "<"    (an open marker spelled over three tokens: "<" "think" ">")
  kWord = 100,    // 100+: "w100", "w101", ...
};

std::string text_of(TokenId id) {
  static const std::map<TokenId, std::string> texts{{kOpen, "<think>"},
                                                    {kClose, "</think>"},
                                                    {kWait, "Wait"},
                                                    {kComma, ","},
                                                    {kNewlines, "\n\n"},
                                                    {kEos, ""},
                                                    {kMsg1, "\n\nConsidering the limited time"},
                                                    {kMsg2, ", I have to answer now.\n"},
                                                    {kLt, "</"},
                                                    {kThink, "think"},
                                                    {kGt, ">"},
                                                    {kNewline, "\n"},
                                                    {kLtOpen, "<"}};
  auto it = texts.find(id);
  return it != texts.end() ? it->second : " w" + std::to_string(id);
}

ThinkingBudgetConfig base_config() {
  ThinkingBudgetConfig c;
  c.open_marker_tokens = {kOpen};
  c.close_marker_tokens = {kClose};
  c.after_close_tokens = {kNewlines};
  c.budget_message_tokens = {kMsg1, kMsg2};
  c.continuation_tokens = {kWait};
  c.end_of_generation_tokens = {kEos};
  return c;
}

std::vector<TokenId> words(int n, TokenId first = kWord) {
  std::vector<TokenId> out;
  for (int i = 0; i < n; ++i) out.push_back(first + i);
  return out;
}

std::vector<TokenId> concat(std::initializer_list<std::vector<TokenId>> parts) {
  std::vector<TokenId> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

struct Fed {
  std::vector<PlannedToken> tokens;
  std::vector<TokenId> replaced;
  std::vector<TokenId> ids() const {
    std::vector<TokenId> out;
    for (const auto& t : tokens) out.push_back(t.id);
    return out;
  }
};

// The generation loop with a scripted "model": the script is what the
// sampler returns, one id per step, whatever was fed before. Stops at an
// end-of-generation token that was fed, or when the script runs out.
Fed run_loop(ThinkingBudget& budget, const std::vector<TokenId>& script) {
  Fed fed;
  for (const auto& t : budget.start()) fed.tokens.push_back(t);
  for (TokenId sampled : script) {
    const Decision d = budget.step(sampled, text_of(sampled));
    if (d.action == Decision::Action::Replace) {
      EXPECT_EQ(d.replaced, sampled);
      fed.replaced.push_back(sampled);
    } else {
      EXPECT_FALSE(d.tokens.empty());
      EXPECT_EQ(d.tokens[0].id, sampled);
      EXPECT_EQ(d.tokens[0].origin, TokenOrigin::Sampled);
    }
    bool ended = false;
    for (const auto& t : d.tokens) {
      fed.tokens.push_back(t);
      ended = ended || t.id == kEos;
    }
    if (ended) break;
  }
  return fed;
}

// Independent count: fed ids strictly between the start of the block (the
// open marker, or the start when the prompt opened it) and the first close
// marker, leaving out the budget message ids and end tokens.
int count_thinking(const std::vector<TokenId>& ids, bool starts_in_thinking) {
  bool inside = starts_in_thinking;
  int count = 0;
  for (TokenId id : ids) {
    if (!inside) {
      if (id == kOpen) inside = true;
      continue;
    }
    if (id == kClose) break;
    if (id != kMsg1 && id != kMsg2 && id != kEos) ++count;
  }
  return count;
}

TEST(ThinkingBudget, BudgetGivesExactlyNThinkingTokensThenForcedClose) {
  for (int budget_n : {0, 1, 5, 10}) {
    ThinkingBudgetConfig config = base_config();
    config.starts_in_thinking = true;
    config.max_thinking_tokens = budget_n;
    ThinkingBudget budget(config);
    const std::vector<TokenId> script = concat({words(40), {kEos}});  // never closes by itself
    const Fed fed = run_loop(budget, script);
    const std::vector<TokenId> expected =
        concat({words(budget_n), {kMsg1, kMsg2, kClose, kNewlines}, words(40 - budget_n, kWord + budget_n), {kEos}});
    EXPECT_EQ(fed.ids(), expected) << "budget " << budget_n;
    EXPECT_EQ(count_thinking(fed.ids(), true), budget_n);
    EXPECT_EQ(budget.thinking_tokens(), budget_n);
    EXPECT_TRUE(budget.closed_by_force());
    // Forced tokens are marked as such, with their phases.
    for (size_t i = 0; i < fed.tokens.size(); ++i) {
      const PlannedToken& t = fed.tokens[i];
      if (t.id == kMsg1 || t.id == kMsg2) {
        EXPECT_EQ(t.origin, TokenOrigin::ForcedBudgetMessage);
        EXPECT_EQ(t.phase, TokenPhase::Thinking);
      } else if (t.id == kClose) {
        EXPECT_EQ(t.origin, TokenOrigin::ForcedClose);
        EXPECT_EQ(t.phase, TokenPhase::CloseMarker);
      } else if (t.id == kNewlines) {
        EXPECT_EQ(t.origin, TokenOrigin::ForcedClose);
        EXPECT_EQ(t.phase, TokenPhase::Answer);
      } else {
        EXPECT_EQ(t.origin, TokenOrigin::Sampled);
        EXPECT_EQ(t.phase, i < static_cast<size_t>(budget_n) ? TokenPhase::Thinking : TokenPhase::Answer);
      }
    }
  }
}

TEST(ThinkingBudget, BudgetNotReachedChangesNothing) {
  ThinkingBudgetConfig config = base_config();
  config.starts_in_thinking = true;
  config.max_thinking_tokens = 10;
  ThinkingBudget budget(config);
  const std::vector<TokenId> script = concat({words(3), {kClose, kNewlines}, words(20, 200), {kEos}});
  const Fed fed = run_loop(budget, script);
  EXPECT_EQ(fed.ids(), script);
  EXPECT_FALSE(budget.closed_by_force());
  EXPECT_EQ(budget.thinking_tokens(), 3);
  EXPECT_EQ(fed.tokens[3].phase, TokenPhase::CloseMarker);
  EXPECT_EQ(fed.tokens[3].origin, TokenOrigin::Sampled);
  EXPECT_EQ(budget.phase(), TokenPhase::Answer);
}

TEST(ThinkingBudget, RepeatedOpenMarkerAfterPromptOpenedIsNotCounted) {
  ThinkingBudgetConfig config = base_config();
  config.starts_in_thinking = true;
  config.max_thinking_tokens = 2;
  ThinkingBudget budget(config);
  const Fed fed = run_loop(budget, concat({{kOpen}, words(4), {kEos}}));
  EXPECT_EQ(fed.ids(), concat({{kOpen}, words(2), {kMsg1, kMsg2, kClose, kNewlines}, words(2, kWord + 2), {kEos}}));
  EXPECT_EQ(fed.tokens[0].phase, TokenPhase::OpenMarker);
  EXPECT_EQ(budget.thinking_tokens(), 2);
}

TEST(ThinkingBudget, ModelOpensTheBlockItself) {
  ThinkingBudgetConfig config = base_config();
  config.max_thinking_tokens = 2;
  config.budget_message_tokens.clear();  // message is optional
  ThinkingBudget budget(config);
  EXPECT_TRUE(budget.start().empty());
  EXPECT_EQ(budget.phase(), TokenPhase::BeforeThinking);
  std::vector<PlannedToken> fed;
  for (TokenId sampled : concat({{kNewline, kOpen}, words(5)})) {
    for (const auto& t : budget.step(sampled, text_of(sampled)).tokens) fed.push_back(t);
  }
  std::vector<TokenId> ids;
  for (const auto& t : fed) ids.push_back(t.id);
  EXPECT_EQ(ids, concat({{kNewline, kOpen}, words(2), {kClose, kNewlines}, words(3, kWord + 2)}));
  EXPECT_EQ(fed[0].phase, TokenPhase::BeforeThinking);
  EXPECT_EQ(fed[1].phase, TokenPhase::OpenMarker);
  EXPECT_EQ(count_thinking(ids, false), 2);
}

TEST(ThinkingBudget, OpenMarkerSpelledOverSeveralTokens) {
  ThinkingBudgetConfig config = base_config();
  config.open_marker_tokens.clear();  // only the text can tell
  config.max_thinking_tokens = 1;
  ThinkingBudget budget(config);
  budget.start();
  EXPECT_EQ(budget.step(kLtOpen, "<").tokens[0].phase, TokenPhase::BeforeThinking);
  EXPECT_EQ(budget.step(kThink, "think").tokens[0].phase, TokenPhase::BeforeThinking);
  EXPECT_EQ(budget.step(kGt, ">").tokens[0].phase, TokenPhase::OpenMarker);
  EXPECT_TRUE(budget.in_thinking());
  EXPECT_EQ(budget.step(kWord, text_of(kWord)).tokens.size(), 1u + 4u);  // word + msg + close + \n\n
}

TEST(ThinkingBudget, NoBlockMeansAnswerAndNoBudget) {
  ThinkingBudgetConfig config = base_config();
  config.max_thinking_tokens = 1;
  ThinkingBudget budget(config);
  const std::vector<TokenId> script = concat({words(10), {kOpen}, words(3, 300), {kEos}});
  const Fed fed = run_loop(budget, script);
  EXPECT_EQ(fed.ids(), script);  // a late <think> is part of the answer
  for (const auto& t : fed.tokens) EXPECT_EQ(t.phase, TokenPhase::Answer);
  EXPECT_EQ(budget.thinking_tokens(), 0);
  EXPECT_FALSE(budget.closed_by_force());
}

TEST(ThinkingBudget, MinThinkReplacesEarlyCloseWithWait) {
  ThinkingBudgetConfig config = base_config();
  config.starts_in_thinking = true;
  config.min_thinking_tokens = 5;
  ThinkingBudget budget(config);
  // The model tries to stop after 2, then after 4, then after 7 tokens.
  const std::vector<TokenId> script =
      concat({words(2), {kClose}, words(1, 150), {kClose}, words(2, 160), {kClose, kNewlines}, words(2, 170), {kEos}});
  const Fed fed = run_loop(budget, script);
  const std::vector<TokenId> expected =
      concat({words(2), {kWait}, words(1, 150), {kWait}, words(2, 160), {kClose, kNewlines}, words(2, 170), {kEos}});
  EXPECT_EQ(fed.ids(), expected);
  EXPECT_EQ(fed.replaced, (std::vector<TokenId>{kClose, kClose}));
  EXPECT_EQ(budget.continuations_forced(), 2);
  EXPECT_EQ(count_thinking(fed.ids(), true), 7);
  EXPECT_GE(count_thinking(fed.ids(), true), 5);
  EXPECT_EQ(fed.tokens[2].origin, TokenOrigin::ForcedContinuation);
  EXPECT_EQ(fed.tokens[2].phase, TokenPhase::Thinking);
  EXPECT_FALSE(budget.closed_by_force());
}

TEST(ThinkingBudget, MinThinkAlsoReplacesEndOfGenerationInsideTheBlock) {
  ThinkingBudgetConfig config = base_config();
  config.starts_in_thinking = true;
  config.min_thinking_tokens = 3;
  config.continuation_tokens = {kWait, kComma};
  ThinkingBudget budget(config);
  const Fed fed = run_loop(budget, concat({words(1), {kEos}, words(1, 150), {kClose}, words(1, 160), {kEos}}));
  EXPECT_EQ(fed.ids(), concat({words(1), {kWait, kComma}, words(1, 150), {kClose}, words(1, 160), {kEos}}));
  EXPECT_EQ(count_thinking(fed.ids(), true), 4);
}

TEST(ThinkingBudget, MinAndMaxTogetherKeepTheCountInRange) {
  // min 3, max 4, a two-token continuation: after two words the model closes;
  // "Wait" "," bring the block to 4 = the budget, so the close is forced.
  ThinkingBudgetConfig config = base_config();
  config.starts_in_thinking = true;
  config.min_thinking_tokens = 3;
  config.max_thinking_tokens = 4;
  config.continuation_tokens = {kWait, kComma};
  ThinkingBudget budget(config);
  Fed fed = run_loop(budget, concat({words(2), {kClose}, words(3, 150), {kEos}}));
  EXPECT_EQ(fed.ids(), concat({words(2), {kWait, kComma, kMsg1, kMsg2, kClose, kNewlines}, words(3, 150), {kEos}}));
  EXPECT_EQ(count_thinking(fed.ids(), true), 4);

  // The continuation is cut short rather than overrun the budget.
  ThinkingBudgetConfig tight = config;
  tight.min_thinking_tokens = 4;
  ThinkingBudget budget2(tight);
  fed = run_loop(budget2, concat({words(3), {kClose}, words(2, 150), {kEos}}));
  EXPECT_EQ(fed.ids(), concat({words(3), {kWait, kMsg1, kMsg2, kClose, kNewlines}, words(2, 150), {kEos}}));
  EXPECT_EQ(count_thinking(fed.ids(), true), 4);

  // A model that never closes still stops at the budget.
  ThinkingBudget budget3(config);
  fed = run_loop(budget3, concat({words(10), {kEos}}));
  EXPECT_EQ(count_thinking(fed.ids(), true), 4);
}

TEST(ThinkingBudget, NoThinkWhenThePromptOpenedTheBlock) {
  ThinkingBudgetConfig config = base_config();
  config.starts_in_thinking = true;
  config.no_think = true;
  ThinkingBudget budget(config);
  const Fed fed = run_loop(budget, concat({words(3), {kEos}}));
  EXPECT_EQ(fed.ids(), concat({{kClose, kNewlines}, words(3), {kEos}}));  // no budget message
  EXPECT_EQ(count_thinking(fed.ids(), true), 0);
  EXPECT_EQ(fed.tokens[0].origin, TokenOrigin::ForcedClose);
}

TEST(ThinkingBudget, NoThinkForcesAnEmptyBlockUpFront) {
  ThinkingBudgetConfig config = base_config();
  config.no_think = true;
  ThinkingBudget budget(config);
  const Fed fed = run_loop(budget, concat({words(2), {kEos}}));
  EXPECT_EQ(fed.ids(), concat({{kOpen, kClose, kNewlines}, words(2), {kEos}}));
  EXPECT_EQ(fed.tokens[0].origin, TokenOrigin::ForcedOpen);
  EXPECT_EQ(count_thinking(fed.ids(), false), 0);
}

TEST(ThinkingBudget, NoThinkClosesAModelOpenedBlockAtOnce) {
  ThinkingBudgetConfig config = base_config();
  config.no_think = true;
  config.open_marker_tokens.clear();  // nothing to force up front: wait for the model
  ThinkingBudget budget(config);
  const Fed fed = run_loop(budget, concat({{kOpen}, words(2), {kEos}}));
  EXPECT_EQ(fed.ids(), concat({{kOpen, kClose, kNewlines}, words(2), {kEos}}));
  EXPECT_EQ(fed.tokens[0].origin, TokenOrigin::Sampled);
  EXPECT_EQ(count_thinking(fed.ids(), false), 0);
}

TEST(ThinkingBudget, CloseMarkerSpelledOverSeveralTokens) {
  ThinkingBudgetConfig config = base_config();
  config.starts_in_thinking = true;
  config.close_marker_tokens = {kLt, kThink, kGt};
  ThinkingBudget budget(config);
  budget.start();
  budget.step(kWord, text_of(kWord));
  EXPECT_EQ(budget.step(kLt, "</").tokens[0].phase, TokenPhase::Thinking);
  EXPECT_EQ(budget.step(kThink, "think").tokens[0].phase, TokenPhase::Thinking);
  EXPECT_EQ(budget.step(kGt, ">").tokens[0].phase, TokenPhase::CloseMarker);
  EXPECT_EQ(budget.phase(), TokenPhase::Answer);

  // Under min-think only the completing piece is replaced.
  config.min_thinking_tokens = 10;
  ThinkingBudget forcing(config);
  forcing.start();
  forcing.step(kLt, "</");
  forcing.step(kThink, "think");
  const Decision d = forcing.step(kGt, ">");
  EXPECT_EQ(d.action, Decision::Action::Replace);
  EXPECT_EQ(d.replaced, kGt);
  ASSERT_EQ(d.tokens.size(), 1u);
  EXPECT_EQ(d.tokens[0].id, kWait);
  EXPECT_TRUE(forcing.in_thinking());

  // A forced close feeds all three pieces.
  config.min_thinking_tokens = 0;
  config.max_thinking_tokens = 1;
  config.budget_message_tokens.clear();
  ThinkingBudget capped(config);
  capped.start();
  const Decision forced = capped.step(kWord, text_of(kWord));
  std::vector<TokenId> ids;
  for (const auto& t : forced.tokens) ids.push_back(t.id);
  EXPECT_EQ(ids, (std::vector<TokenId>{kWord, kLt, kThink, kGt, kNewlines}));
}

TEST(ThinkingBudget, ZeroBudgetWithMessageAtStart) {
  ThinkingBudgetConfig config = base_config();
  config.starts_in_thinking = true;
  config.max_thinking_tokens = 0;
  ThinkingBudget budget(config);
  const auto planned = budget.start();
  std::vector<TokenId> ids;
  for (const auto& t : planned) ids.push_back(t.id);
  EXPECT_EQ(ids, (std::vector<TokenId>{kMsg1, kMsg2, kClose, kNewlines}));
}

TEST(ThinkingBudget, InvalidConfigurationsRaise) {
  auto rejects = [](auto mutate) {
    ThinkingBudgetConfig c = base_config();
    mutate(c);
    EXPECT_THROW(ThinkingBudget{c}, Error);
  };
  rejects([](ThinkingBudgetConfig& c) { c.max_thinking_tokens = -2; });
  rejects([](ThinkingBudgetConfig& c) { c.min_thinking_tokens = -1; });
  rejects([](ThinkingBudgetConfig& c) {
    c.min_thinking_tokens = 5;
    c.max_thinking_tokens = 4;
  });
  rejects([](ThinkingBudgetConfig& c) {
    c.no_think = true;
    c.min_thinking_tokens = 1;
  });
  rejects([](ThinkingBudgetConfig& c) {
    c.max_thinking_tokens = 3;
    c.close_marker_tokens.clear();
  });
  rejects([](ThinkingBudgetConfig& c) {
    c.no_think = true;
    c.close_marker_tokens.clear();
  });
  rejects([](ThinkingBudgetConfig& c) {
    c.min_thinking_tokens = 2;
    c.continuation_tokens.clear();
  });
  rejects([](ThinkingBudgetConfig& c) { c.close_marker_text.clear(); });

  ThinkingBudget budget(base_config());
  EXPECT_THROW(budget.step(kWord), Error);
  budget.start();
  EXPECT_THROW(budget.start(), Error);
  EXPECT_NO_THROW(budget.step(kWord, text_of(kWord)));
}

}  // namespace
}  // namespace glassbox
