// Generation with thinking control on the reference models: budgets hold
// exactly, min-think forces more thinking, no-think gives none, and the token
// trace is consistent with what was generated.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "session/chat_session.h"

namespace glassbox {
namespace {

namespace fs = std::filesystem;
const fs::path kRef = fs::path(GLASSBOX_TEST_DATA) / "reference";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override { model_ = Model::load((kRef / "models" / "rand-qwen3.f32.gguf").string()); }

  // Options for a template whose generation prompt opens the thinking block
  // (the DeepSeek-R1 distills), or Qwen3's, whose prompt leaves it to the model.
  ChatOptions options(const std::string& template_file, uint64_t seed) {
    ChatOptions o;
    o.template_override = slurp(kRef / "templates" / "templates" / template_file);
    o.sampling.temperature = 1.0f;
    o.sampling.top_k = 0;
    o.sampling.top_p = 1.0f;
    o.sampling.min_p = 0.0f;
    o.sampling.seed = seed;
    o.max_tokens = 48;
    // This copy of the R1 template closes the block unless enable_thinking is set.
    if (template_file.find("DeepSeek-R1") != std::string::npos) o.template_kwargs["enable_thinking"] = true;
    return o;
  }

  // Tokens of a phase in the trace; an end-of-generation token is not text.
  int count_phase(const ChatResult& r, TokenPhase phase) const {
    int n = 0;
    for (const auto& t : r.trace) n += t.phase == phase && !model_->tokenizer().is_end_of_generation(t.id);
    return n;
  }

  const nlohmann::ordered_json messages_ = nlohmann::ordered_json::parse(R"([{"role":"user","content":"hello"}])");
  std::unique_ptr<Model> model_;
};

constexpr const char* kR1 = "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja";
constexpr const char* kQwen3 = "Qwen-Qwen3-0.6B.jinja";

TEST_F(SessionTest, ThinkBudgetIsExact) {
  for (int budget : {0, 1, 5, 17}) {
    int forced = 0;
    for (uint64_t seed : {1u, 2u, 3u}) {
      ChatSession s(*model_);
      ChatOptions o = options(kR1, seed);
      o.think_budget = budget;
      const ChatResult r = s.generate(messages_, o);
      EXPECT_LE(r.reasoning_tokens, budget) << "seed " << seed;
      EXPECT_EQ(r.reasoning_tokens, count_phase(r, TokenPhase::Thinking));
      if (r.thinking_forced_closed) {
        ++forced;
        EXPECT_EQ(r.reasoning_tokens, budget);
        EXPECT_FALSE(r.thinking_unclosed);
        EXPECT_GT(count_phase(r, TokenPhase::Answer), 0);
      }
    }
    // A random model rarely closes the block itself: the budget must have.
    EXPECT_GT(forced, 0) << "budget " << budget;
  }
}

TEST_F(SessionTest, MinThinkGivesAtLeastN) {
  for (uint64_t seed : {4u, 5u}) {
    ChatSession s(*model_);
    ChatOptions o = options(kR1, seed);
    o.min_think = 30;
    o.max_tokens = 40;
    const ChatResult r = s.generate(messages_, o);
    EXPECT_GE(r.reasoning_tokens, 30) << "seed " << seed;
  }
}

TEST_F(SessionTest, NoThinkGivesNoThinking) {
  for (const char* tmpl : {kR1, kQwen3}) {
    for (uint64_t seed : {6u, 7u}) {
      ChatSession s(*model_);
      ChatOptions o = options(tmpl, seed);
      o.no_think = true;
      const ChatResult r = s.generate(messages_, o);
      EXPECT_EQ(r.reasoning_tokens, 0) << tmpl;
      EXPECT_TRUE(r.reasoning.empty()) << tmpl;
    }
  }
  // Qwen3's template knows enable_thinking: the prompt itself closes the block.
  ChatSession s(*model_);
  ChatOptions o = options(kQwen3, 1);
  o.no_think = true;
  EXPECT_NE(s.render_prompt(messages_, o).find("<think>\n\n</think>\n\n"), std::string::npos);
}

TEST_F(SessionTest, TraceIsConsistent) {
  ChatSession s(*model_);
  ChatOptions o = options(kR1, 11);
  o.think_budget = 10;
  const ChatResult r = s.generate(messages_, o);
  ASSERT_FALSE(r.trace.empty());
  std::string text;
  for (const auto& t : r.trace) {
    EXPECT_LE(t.logprob, 1e-6f);
    EXPECT_GE(t.entropy, 0.0f);
    EXPECT_LE(t.entropy, std::log(512.0f) + 1e-3f);
    ASSERT_EQ(t.top.size(), 20u);
    for (size_t i = 1; i < t.top.size(); ++i) EXPECT_GE(t.top[i - 1].logprob, t.top[i].logprob);
    // A sampled token's logprob is the model's: if it is in the top-k, it matches.
    for (const auto& alt : t.top) {
      if (alt.id == t.id) {
        EXPECT_NEAR(alt.logprob, t.logprob, 1e-5);
      }
    }
    text += t.text;
  }
  // The reasoning and the answer are the generated text, split at the markers.
  EXPECT_NE(text.find(r.reasoning), std::string::npos);
  EXPECT_NE(text.find(r.content), std::string::npos);
}

TEST_F(SessionTest, SameSeedSameOutputAndPrefixReuse) {
  ChatSession a(*model_);
  ChatOptions o = options(kQwen3, 21);
  const ChatResult r1 = a.generate(messages_, o);
  const ChatResult r2 = a.generate(messages_, o);  // reuses the cached prompt
  ChatSession b(*model_);
  const ChatResult r3 = b.generate(messages_, o);
  EXPECT_EQ(r1.reasoning + "|" + r1.content, r2.reasoning + "|" + r2.content);
  EXPECT_EQ(r1.reasoning + "|" + r1.content, r3.reasoning + "|" + r3.content);
}

TEST_F(SessionTest, StopStringEndsGeneration) {
  ChatSession s(*model_);
  ChatOptions o = options(kQwen3, 31);
  o.max_tokens = 64;
  const ChatResult full = s.generate(messages_, o);
  ASSERT_GE(full.content.size(), 4u);
  o.stop = {full.content.substr(2, 2)};
  const ChatResult stopped = s.generate(messages_, o);
  EXPECT_EQ(stopped.finish_reason, "stop");
  EXPECT_EQ(stopped.content.find(o.stop[0]), std::string::npos);
}

TEST_F(SessionTest, MissingTemplateIsAnError) {
  ChatSession s(*model_);
  ChatOptions o;
  EXPECT_THROW(s.generate(messages_, o), Error);
}

}  // namespace
}  // namespace glassbox
