// Shared helpers of the glassbox command-line subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace glassbox::cli {

// Loads a model, drawing a progress bar on stderr when it is a terminal.
// pack_for_generation: see LoadOptions (off for commands that do not generate
// with the fast path: they would only pay the memory and the packing time).
std::unique_ptr<Model> load_model(const std::string& path, bool load_tokenizer = true, bool pack_for_generation = true);

// The global --no-repack flag: no packed copies at all (load_model ignores
// pack_for_generation then). Packed Q4_K/Q6_K/Q8_0/Q4_0/Q5_0 copies cost about the size of
// those matrices in memory and make generation faster.
void set_repack(bool on);

// Only the vocabulary of a GGUF file (works on vocab-only files too).
struct VocabFile {
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<Tokenizer> tokenizer;
};
VocabFile load_vocab(const std::string& path);

// Parses "1,2,3" into ids; throws Error naming the bad item.
std::vector<TokenId> parse_id_list(const std::string& text);

// Reads a whole file; throws Error naming the file.
std::string read_file(const std::string& path);

// JSON-escaped float as llama.cpp prints them (%.9g round-trips a float).
std::string format_float(float v);

bool stdout_is_terminal();

// --kv-cache-type f32|f16|q8_0 (llama.cpp's names) into *type; an unknown
// name is refused with the accepted ones.
CLI::Option* add_kv_cache_option(CLI::App* cmd, KvCacheType* type);

}  // namespace glassbox::cli
