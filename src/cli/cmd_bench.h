// `glassbox bench`, `glassbox quantize` and `glassbox synth-model`.
#pragma once

#include <CLI/CLI.hpp>

namespace glassbox::cli {

void register_bench_commands(CLI::App& app);

}  // namespace glassbox::cli
