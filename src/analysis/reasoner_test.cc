// Behavioural claims of the analysis on the tiny reasoner
// (models/glassbox-tiny-reasoner.gguf), over a fixed problem set:
//   1. the early-answer probability of the final answer is low (< 0.5)
//      before the step that computes the final result and high (>= 0.5)
//      from it on, in >= 90% of the problems whose answer is not already
//      written before that step (in the question or an earlier line: "56 -
//      29 x 0" is 56, "94 - (94 - 10 * 25)" is the 250 of "10*25=250"; there
//      the model can copy the answer early, and does);
//   2. removing the final computation step lowers the answer's
//      log-probability more than removing the first step, in >= 90%;
//   3. with the thinking forced to start with a prefix holding a planted
//      arithmetic error, the report flags that step (lowest confidence,
//      lowest group confidence, least likely token, or most important), in
//      >= 80%.
// The default set is models/eval/ci-small.jsonl; for the full measurement:
//   GLASSBOX_ANALYSIS_PROBLEMS=models/eval/heldout-500.jsonl GLASSBOX_ANALYSIS_LIMIT=200 analysis_reasoner_test
// (prints the figures quoted in docs/analysis-report.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "analysis/analysis.h"

namespace glassbox::analysis {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

const fs::path kSource(GLASSBOX_SOURCE_DIR);
const fs::path kModel = kSource / "models" / "glassbox-tiny-reasoner.gguf";

struct Problem {
  std::string question;
  long long answer;
};

std::vector<Problem> load_problems() {
  fs::path path = kSource / "models" / "eval" / "ci-small.jsonl";
  size_t limit = 20;
  if (const char* env = std::getenv("GLASSBOX_ANALYSIS_PROBLEMS"); env && *env) path = env;
  if (const char* env = std::getenv("GLASSBOX_ANALYSIS_LIMIT"); env && *env) limit = std::strtoul(env, nullptr, 10);
  std::ifstream in(path);
  std::vector<Problem> out;
  std::string line;
  while (out.size() < limit && std::getline(in, line)) {
    if (line.empty()) continue;
    const ojson j = ojson::parse(line);
    out.push_back({j.at("question").get<std::string>(), j.at("answer").get<long long>()});
  }
  return out;
}

ChatOptions greedy() {
  ChatOptions o;
  o.sampling.temperature = 0.0f;
  o.max_tokens = 512;
  return o;
}

AnalysisOptions curve_and_importance() {
  AnalysisOptions o;
  o.occlusion = o.attention = false;
  return o;
}

// "57+12=69" -> "57+12=70": the result of a "...=N" line, off by one.
std::optional<std::string> plant_error(const std::string& step) {
  // The step must end in "=N" or "=-N".
  size_t begin = step.size();
  while (begin > 0 && step[begin - 1] >= '0' && step[begin - 1] <= '9') --begin;
  if (begin == step.size()) return std::nullopt;
  const bool negative = begin > 0 && step[begin - 1] == '-';
  const size_t eq = begin - (negative ? 1 : 0);
  if (eq == 0 || step[eq - 1] != '=') return std::nullopt;
  const long long wrong = std::stoll(step.substr(begin)) + 1;
  return step.substr(0, eq) + (negative ? "-" : "") + std::to_string(wrong);
}

// Every number written in the text, without its sign: "9-544+18" -> 9, 544, 18.
std::vector<long long> numbers_in(const std::string& text) {
  std::vector<long long> out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] < '0' || text[i] > '9') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j - i <= 12) out.push_back(std::stoll(text.substr(i, j - i)));
    i = j;
  }
  return out;
}

// Whether |answer| is written in the question or in a step before `final_step`.
bool answer_written_before(const Report& rep, const std::string& question, long long answer, int final_step) {
  const long long magnitude = answer < 0 ? -answer : answer;
  auto holds = [&](const std::string& text) {
    for (long long v : numbers_in(text))
      if (v == magnitude) return true;
    return false;
  };
  if (holds(question)) return true;
  for (int i = 0; i < final_step && i < static_cast<int>(rep.steps.size()); ++i)
    if (holds(rep.steps[static_cast<size_t>(i)].text)) return true;
  return false;
}

class ReasonerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kModel))
      GTEST_SKIP() << "models/glassbox-tiny-reasoner.gguf is missing (the tiny reasoner has not been trained yet)";
    model_ = Model::load(kModel.string());
    problems_ = load_problems();
    ASSERT_FALSE(problems_.empty());
  }

  TraceRecord generate(ChatSession& session, const std::string& question, const ChatOptions& options) {
    TraceRecord rec;
    rec.model = kModel.string();
    rec.messages = ojson::array({{{"role", "user"}, {"content", question}}});
    rec.options = options;
    rec.result = session.generate(rec.messages, options);
    return rec;
  }

  std::unique_ptr<Model> model_;
  std::vector<Problem> problems_;
};

TEST_F(ReasonerTest, EarlyAnswerRisesAtTheFinalComputationAndItMattersMost) {
  ChatSession session(*model_);
  int n = 0, curve_ok = 0, importance_ok = 0, correct = 0, decided_at_final = 0;
  int n_unwritten = 0, curve_ok_unwritten = 0;  // problems whose answer is not written before step f
  for (const Problem& p : problems_) {
    const TraceRecord rec = generate(session, p.question, greedy());
    const Report rep = analyze(session, rec, curve_and_importance());
    ++n;
    correct += rep.answer.value == p.answer;
    const int f = rep.flags.final_result;
    if (f < 0 || !rep.early_answer.computed || !rep.importance.computed) {
      std::printf("  no final computation step found: %s -> %s\n", p.question.c_str(), rep.content.c_str());
      continue;
    }
    bool ok = true;
    for (const EarlyAnswerPoint& pt : rep.early_answer.points)
      ok = ok && (pt.after_step < f ? pt.probability < 0.5 : pt.probability >= 0.5);
    curve_ok += ok;
    const bool written = answer_written_before(rep, p.question, p.answer, f);
    n_unwritten += !written;
    curve_ok_unwritten += !written && ok;
    if (!ok) {
      std::printf("  curve not low-then-high around step %d%s: %s ->", f, written ? " (answer written earlier)" : "",
                  p.question.c_str());
      for (const EarlyAnswerPoint& pt : rep.early_answer.points) std::printf(" %d:%.2f", pt.after_step, pt.probability);
      std::printf("\n");
    }
    decided_at_final += rep.early_answer.decided_step == f;
    const auto& im = rep.importance.steps;
    importance_ok += f != 0 && im[static_cast<size_t>(f)].removed_delta > im[0].removed_delta;
  }
  std::printf(
      "tiny reasoner, %d problems: accuracy %.1f%%; early-answer low before / high from the final "
      "computation: %.1f%% of all, %.1f%% of the %d whose answer is not written earlier (decided exactly there: "
      "%.1f%% of all); removing the final computation hurts more than removing the first step: %.1f%%\n",
      n, 100.0 * correct / n, 100.0 * curve_ok / n, 100.0 * curve_ok_unwritten / std::max(1, n_unwritten), n_unwritten,
      100.0 * decided_at_final / n, 100.0 * importance_ok / n);
  ASSERT_GE(n_unwritten, n / 2) << "most answers are new numbers";
  EXPECT_GE(curve_ok_unwritten, 0.9 * n_unwritten);
  EXPECT_GE(importance_ok, 0.9 * n);
}

TEST_F(ReasonerTest, PlantedArithmeticErrorIsFlagged) {
  ChatSession session(*model_);
  int n = 0, flagged = 0, by_confidence = 0, by_group = 0, by_token = 0, by_importance = 0, followed = 0;
  for (const Problem& p : problems_) {
    const TraceRecord clean = generate(session, p.question, greedy());
    const Report clean_rep = analyze(session, clean, [] {
      AnalysisOptions o;
      o.early_answer = o.importance = o.occlusion = o.attention = false;
      return o;
    }());
    // The first "...=N" step gets N+1; the thinking is forced to start with
    // the steps up to it, then the model goes on.
    int planted = -1;
    std::string prefix = "<think>\n";
    for (const Step& s : clean_rep.steps) {
      if (const auto wrong = plant_error(s.text)) {
        prefix += *wrong + "\n";
        planted = s.index;
        break;
      }
      prefix += s.text + "\n";
    }
    if (planted < 0) continue;
    ChatOptions o = greedy();
    o.assistant_prefix = prefix;
    const TraceRecord rec = generate(session, p.question, o);
    AnalysisOptions ao;
    ao.occlusion = ao.attention = false;
    const Report rep = analyze(session, rec, ao);
    ++n;
    if (static_cast<int>(rep.steps.size()) <= planted) continue;
    const StepFlags& f = rep.flags;
    by_confidence += f.lowest_confidence == planted;
    by_group += f.lowest_group_confidence == planted;
    by_token += f.least_likely_token == planted;
    by_importance += f.most_important == planted;
    flagged += f.lowest_confidence == planted || f.lowest_group_confidence == planted ||
               f.least_likely_token == planted || f.most_important == planted;
    followed += rep.answer.value && *rep.answer.value != p.answer;
  }
  ASSERT_GT(n, 0) << "no step with a result to corrupt";
  std::printf(
      "tiny reasoner, %d planted errors: flagged %.1f%% (lowest confidence %.1f%%, lowest group confidence "
      "%.1f%%, least likely token %.1f%%, most important %.1f%%); the answer followed the error in %.1f%%\n",
      n, 100.0 * flagged / n, 100.0 * by_confidence / n, 100.0 * by_group / n, 100.0 * by_token / n,
      100.0 * by_importance / n, 100.0 * followed / n);
  EXPECT_GE(flagged, 0.8 * n);
}

}  // namespace
}  // namespace glassbox::analysis
