// glassbox serve (the OpenAI-compatible server), keys add / keys list (API
// keys in the server config) and audit verify / export / prune (the
// tamper-evident audit store).
#pragma once

#include <CLI/CLI.hpp>

namespace glassbox::cli {

void register_serve_commands(CLI::App& app);

}  // namespace glassbox::cli
