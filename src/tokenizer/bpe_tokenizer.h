// Internal: byte-level BPE tokenizer (tokenizer.ggml.model = "gpt2"), as in
// Hugging Face tokenizers: the pre-tokenizer named by tokenizer.ggml.pre splits
// the text into words, each word's bytes are mapped to GPT-2's byte symbols,
// and merges from tokenizer.ggml.merges are applied lowest rank first.
#pragma once

#include <array>
#include <memory>
#include <unordered_map>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace glassbox {

class BpeTokenizer final : public Tokenizer {
 public:
  // Throws glassbox::Error for missing or inconsistent merges and for an
  // unknown pre-tokenizer name.
  explicit BpeTokenizer(const VocabMetadata& meta);

  std::vector<TokenId> encode(std::string_view text, bool parse_special = true,
                              bool add_bos = false) const override;
  std::string token_bytes(TokenId id, bool render_special = true) const override;

  const PreTokenizer& pre_tokenizer() const { return *pre_tokenizer_; }

 private:
  struct Merge {
    int32_t rank;
    TokenId result;
  };
  static uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;

  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  // (left id, right id) -> merge rank and merged token: the rank lookup is a
  // single hash probe on two integers, no string building while merging.
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<TokenId, 256> byte_tokens_{};  // token of each byte's symbol, or -1
};

}  // namespace glassbox
