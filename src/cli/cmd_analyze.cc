// glassbox analyze (and the analysis flags of glassbox run).
#include "cli/cmd_analyze.h"

#include <cstdio>
#include <filesystem>
#include <memory>

#include "analysis/trace_io.h"
#include "base/error.h"
#include "cli/common.h"

namespace glassbox::cli {
namespace {

using ojson = nlohmann::ordered_json;

void print_report(const analysis::Report& report, bool json) {
  if (json) {
    std::printf("%s\n", analysis::dump_json(analysis::to_json(report)).c_str());
  } else {
    std::fputs(analysis::render_summary(report, stdout_is_terminal()).c_str(), stdout);
  }
  std::fflush(stdout);
}

}  // namespace

void add_analysis_options(CLI::App* cmd, AnalyzeFlags& f) {
  cmd->add_option("--steps", f.steps, "split the thinking into steps by: lines or sentences")
      ->check(CLI::IsMember({"lines", "sentences"}))
      ->capture_default_str();
  cmd->add_option("--resamples", f.resamples, "step importance: also resample each step K times")
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--samples", f.samples, "self-consistency: N sampled traces voting, weighted by confidence")
      ->check(CLI::Range(0, 10000));
  cmd->add_flag("--logit-lens", f.logit_lens, "rank of the answer's first token at every layer");
  cmd->add_option("--attention", f.attention,
                  "attention map LAYER:HEAD[:QBEGIN-QEND[:KBEGIN-KEND]] (HEAD * = mean; repeatable)");
  cmd->add_flag("--no-occlusion", f.no_occlusion, "skip masking question words (the costliest part)");
  cmd->add_option("--trace-top-k", f.trace_top_k, "alternatives recorded per token")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
}

void add_run_analysis_options(CLI::App* cmd, AnalyzeFlags& f) {
  cmd->add_flag("--analyze", f.analyze, "explain the reply: steps, early-answer curve, important steps and words");
  cmd->add_option("--save-trace", f.save_trace, "write the reply's token trace to FILE (for glassbox analyze)");
  add_analysis_options(cmd, f);
}

void apply_trace_options(const AnalyzeFlags& f, ChatOptions& options) { options.trace_top_k = f.trace_top_k; }

analysis::AnalysisOptions make_analysis_options(const AnalyzeFlags& f, const SamplingParams& sampling) {
  analysis::AnalysisOptions o;
  if (f.steps == "lines") {
    o.steps.split = analysis::StepSplit::Lines;
  } else if (f.steps == "sentences") {
    o.steps.split = analysis::StepSplit::Sentences;
  } else {
    throw Error("--steps must be lines or sentences, not '" + f.steps + "'");
  }
  o.resamples = f.resamples;
  o.samples = f.samples;
  o.logit_lens = f.logit_lens;
  o.occlusion = !f.no_occlusion;
  for (const std::string& a : f.attention) o.attention_maps.push_back(analysis::parse_attention_request(a));
  o.sampling = sampling;
  if (o.sampling.temperature == 0.0f) {  // greedy draws would all be the same
    o.sampling.temperature = 0.6f;
    o.sampling.top_p = 0.95f;
  }
  return o;
}

bool after_run_turn(ChatSession& session, const std::string& model_path, const ojson& messages,
                    const ChatOptions& options, const ChatResult& result, const AnalyzeFlags& f, bool json) {
  if (f.save_trace.empty() && !f.analyze) return false;
  analysis::TraceRecord record{model_path, messages, options, result};
  if (!f.save_trace.empty()) analysis::save_trace(f.save_trace, record);
  if (!f.analyze) return false;
  const analysis::Report report = analysis::analyze(session, record, make_analysis_options(f, options.sampling));
  if (!json) std::fputc('\n', stdout);
  print_report(report, json);
  return json;
}

void register_analyze_commands(CLI::App& app) {
  auto* cmd = app.add_subcommand("analyze", "Analyse a saved trace (glassbox run --save-trace FILE) again");
  struct Opts {
    std::string trace, model;
    bool json = false;
    int ctx = 0, threads = 0;
    KvCacheType kv_cache = KvCacheType::Auto;
    AnalyzeFlags flags;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("trace", o->trace, "trace file (JSON)")->required();
  cmd->add_option("-m,--model", o->model, "GGUF model (default: the one recorded in the trace)");
  cmd->add_flag("--json", o->json, "print the JSON report (schema: docs/analysis-report.md)");
  cmd->add_option("-c,--ctx-size", o->ctx, "context size (default: the model's, at most 4096)");
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  add_kv_cache_option(cmd, &o->kv_cache);
  add_analysis_options(cmd, o->flags);
  cmd->callback([o] {
    analysis::TraceRecord record = analysis::load_trace(o->trace);
    const std::string model_path = o->model.empty() ? record.model : o->model;
    if (model_path.empty()) throw Error(o->trace + " names no model: pass one with -m");
    if (!std::filesystem::exists(model_path))
      throw Error("model '" + model_path + "' (recorded in " + o->trace + ") not found: pass one with -m");
    auto model = load_model(model_path);
    record.model = model_path;
    ContextOptions context;
    context.n_ctx = o->ctx;
    context.n_threads = o->threads;
    context.kv_cache = o->kv_cache;
    ChatSession session(*model, context);
    const analysis::AnalysisOptions options = make_analysis_options(o->flags, record.options.sampling);
    const double drift = analysis::replay_trace(session, record);
    if (drift > 1e-2)
      std::fprintf(stderr,
                   "warning: the recorded log-probabilities differ from this model's by up to %.3g "
                   "(was the trace made with another model?); the analysis uses this model's\n",
                   drift);
    print_report(analysis::analyze(session, record, options), o->json);
  });
}

}  // namespace glassbox::cli
