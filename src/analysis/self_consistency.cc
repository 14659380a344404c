// Self-consistency with confidence (DeepConf, Fu et al. 2025, online mode):
// N sampled traces of the same question on the session, which reuses the
// prompt's KV cache (only its last token is evaluated again per trace). The
// first traces run in full and set a stop threshold from their lowest group
// confidences; later traces stop as soon as the group confidence of their
// last tokens falls below it. Finished traces vote, weighted by confidence.
#include <algorithm>
#include <deque>
#include <map>

#include "analysis/internal.h"
#include "base/stats.h"

namespace glassbox::analysis::detail {
namespace {

std::string answer_of(const std::string& content) {
  if (const auto m = last_integer(content)) return std::to_string(m->value);
  const size_t b = content.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = content.find_last_not_of(" \t\r\n");
  return content.substr(b, e - b + 1);
}

}  // namespace

SelfConsistency self_consistency(ChatSession& session, const TraceRecord& record, const AnalysisOptions& o,
                                 const AnswerInfo& answer) {
  SelfConsistency out;
  const auto t0 = Clock::now();
  out.samples = o.samples;
  const int warmup = std::min(o.warmup_samples, o.samples);
  const int window = o.trace_group_window;
  std::vector<double> warmup_confidences;
  for (int i = 0; i < o.samples; ++i) {
    ChatOptions co = record.options;
    co.sampling = o.sampling;
    co.sampling.seed = o.sampling.seed + static_cast<uint64_t>(i) + 1;
    // Online stop: the mean confidence of the last `window` tokens, checked
    // by the session before each new token.
    std::deque<float> recent;
    double recent_sum = 0;
    StreamCallbacks callbacks;
    if (o.early_stop && out.threshold) {
      callbacks.on_token = [&recent, &recent_sum, window](const TraceToken& t) {
        recent.push_back(t.confidence);
        recent_sum += t.confidence;
        if (static_cast<int>(recent.size()) > window) {
          recent_sum -= recent.front();
          recent.pop_front();
        }
      };
      callbacks.should_stop = [&recent, &recent_sum, window, threshold = *out.threshold] {
        return static_cast<int>(recent.size()) == window && recent_sum / window < threshold;
      };
    }
    const ChatResult r = session.generate(record.messages, co, callbacks);
    SampleTrace s;
    s.index = i;
    s.warmup = i < warmup;
    s.finish_reason = r.finish_reason;
    s.tokens = static_cast<int>(r.trace.size());
    s.stopped_early = r.finish_reason == "cancelled";
    s.confidence = lowest_group_confidence(r.trace, window);
    double conf = 0;
    for (const TraceToken& t : r.trace) conf += t.confidence;
    s.mean_confidence = r.trace.empty() ? 0 : conf / static_cast<double>(r.trace.size());
    if (!s.stopped_early) s.answer = answer_of(r.content);
    out.tokens_generated += s.tokens;
    if (s.warmup) warmup_confidences.push_back(s.confidence);
    if (o.early_stop && i + 1 == warmup && warmup < o.samples)
      out.threshold = quantile(warmup_confidences, 1.0 - o.keep_fraction);
    out.traces.push_back(std::move(s));
  }

  // Votes of the finished traces.
  std::map<std::string, Vote> votes;
  double full_tokens = 0;
  int full = 0;
  for (const SampleTrace& s : out.traces) {
    if (s.stopped_early) continue;
    full_tokens += s.tokens;
    ++full;
    if (s.answer.empty()) continue;
    Vote& v = votes[s.answer];
    v.answer = s.answer;
    ++v.count;
    v.weight += s.confidence;
  }
  for (auto& [key, v] : votes) out.votes.push_back(v);
  std::stable_sort(out.votes.begin(), out.votes.end(),
                   [](const Vote& a, const Vote& b) { return a.weight > b.weight; });
  int voters = 0;
  const Vote* majority = nullptr;
  for (const Vote& v : out.votes) {
    voters += v.count;
    if (!majority || v.count > majority->count) majority = &v;
  }
  if (!out.votes.empty()) {
    out.weighted_winner = out.votes.front().answer;
    out.majority = majority->answer;
    out.agreement = static_cast<double>(out.votes.front().count) / voters;
  }
  out.winner_matches_trace =
      answer.found && !out.weighted_winner.empty() && out.weighted_winner == answer_of(record.result.content);
  // Tokens a stopped trace did not generate, against the finished ones' mean length.
  if (full > 0) {
    const double mean_full = full_tokens / full;
    for (const SampleTrace& s : out.traces)
      if (s.stopped_early) out.tokens_saved += static_cast<int64_t>(std::max(0.0, mean_full - s.tokens));
  }
  out.computed = true;
  out.seconds = seconds_since(t0);
  return out;
}

}  // namespace glassbox::analysis::detail
