// Internal: byte-level BPE tokenizer (tokenizer.ggml.model = "gpt2"), as in
// Hugging Face tokenizers: the pre-tokenizer named by tokenizer.ggml.pre splits
// the text into words, each word's bytes are mapped to GPT-2's byte symbols,
// and merges from tokenizer.ggml.merges are applied lowest rank first.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace glassbox {

class BpeTokenizer final : public Tokenizer {
 public:
  // Throws glassbox::Error for missing or inconsistent merges and for an
  // unknown pre-tokenizer name.
  explicit BpeTokenizer(VocabMetadata meta);

  std::vector<TokenId> encode(std::string_view text, bool parse_special = true, bool add_bos = false) const override;
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

  // (left id, right id) -> merge: an open-addressing hash table (linear
  // probing, load <= 3/4), so the rank lookup while merging is one probe
  // sequence on a flat array with no string building, and loading 100k+
  // merges makes no per-entry allocation.
  class MergeTable {
   public:
    void reserve(size_t count);
    // Keeps the first value stored for a key (the best rank).
    void insert_if_absent(uint64_t key, Merge merge);
    const Merge* find(uint64_t key) const;

   private:
    struct Slot {
      uint64_t key;
      Merge merge;
    };
    // Token ids are < 2^31, so no pair key has every bit set.
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    size_t slot_of(uint64_t key) const;
    std::vector<Slot> slots_;
    size_t mask_ = 0;
  };

  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  MergeTable merges_;
  std::array<TokenId, 256> byte_tokens_{};  // token of each byte's symbol, or -1
};

}  // namespace glassbox
