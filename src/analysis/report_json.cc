// The JSON report (schema: docs/analysis-report.md).
#include <cmath>

#include "analysis/analysis.h"
#include "analysis/trace_io.h"

namespace glassbox::analysis {
namespace {

using ojson = nlohmann::ordered_json;

// JSON has no infinities or NaN: they become null.
ojson number(double v) { return std::isfinite(v) ? ojson(v) : ojson(nullptr); }

template <typename T>
ojson optional(const std::optional<T>& v) {
  if (!v) return nullptr;
  if constexpr (std::is_floating_point_v<T>) return number(*v);
  return *v;
}

ojson span(int begin, int end) { return ojson::array({begin, end}); }

ojson skipped_or(bool computed, const std::string& skipped, ojson j) {
  if (!computed) return ojson{{"computed", false}, {"skipped", skipped}};
  return j;
}

const char* split_name(StepSplit s) { return s == StepSplit::Lines ? "lines" : "sentences"; }

ojson options_json(const AnalysisOptions& o) {
  ojson attention = ojson::array();
  for (const AttentionRequest& r : o.attention_maps)
    attention.push_back({{"layer", r.layer},
                         {"head", r.head},
                         {"queries", span(r.query_begin, r.query_end)},
                         {"keys", span(r.key_begin, r.key_end)}});
  return {{"split", split_name(o.steps.split)},
          {"tail_tokens", o.steps.tail_tokens},
          {"group_window", o.steps.group_window},
          {"trace_group_window", o.trace_group_window},
          {"decision_threshold", o.decision_threshold},
          {"greedy_max_tokens", o.greedy_max_tokens},
          {"resamples", o.resamples},
          {"occlusion", o.occlusion},
          {"attention", o.attention},
          {"max_occlusion_words", o.max_occlusion_words},
          {"mask_text", o.mask_text},
          {"logit_lens", o.logit_lens},
          {"attention_maps", attention},
          {"samples", o.samples},
          {"warmup_samples", o.warmup_samples},
          {"keep_fraction", o.keep_fraction},
          {"early_stop", o.early_stop},
          {"sampling",
           {{"temperature", o.sampling.temperature},
            {"top_k", o.sampling.top_k},
            {"top_p", o.sampling.top_p},
            {"min_p", o.sampling.min_p},
            {"seed", o.sampling.seed}}}};
}

}  // namespace

std::string dump_json(const ojson& json, int indent) {
  return json.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

ojson to_json(const Report& rep) {
  ojson j;
  j["format"] = "glassbox-analysis";
  j["version"] = 1;
  j["model"] = rep.model;
  j["question"] = rep.question;
  j["reasoning"] = rep.reasoning;
  j["content"] = rep.content;
  j["finish_reason"] = rep.finish_reason;

  const AnswerInfo& a = rep.answer;
  j["answer"] = {{"found", a.found},
                 {"text", a.text},
                 {"value", optional(a.value)},
                 {"tokens", span(a.token_begin, a.token_end)},
                 {"bridge", a.bridge_text},
                 {"logprob", number(a.logprob)},
                 {"probability", number(std::exp(a.logprob))}};

  const TraceSummary& s = rep.summary;
  j["summary"] = {{"prompt_tokens", s.prompt_tokens},
                  {"generated_tokens", s.generated_tokens},
                  {"thinking_tokens", s.thinking_tokens},
                  {"answer_tokens", s.answer_tokens},
                  {"steps", rep.steps.size()},
                  {"mean_confidence", number(s.mean_confidence)},
                  {"lowest_group_confidence", number(s.lowest_group_confidence)},
                  {"tail_confidence", number(s.tail_confidence)},
                  {"mean_entropy", number(s.mean_entropy)}};

  ojson steps = ojson::array();
  for (const Step& st : rep.steps) {
    ojson sj;
    sj["index"] = st.index;
    sj["text"] = st.text;
    sj["tokens"] = span(st.token_begin, st.token_end);
    sj["token_count"] = st.token_end - st.token_begin;
    sj["role"] = role_name(st.role);
    sj["mean_confidence"] = number(st.mean_confidence);  // = confidence.mean, flat for simple readers
    sj["confidence"] = {{"mean", number(st.mean_confidence)},
                        {"min", number(st.min_confidence)},
                        {"tail", number(st.tail_confidence)},
                        {"lowest_group", number(st.lowest_group_confidence)}};
    sj["mean_entropy"] = number(st.mean_entropy);
    sj["mean_logprob"] = number(st.mean_logprob);
    sj["min_logprob"] = number(st.min_logprob);
    const TraceToken& least = rep.trace[static_cast<size_t>(st.least_likely_token)];
    sj["least_likely_token"] = {
        {"index", st.least_likely_token}, {"text", least.text}, {"logprob", number(least.logprob)}};
    sj["result"] = optional(st.result);
    steps.push_back(std::move(sj));
  }
  j["steps"] = std::move(steps);

  auto step_or_null = [](int i) { return i < 0 ? ojson(nullptr) : ojson(i); };
  const StepFlags& f = rep.flags;
  j["flags"] = {{"lowest_confidence", step_or_null(f.lowest_confidence)},
                {"lowest_group_confidence", step_or_null(f.lowest_group_confidence)},
                {"least_likely_token", step_or_null(f.least_likely_token)},
                {"most_important", step_or_null(f.most_important)},
                {"decisive", step_or_null(f.decisive)},
                {"final_result", step_or_null(f.final_result)}};

  {
    const EarlyAnswer& e = rep.early_answer;
    ojson points = ojson::array();
    for (const EarlyAnswerPoint& p : e.points)
      points.push_back({{"after_step", p.after_step},
                        {"position", p.position},
                        {"logprob", number(p.logprob)},
                        {"probability", number(p.probability)},
                        {"greedy_text", p.greedy_text},
                        {"greedy_answer", optional(p.greedy_answer)},
                        {"greedy_matches", p.greedy_matches}});
    j["early_answer"] = skipped_or(e.computed, e.skipped,
                                   {{"computed", true},
                                    {"threshold", rep.options.decision_threshold},
                                    {"decided_step", optional(e.decided_step)},
                                    {"points", points},
                                    {"tokens_evaluated", e.tokens_evaluated},
                                    {"greedy_tokens_evaluated", e.greedy_tokens_evaluated},
                                    {"seconds", e.seconds}});
  }
  {
    const Importance& im = rep.importance;
    ojson list = ojson::array();
    for (const StepImportance& si : im.steps) {
      ojson sj = {{"step", si.step},
                  {"removed_logprob", number(si.removed_logprob)},
                  {"removed_delta", number(si.removed_delta)}};
      sj["importance"] = number(si.importance);
      if (im.resamples > 0) {
        sj["resampled_logprob"] = optional(si.resampled_logprob);
        sj["resampled_delta"] = optional(si.resampled_delta);
        sj["resampled_importance"] = optional(si.resampled_importance);
        sj["identical_resamples"] = si.identical_resamples;
        sj["resampled_texts"] = si.resampled_texts;
      }
      list.push_back(std::move(sj));
    }
    j["importance"] = skipped_or(im.computed, im.skipped,
                                 {{"computed", true},
                                  {"baseline_logprob", number(im.baseline_logprob)},
                                  {"resamples", im.resamples},
                                  {"steps", list},
                                  {"top", im.top},
                                  {"tokens_evaluated", im.tokens_evaluated},
                                  {"seconds", im.seconds}});
  }
  {
    const PromptAttribution& pa = rep.attribution;
    ojson words = ojson::array();
    for (const WordAttribution& w : pa.words)
      words.push_back({{"word", w.word},
                       {"bytes", span(w.byte_begin, w.byte_end)},
                       {"tokens", span(w.token_begin, w.token_end)},
                       {"occlusion", optional(w.occlusion)},
                       {"occlusion_response", optional(w.occlusion_response)},
                       {"attention", number(w.attention)}});
    j["prompt_attribution"] = skipped_or(pa.computed, pa.skipped,
                                         {{"computed", true},
                                          {"question", pa.question},
                                          {"baseline_response_logprob", number(pa.baseline_response_logprob)},
                                          {"attention_on_question", number(pa.attention_on_question)},
                                          {"words", words},
                                          {"tokens_evaluated", pa.tokens_evaluated},
                                          {"seconds", pa.seconds}});
  }
  {
    const LogitLens& l = rep.logit_lens;
    ojson layers = ojson::array();
    for (const LogitLensLayer& x : l.layers)
      layers.push_back({{"layer", x.layer},
                        {"rank", x.rank},
                        {"probability", number(x.probability)},
                        {"top_id", x.top_id},
                        {"top_text", x.top_text},
                        {"top_probability", number(x.top_probability)}});
    j["logit_lens"] = skipped_or(l.computed, l.skipped,
                                 {{"computed", true},
                                  {"position", l.position},
                                  {"target_id", l.target},
                                  {"target_text", l.target_text},
                                  {"layers", layers}});
  }
  {
    ojson maps = ojson::array();
    for (const AttentionMap& m : rep.attention_maps) {
      ojson rows = ojson::array();
      const size_t nk = m.key_tokens.size();
      for (size_t q = 0; q < m.query_tokens.size(); ++q)
        rows.push_back(std::vector<float>(m.weights.begin() + static_cast<std::ptrdiff_t>(q * nk),
                                          m.weights.begin() + static_cast<std::ptrdiff_t>((q + 1) * nk)));
      maps.push_back({{"layer", m.request.layer},
                      {"head", m.request.head < 0 ? ojson("mean") : ojson(m.request.head)},
                      {"queries", span(m.request.query_begin, m.request.query_end)},
                      {"keys", span(m.request.key_begin, m.request.key_end)},
                      {"query_tokens", m.query_tokens},
                      {"key_tokens", m.key_tokens},
                      {"weights", rows}});
    }
    j["attention_maps"] = std::move(maps);
  }
  {
    const SelfConsistency& sc = rep.self_consistency;
    ojson traces = ojson::array();
    for (const SampleTrace& t : sc.traces)
      traces.push_back({{"index", t.index},
                        {"warmup", t.warmup},
                        {"answer", t.answer},
                        {"finish_reason", t.finish_reason},
                        {"tokens", t.tokens},
                        {"confidence", number(t.confidence)},
                        {"mean_confidence", number(t.mean_confidence)},
                        {"stopped_early", t.stopped_early}});
    ojson votes = ojson::array();
    for (const Vote& v : sc.votes)
      votes.push_back({{"answer", v.answer}, {"count", v.count}, {"weight", number(v.weight)}});
    j["self_consistency"] = skipped_or(sc.computed, sc.skipped,
                                       {{"computed", true},
                                        {"samples", sc.samples},
                                        {"threshold", optional(sc.threshold)},
                                        {"traces", traces},
                                        {"votes", votes},
                                        {"majority", sc.majority},
                                        {"weighted_winner", sc.weighted_winner},
                                        {"agreement", number(sc.agreement)},
                                        {"winner_matches_trace", sc.winner_matches_trace},
                                        {"tokens_generated", sc.tokens_generated},
                                        {"tokens_saved", sc.tokens_saved},
                                        {"seconds", sc.seconds}});
  }

  ojson trace = ojson::array();
  for (size_t i = 0; i < rep.trace.size(); ++i) trace.push_back(token_to_json(rep.trace[i], static_cast<int>(i)));
  j["trace"] = std::move(trace);
  j["options"] = options_json(rep.options);
  j["tokens_evaluated"] = rep.tokens_evaluated;
  j["seconds"] = rep.seconds;
  return j;
}

}  // namespace glassbox::analysis
