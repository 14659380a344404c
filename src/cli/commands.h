// Registration of the CLI subcommands. Each subcommand's options live in a
// struct owned by the registration function; the callback does the work and
// throws glassbox::Error on bad input (main prints it and exits non-zero).
#pragma once

#include <CLI/CLI.hpp>

namespace glassbox {
struct SamplingParams;
}

namespace glassbox::cli {

void register_model_commands(CLI::App& app);  // inspect, logits, tokenize, detokenize
void register_generate_command(CLI::App& app);
void register_chat_commands(CLI::App& app);  // run, template, eval

// Adds --temp/--top-k/... bound to `params` (shared by generate, run, eval).
void add_sampling_options(CLI::App* cmd, SamplingParams& params);

}  // namespace glassbox::cli
