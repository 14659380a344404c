// glassbox: run open-weight reasoning models locally and inspect their thinking.
#include <cstdio>
#include <exception>

#include "base/error.h"
#include "cli/cmd_analyze.h"
#include "cli/cmd_bench.h"
#include "cli/cmd_serve.h"
#include "cli/commands.h"
#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App app{"glassbox: run reasoning models on your own hardware and inspect their thinking"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "glassbox 0.1.0");
  // Global options are accepted after the subcommand too.
  app.fallthrough();
  app.add_flag_callback(
      "--no-repack", [] { glassbox::cli::set_repack(false); },
      "Keep weights only in the file's layout: no packed Q4_K/Q6_K/Q8_0/Q4_0/Q5_0 copies for generation (less memory, "
      "slower "
      "generation)");
  glassbox::cli::register_model_commands(app);
  glassbox::cli::register_generate_command(app);
  glassbox::cli::register_chat_commands(app);
  glassbox::cli::register_bench_commands(app);
  glassbox::cli::register_analyze_commands(app);
  glassbox::cli::register_serve_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const glassbox::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
