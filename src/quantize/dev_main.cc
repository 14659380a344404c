// Temporary: runs the bench/quantize/synth-model commands until the lead
// registers them in `glassbox` (to be removed).
#include <cstdio>
#include <exception>

#include "cli/cmd_bench.h"

int main(int argc, char** argv) {
  CLI::App app{"glassbox (bench commands only, developer build)"};
  app.require_subcommand(1);
  glassbox::cli::register_bench_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
