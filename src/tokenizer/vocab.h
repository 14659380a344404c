// Internal: the tokenizer.ggml.* metadata of a GGUF, read and validated once
// and shared by the SentencePiece and byte-level BPE tokenizers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace glassbox {

struct VocabMetadata {
  std::string source;  // file path, for error messages
  std::string model;   // tokenizer.ggml.model
  std::string pre;     // tokenizer.ggml.pre ("" when absent)
  std::vector<std::string> tokens;
  std::vector<TokenAttr> attrs;     // same length as tokens
  std::vector<float> scores;        // same length as tokens, or empty
  std::vector<std::string> merges;  // "left right", rank = index
  TokenId bos = -1, eos = -1, eot = -1, eom = -1, pad = -1, unk = -1;
  std::optional<bool> add_bos;
  std::optional<bool> add_space_prefix;
};

// Reads and checks every tokenizer.ggml.* key (types, lengths, id ranges).
// Throws glassbox::Error naming the file and the key.
VocabMetadata read_vocab_metadata(const gguf::File& file);

}  // namespace glassbox
