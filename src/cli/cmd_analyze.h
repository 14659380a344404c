// Reasoning-process analysis on the command line:
//   glassbox run "..." --analyze [--json]      analyse the reply just generated
//   glassbox run "..." --save-trace FILE       keep the trace for later
//   glassbox analyze FILE [--json]             analyse a saved trace again
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/analysis.h"
#include "session/chat_session.h"

namespace glassbox::cli {

struct AnalyzeFlags {
  bool analyze = false;         // run only: analyse each reply
  std::string save_trace;       // run only: write the trace here
  int trace_top_k = 20;         // alternatives recorded per token
  std::string steps = "lines";  // lines | sentences
  int resamples = 0;
  int samples = 0;
  bool logit_lens = false;
  std::vector<std::string> attention;  // LAYER:HEAD[:QB-QE[:KB-KE]]
  bool no_occlusion = false;
};

// The analysis options shared by `run` and `analyze` (--steps, --resamples,
// --samples, --logit-lens, --attention, --no-occlusion, --trace-top-k).
void add_analysis_options(CLI::App* cmd, AnalyzeFlags& flags);
// `run`'s flags: the above plus --analyze and --save-trace.
void add_run_analysis_options(CLI::App* cmd, AnalyzeFlags& flags);
// Applies --trace-top-k to the generation options.
void apply_trace_options(const AnalyzeFlags& flags, ChatOptions& options);
// Throws Error on a bad --steps or --attention value. `sampling` drives
// resamples and samples (a greedy setting gets temperature 0.6, top-p 0.95).
analysis::AnalysisOptions make_analysis_options(const AnalyzeFlags& flags, const SamplingParams& sampling);

// After one `run` turn: saves the trace (--save-trace) and analyses it
// (--analyze), printing the summary, or the JSON report when `json`.
// Returns true when it printed the JSON report (the caller prints nothing else).
bool after_run_turn(ChatSession& session, const std::string& model_path, const nlohmann::ordered_json& messages,
                    const ChatOptions& options, const ChatResult& result, const AnalyzeFlags& flags, bool json);

void register_analyze_commands(CLI::App& app);  // analyze

}  // namespace glassbox::cli
