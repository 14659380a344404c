#include "server/reasoning_summary.h"

#include <algorithm>

#include "audit/canonical_json.h"

namespace glassbox::server {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

struct Range {
  size_t begin, end;  // byte offsets into the thinking text, trimmed
};

// Splits text at blank lines (a newline, optional spaces, another newline).
std::vector<Range> split_paragraphs(std::string_view text) {
  std::vector<Range> out;
  size_t start = 0;
  auto emit = [&](size_t b, size_t e) {
    while (b < e && is_space(text[b])) ++b;
    while (e > b && is_space(text[e - 1])) --e;
    if (e > b) out.push_back({b, e});
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') continue;
    size_t j = i + 1;
    while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r')) ++j;
    if (j < text.size() && text[j] == '\n') {
      emit(start, i);
      while (j < text.size() && is_space(text[j])) ++j;
      start = j;
      i = j - 1;
    }
  }
  emit(start, text.size());
  return out;
}

std::vector<Range> split_lines(std::string_view text, Range r) {
  std::vector<Range> out;
  size_t b = r.begin;
  for (size_t i = r.begin; i <= r.end; ++i) {
    if (i == r.end || text[i] == '\n') {
      size_t lb = b, le = i;
      while (lb < le && is_space(text[lb])) ++lb;
      while (le > lb && is_space(text[le - 1])) --le;
      if (le > lb) out.push_back({lb, le});
      b = i + 1;
    }
  }
  return out;
}

}  // namespace

std::string abridge_step(std::string_view step_text) {
  const std::string_view step = trim(step_text);
  std::string_view line = step.substr(0, std::min(step.find('\n'), step.size()));
  line = trim(line);
  const size_t limit = std::min(kMaxTitleBytes, step.size() / 2);
  if (line.size() <= limit) return audit::sanitize_utf8(line);
  std::string_view cut = line.substr(0, audit::utf8_prefix_length(line, limit));
  while (!cut.empty() && is_space(cut.back())) cut.remove_suffix(1);
  return audit::sanitize_utf8(cut) + "\xE2\x80\xA6";  // "…"
}

std::vector<StepSummary> summarize_thinking(const std::vector<ThinkingToken>& thinking) {
  std::string text;
  std::vector<size_t> starts;
  starts.reserve(thinking.size());
  for (const ThinkingToken& t : thinking) {
    starts.push_back(text.size());
    text += t.text;
  }
  std::vector<Range> steps = split_paragraphs(text);
  if (steps.size() == 1) {
    std::vector<Range> lines = split_lines(text, steps[0]);
    if (lines.size() > 1) steps = std::move(lines);
  }
  if (steps.size() > kMaxSummarySteps) {
    steps[kMaxSummarySteps - 1].end = steps.back().end;
    steps.resize(kMaxSummarySteps);
  }
  std::vector<StepSummary> out(steps.size());
  if (steps.empty()) return out;
  std::vector<double> conf_sum(steps.size(), 0), lp_sum(steps.size(), 0);
  size_t s = 0;
  for (size_t i = 0; i < thinking.size(); ++i) {
    while (s + 1 < steps.size() && starts[i] >= steps[s + 1].begin) ++s;
    // A token in the gap before a step's first byte belongs to that step.
    size_t target = s;
    if (starts[i] >= steps[s].end && s + 1 < steps.size()) target = s + 1;
    ++out[target].tokens;
    conf_sum[target] += thinking[i].confidence;
    lp_sum[target] += thinking[i].logprob;
  }
  for (size_t k = 0; k < steps.size(); ++k) {
    out[k].step = static_cast<int>(k + 1);
    out[k].title = abridge_step(std::string_view(text).substr(steps[k].begin, steps[k].end - steps[k].begin));
    if (out[k].tokens > 0) {
      out[k].confidence = conf_sum[k] / out[k].tokens;
      out[k].mean_logprob = lp_sum[k] / out[k].tokens;
    }
  }
  return out;
}

std::vector<StepSummary> summarize_report(const nlohmann::json& report) {
  std::vector<StepSummary> out;
  if (!report.is_object() || !report.contains("steps") || !report["steps"].is_array()) return out;
  for (const auto& step : report["steps"]) {
    if (!step.is_object()) continue;
    std::string source;
    for (const char* key : {"text", "first_line", "title"}) {
      if (step.contains(key) && step[key].is_string()) {
        source = step[key].get<std::string>();
        break;
      }
    }
    StepSummary s;
    s.step = static_cast<int>(out.size() + 1);
    s.title = abridge_step(source);
    for (const char* key : {"confidence", "mean_confidence"})
      if (step.contains(key) && step[key].is_number()) {
        s.confidence = step[key].get<double>();
        break;
      }
    if (step.contains("tokens") && step["tokens"].is_number_integer()) s.tokens = step["tokens"].get<int>();
    if (step.contains("mean_logprob") && step["mean_logprob"].is_number())
      s.mean_logprob = step["mean_logprob"].get<double>();
    out.push_back(std::move(s));
    if (out.size() == kMaxSummarySteps) break;
  }
  return out;
}

nlohmann::ordered_json summary_json(const std::vector<StepSummary>& steps) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const StepSummary& s : steps)
    // No log-probabilities: for a one-token step that would be the token's own.
    out.push_back({{"step", s.step}, {"title", s.title}, {"tokens", s.tokens}, {"confidence", s.confidence}});
  return out;
}

}  // namespace glassbox::server
