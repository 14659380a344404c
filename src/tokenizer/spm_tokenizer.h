// Internal: SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"),
// compatible with llama.cpp and Hugging Face's Llama tokenizer: spaces become
// "▁", a "▁" is put in front of the text, adjacent symbols are merged
// highest-score first when the merged text is a token, and characters that are
// not tokens fall back to their <0xXX> byte tokens.
#pragma once

#include <array>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace glassbox {

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(VocabMetadata meta);

  std::vector<TokenId> encode(std::string_view text, bool parse_special = true, bool add_bos = false) const override;
  std::string token_bytes(TokenId id, bool render_special = true) const override;
  bool decode_strips_leading_space() const override { return add_space_prefix_; }

 private:
  // Tokenizes one run of text that contains no special tokens; spaces are
  // already escaped to "▁".
  void encode_escaped(std::string_view text, std::vector<TokenId>& out) const;
  void emit_bytes(std::string_view text, std::vector<TokenId>& out) const;

  std::vector<float> scores_;
  std::array<TokenId, 256> byte_tokens_{};  // <0xXX> token per byte, or -1
  std::vector<int16_t> byte_values_;        // per token: the byte of a <0xXX> token, or -1
  bool add_space_prefix_ = true;
};

}  // namespace glassbox
