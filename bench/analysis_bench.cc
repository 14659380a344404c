// Cost of the token trace and of each analysis (Google Benchmark). Not part
// of the test suite; run by hand:
//
//   analysis_bench                                   # the tiny reasoner if present, else a random model
//   GLASSBOX_BENCH_MODEL=/path/model.gguf analysis_bench --benchmark_filter=Decode
//
// Decode/<k>: one decode step (forward pass of one token + greedy pick) with
// the trace entry the session records per token (trace_token_stats, the
// token's text, the entry appended): k = -1 no trace at all,
// k = 0 log-probability and entropy only, k = 20 also the top-20
// alternatives and the DeepConf confidence. The trace overhead is
// (Decode/k - Decode/-1) / Decode/-1; the target is <= 3% at k = 20.
// The analyses report their cost per step (per word, per sample) in the
// "ms_per_*" counters.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include "analysis/analysis.h"
#include "base/error.h"

namespace glassbox {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The model under test and one analysed generation, built once.
struct Setup {
  std::unique_ptr<Model> model;
  std::unique_ptr<ChatSession> session;
  analysis::TraceRecord record;
  std::string name;

  Setup() {
    const fs::path source(GLASSBOX_SOURCE_DIR);
    const fs::path tiny = source / "models" / "glassbox-tiny-reasoner.gguf";
    const fs::path random = source / "tests" / "data" / "reference" / "models" / "rand-qwen3.f32.gguf";
    fs::path path = fs::exists(tiny) ? tiny : random;
    if (const char* env = std::getenv("GLASSBOX_BENCH_MODEL"); env && *env) path = env;
    name = path.filename().string();
    model = Model::load(path.string());
    session = std::make_unique<ChatSession>(*model);
    record.model = path.string();
    record.messages = ojson::parse(R"([{"role":"user","content":"What is 57 + 12 * 4 - 9?"}])");
    ChatOptions& o = record.options;
    o.sampling.temperature = 0.0f;
    o.max_tokens = 96;
    if (!model->file().get_string("tokenizer.chat_template")) {
      // A random reference model: Qwen3's template and a forced thinking.
      o.template_override =
          slurp(source / "tests" / "data" / "reference" / "templates" / "templates" / "Qwen-Qwen3-0.6B.jinja");
      o.assistant_prefix =
          "<think>\n57+12*4-9\n12*4=48\n57+48-9\n57+48=105\n105-9\n105-9=96\n</think>\n\nThe answer is 96";
      o.max_tokens = static_cast<int>(model->tokenizer().encode(o.assistant_prefix, true, false).size()) + 2;
    }
    record.result = session->generate(record.messages, o);
  }
};

TokenId argmax(const float* logits, int n_vocab) {
  TokenId best = 0;
  for (TokenId id = 1; id < n_vocab; ++id)
    if (logits[id] > logits[best]) best = id;
  return best;
}

Setup& setup() {
  static Setup s;
  return s;
}

// Threads of the decode benchmarks' contexts (default 1: CPU time is then
// all on the measured thread, and a loaded machine disturbs it least).
int bench_threads() {
  const char* env = std::getenv("GLASSBOX_BENCH_THREADS");
  return env && *env ? std::atoi(env) : 1;
}

void BM_Decode(benchmark::State& state) {
  Setup& s = setup();
  const int k = static_cast<int>(state.range(0));
  const Model& m = *s.model;
  Context ctx(m, ContextOptions{512, 256, bench_threads()});
  const std::vector<TokenId>& prompt = s.record.result.prompt_tokens;
  ctx.eval(prompt);
  const int start = ctx.n_past();
  const int n_vocab = ctx.n_vocab();
  std::vector<TraceToken> trace;
  trace.reserve(4096);
  TokenId next = argmax(ctx.logits(), n_vocab);
  for (auto _ : state) {
    if (ctx.n_past() >= start + 256) {
      state.PauseTiming();
      ctx.truncate(start - 1);
      ctx.eval(std::span<const TokenId>(&prompt.back(), 1));
      next = argmax(ctx.logits(), n_vocab);
      trace.clear();
      state.ResumeTiming();
    }
    if (k >= 0) {
      TraceToken t;
      t.id = next;
      TokenStats stats = trace_token_stats(ctx.logits(), n_vocab, next, k);
      t.logprob = stats.chosen_logprob;
      t.entropy = stats.entropy;
      t.confidence = stats.confidence;
      t.top = std::move(stats.top);
      t.text = m.tokenizer().token_bytes(next, true);
      trace.push_back(std::move(t));
    }
    ctx.eval(std::span<const TokenId>(&next, 1));
    next = argmax(ctx.logits(), n_vocab);
    benchmark::DoNotOptimize(next);
  }
  state.SetLabel(s.name);
}
BENCHMARK(BM_Decode)->Arg(-1)->Arg(0)->Arg(20)->Unit(benchmark::kMicrosecond)->MinTime(2.0);

// The statistics alone, on a real logit row: what the session uses
// (trace_token_stats) and the reference (compute_token_stats, /1).
void BM_TokenStats(benchmark::State& state) {
  Setup& s = setup();
  const int k = static_cast<int>(state.range(0));
  const bool reference = state.range(1) != 0;
  Context ctx(*s.model, ContextOptions{512, 256, bench_threads()});
  ctx.eval(s.record.result.prompt_tokens);
  std::vector<float> row(ctx.logits(), ctx.logits() + ctx.n_vocab());
  for (auto _ : state) {
    TokenStats stats = reference ? compute_token_stats(row.data(), ctx.n_vocab(), 0, k)
                                 : trace_token_stats(row.data(), ctx.n_vocab(), 0, k);
    benchmark::DoNotOptimize(stats);
  }
  state.SetLabel(s.name + ", vocab " + std::to_string(ctx.n_vocab()) + (reference ? ", reference" : ""));
}
BENCHMARK(BM_TokenStats)->ArgsProduct({{0, 20}, {0, 1}})->Unit(benchmark::kMicrosecond);

// One analysis at a time; cost per step (or word, or sample) as a counter.
void run_analysis(benchmark::State& state, const analysis::AnalysisOptions& options, const char* counter,
                  const std::function<double(const analysis::Report&)>& units,
                  const std::function<double(const analysis::Report&)>& seconds) {
  Setup& s = setup();
  double total_seconds = 0, total_units = 0;
  int64_t tokens = 0;
  for (auto _ : state) {
    const analysis::Report r = analysis::analyze(*s.session, s.record, options);
    total_seconds += seconds(r);
    total_units += units(r);
    tokens += r.tokens_evaluated;
  }
  state.counters[counter] = total_units > 0 ? 1e3 * total_seconds / total_units : 0;
  state.counters["tokens_evaluated"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kAvgIterations);
  state.SetLabel(s.name);
}

analysis::AnalysisOptions nothing() {
  analysis::AnalysisOptions o;
  o.early_answer = o.importance = o.occlusion = o.attention = false;
  return o;
}

double steps(const analysis::Report& r) { return static_cast<double>(r.steps.size()); }

void BM_Steps(benchmark::State& state) {
  run_analysis(state, nothing(), "ms_per_step", steps, [](const analysis::Report& r) { return r.seconds; });
}
BENCHMARK(BM_Steps)->Unit(benchmark::kMillisecond);

void BM_EarlyAnswer(benchmark::State& state) {
  analysis::AnalysisOptions o = nothing();
  o.early_answer = true;
  run_analysis(state, o, "ms_per_step", steps, [](const analysis::Report& r) { return r.early_answer.seconds; });
}
BENCHMARK(BM_EarlyAnswer)->Unit(benchmark::kMillisecond);

void BM_ImportanceRemoval(benchmark::State& state) {
  analysis::AnalysisOptions o = nothing();
  o.importance = true;
  run_analysis(state, o, "ms_per_step", steps, [](const analysis::Report& r) { return r.importance.seconds; });
}
BENCHMARK(BM_ImportanceRemoval)->Unit(benchmark::kMillisecond);

void BM_ImportanceResample(benchmark::State& state) {
  analysis::AnalysisOptions o = nothing();
  o.importance = true;
  o.resamples = static_cast<int>(state.range(0));
  o.sampling.temperature = 0.6f;
  run_analysis(state, o, "ms_per_step", steps, [](const analysis::Report& r) { return r.importance.seconds; });
}
BENCHMARK(BM_ImportanceResample)->Arg(4)->Unit(benchmark::kMillisecond);

void BM_Occlusion(benchmark::State& state) {
  analysis::AnalysisOptions o = nothing();
  o.occlusion = true;
  run_analysis(
      state, o, "ms_per_word",
      [](const analysis::Report& r) { return static_cast<double>(r.attribution.words.size()); },
      [](const analysis::Report& r) { return r.attribution.seconds; });
}
BENCHMARK(BM_Occlusion)->Unit(benchmark::kMillisecond);

void BM_AttentionAttribution(benchmark::State& state) {
  analysis::AnalysisOptions o = nothing();
  o.attention = true;
  run_analysis(
      state, o, "ms_per_trace", [](const analysis::Report&) { return 1.0; },
      [](const analysis::Report& r) { return r.attribution.seconds; });
}
BENCHMARK(BM_AttentionAttribution)->Unit(benchmark::kMillisecond);

void BM_LogitLens(benchmark::State& state) {
  analysis::AnalysisOptions o = nothing();
  o.logit_lens = true;
  run_analysis(
      state, o, "ms_per_trace", [](const analysis::Report&) { return 1.0; },
      [](const analysis::Report& r) { return r.seconds; });
}
BENCHMARK(BM_LogitLens)->Unit(benchmark::kMillisecond);

void BM_SelfConsistency(benchmark::State& state) {
  analysis::AnalysisOptions o = nothing();
  o.samples = static_cast<int>(state.range(0));
  o.sampling.temperature = 0.6f;
  o.sampling.top_p = 0.95f;
  run_analysis(
      state, o, "ms_per_sample",
      [](const analysis::Report& r) { return static_cast<double>(r.self_consistency.samples); },
      [](const analysis::Report& r) { return r.self_consistency.seconds; });
}
BENCHMARK(BM_SelfConsistency)->Arg(8)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace glassbox

BENCHMARK_MAIN();
