#include "analysis/steps.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "analysis/analysis.h"

namespace glassbox::analysis {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool all_space(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return is_space(c); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with_any(std::string_view s, std::initializer_list<std::string_view> prefixes) {
  for (std::string_view p : prefixes)
    if (s.substr(0, p.size()) == p) return true;
  return false;
}

bool contains_any(std::string_view s, std::initializer_list<std::string_view> parts) {
  for (std::string_view p : parts)
    if (s.find(p) != std::string_view::npos) return true;
  return false;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "so 465", "so -3": a result stated in words.
bool states_result(std::string_view s) {
  for (size_t at = s.find("so "); at != std::string_view::npos; at = s.find("so ", at + 1)) {
    if (at > 0 && std::isalpha(static_cast<unsigned char>(s[at - 1]))) continue;  // "also 3"
    size_t i = at + 3;
    while (i < s.size() && s[i] == ' ') ++i;
    if (i < s.size() && s[i] == '-') ++i;
    if (i < s.size() && is_digit(s[i])) return true;
  }
  return false;
}

bool ends_sentence(std::string_view text) {
  const std::string_view t = text;
  return !t.empty() && (t.back() == '.' || t.back() == '!' || t.back() == '?');
}

}  // namespace

const char* role_name(StepRole role) {
  switch (role) {
    case StepRole::Setup:
      return "setup";
    case StepRole::Compute:
      return "compute";
    case StepRole::Check:
      return "check";
    case StepRole::Backtrack:
      return "backtrack";
    case StepRole::Conclude:
      return "conclude";
  }
  return "setup";
}

StepRole classify_role(std::string_view text) {
  const std::string s = lower_ascii(trim(text));
  if (starts_with_any(s, {"wait", "actually", "no,", "no.", "hmm", "oops", "but wait", "on second thought",
                          "let me reconsider", "scratch that"}) ||
      contains_any(s, {"mistake", "that's wrong", "that is wrong", "not right", "incorrect"}))
    return StepRole::Backtrack;
  if (contains_any(s, {"check", "verif", "confirm", "make sure", "sanity"})) return StepRole::Check;
  if (contains_any(s, {"answer", "therefore", "thus", "hence", "in conclusion", "finally"})) return StepRole::Conclude;
  const bool has_digit = std::any_of(s.begin(), s.end(), is_digit);
  if ((has_digit && s.find('=') != std::string::npos) || states_result(s)) return StepRole::Compute;
  return StepRole::Setup;
}

std::pair<int, int> thinking_range(std::span<const TraceToken> trace) {
  int begin = -1, end = -1;
  for (size_t i = 0; i < trace.size(); ++i) {
    if (trace[i].phase != TokenPhase::Thinking) continue;
    if (begin < 0) begin = static_cast<int>(i);
    end = static_cast<int>(i) + 1;
  }
  return {begin, end};
}

std::vector<std::pair<int, int>> split_steps(std::span<const TraceToken> trace, int begin, int end, StepSplit mode) {
  std::vector<std::pair<int, int>> spans;
  if (begin < 0 || end <= begin) return spans;
  int start = begin;
  for (int i = begin; i < end; ++i) {
    const std::string& text = trace[i].text;
    bool boundary = text.find('\n') != std::string::npos || text.find('\r') != std::string::npos;
    if (!boundary && mode == StepSplit::Sentences && ends_sentence(text)) {
      boundary = i + 1 >= end || trace[i + 1].text.empty() || is_space(trace[i + 1].text.front());
    }
    if (boundary || i + 1 == end) {
      spans.emplace_back(start, i + 1);
      start = i + 1;
    }
  }
  // Whitespace-only pieces join the previous step (or the next, at the start).
  auto blank = [&](const std::pair<int, int>& span) {
    for (int i = span.first; i < span.second; ++i)
      if (!all_space(trace[i].text)) return false;
    return true;
  };
  std::vector<std::pair<int, int>> merged;
  bool pending_blank = false;
  int pending_start = 0;
  for (const auto& span : spans) {
    if (blank(span)) {
      if (!merged.empty()) {
        merged.back().second = span.second;
      } else if (!pending_blank) {
        pending_blank = true;
        pending_start = span.first;
      }
      continue;
    }
    merged.emplace_back(pending_blank ? pending_start : span.first, span.second);
    pending_blank = false;
  }
  if (pending_blank) merged.emplace_back(pending_start, end);  // the whole thinking is blank
  return merged;
}

double lowest_group_confidence(std::span<const TraceToken> tokens, int window) {
  if (tokens.empty()) return 0;
  const size_t w = std::clamp<size_t>(static_cast<size_t>(std::max(window, 1)), 1, tokens.size());
  double sum = 0;
  for (size_t i = 0; i < w; ++i) sum += tokens[i].confidence;
  double lowest = sum / static_cast<double>(w);
  for (size_t i = w; i < tokens.size(); ++i) {
    sum += tokens[i].confidence - tokens[i - w].confidence;
    lowest = std::min(lowest, sum / static_cast<double>(w));
  }
  return lowest;
}

std::vector<Step> build_steps(std::span<const TraceToken> trace, int begin, int end, const StepOptions& options) {
  std::vector<Step> steps;
  const auto spans = split_steps(trace, begin, end, options.split);
  if (spans.empty()) return steps;
  // Group confidence of each thinking token: mean over the last `window`
  // thinking tokens (fewer at the start of the thinking).
  const int window = std::max(options.group_window, 1);
  std::vector<double> group(static_cast<size_t>(end - begin));
  double sum = 0;
  for (int i = begin; i < end; ++i) {
    sum += trace[i].confidence;
    if (i - begin >= window) sum -= trace[i - window].confidence;
    group[static_cast<size_t>(i - begin)] = sum / std::min(i - begin + 1, window);
  }
  for (const auto& [b, e] : spans) {
    Step s;
    s.index = static_cast<int>(steps.size());
    s.token_begin = b;
    s.token_end = e;
    std::string text;
    double conf_sum = 0, entropy_sum = 0, logprob_sum = 0;
    s.min_confidence = std::numeric_limits<double>::infinity();
    s.min_logprob = std::numeric_limits<double>::infinity();
    s.lowest_group_confidence = std::numeric_limits<double>::infinity();
    for (int i = b; i < e; ++i) {
      const TraceToken& t = trace[i];
      text += t.text;
      conf_sum += t.confidence;
      entropy_sum += t.entropy;
      logprob_sum += t.logprob;
      s.min_confidence = std::min<double>(s.min_confidence, t.confidence);
      if (t.logprob < s.min_logprob) {
        s.min_logprob = t.logprob;
        s.least_likely_token = i;
      }
      s.lowest_group_confidence = std::min(s.lowest_group_confidence, group[static_cast<size_t>(i - begin)]);
    }
    const int n = e - b;
    s.mean_confidence = conf_sum / n;
    s.mean_entropy = entropy_sum / n;
    s.mean_logprob = logprob_sum / n;
    const int tail = std::clamp(options.tail_tokens, 1, n);
    double tail_sum = 0;
    for (int i = e - tail; i < e; ++i) tail_sum += trace[i].confidence;
    s.tail_confidence = tail_sum / tail;
    // Line breaks are layout; spaces inside the step are kept.
    std::string_view view = text;
    while (!view.empty() && (view.front() == '\n' || view.front() == '\r')) view.remove_prefix(1);
    while (!view.empty() && (view.back() == '\n' || view.back() == '\r')) view.remove_suffix(1);
    s.text = std::string(view);
    s.role = classify_role(s.text);
    if (s.role == StepRole::Compute) {
      if (const auto m = last_integer(s.text)) s.result = m->value;
    }
    steps.push_back(std::move(s));
  }
  return steps;
}

}  // namespace glassbox::analysis
