// Tokenizers built from GGUF metadata (`tokenizer.ggml.*`):
//  - SentencePiece-style (`tokenizer.ggml.model = llama`): scores, byte
//    fallback (<0xXX> tokens), leading-space handling;
//  - byte-level BPE (`gpt2`) with the pre-tokenizer named by
//    `tokenizer.ggml.pre`: qwen2, llama-bpe, deepseek-llm, deepseek-v3, gpt-2
//    (and aliases), NFC normalisation where the model's own tokenizer applies it.
// Special and added tokens (<think>, <|im_start|>, ...) are matched before BPE.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace glassbox::gguf {
class File;
}

namespace glassbox {

struct VocabMetadata;  // tokenizer/vocab.h: validated tokenizer.ggml.* values

using TokenId = int32_t;

enum class TokenAttr : int32_t {  // tokenizer.ggml.token_type values
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

class Tokenizer {
 public:
  // Throws glassbox::Error if the vocabulary metadata is missing or malformed.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  virtual ~Tokenizer() = default;

  // Text -> ids. parse_special: control, user-defined and unknown-type tokens
  // written in the text become their ids (leftmost, longest match first);
  // without it all text is tokenized as text. add_bos: prepend BOS if the
  // vocabulary has one. Any bytes are accepted: invalid UTF-8 becomes byte
  // tokens (or the unknown token when the vocabulary has no byte tokens).
  virtual std::vector<TokenId> encode(std::string_view text, bool parse_special = true, bool add_bos = false) const = 0;
  // The exact bytes of one token as it appears in text (byte tokens give
  // their byte; SPM "▁" becomes a space; BPE byte-unicode is undone).
  // Control tokens give their text (e.g. "<|im_end|>") when render_special.
  virtual std::string token_bytes(TokenId id, bool render_special = true) const = 0;
  // Concatenated bytes of the ids. SPM drops the one leading space that the
  // encoder adds (as llama.cpp/HF decode do).
  virtual std::string decode(const std::vector<TokenId>& ids, bool render_special = true) const;

  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  const std::string& token_text(TokenId id) const { return tokens_.at(id); }  // as stored
  TokenAttr token_attr(TokenId id) const { return attrs_.at(id); }
  bool is_control(TokenId id) const;  // control tokens (never printed as content)
  // Finds a token whose stored text is exactly `text` (special or not); -1 if none.
  TokenId find_token(std::string_view text) const;

  TokenId bos() const { return bos_; }  // -1 when absent
  TokenId eos() const { return eos_; }
  TokenId eot() const { return eot_; }  // end-of-turn (e.g. <|im_end|>, <|eot_id|>) or -1
  bool add_bos_default() const { return add_bos_; }
  // True for ids that end generation (eos, eot, <|endoftext|>, ...).
  bool is_end_of_generation(TokenId id) const;
  const std::string& model_name() const { return model_; }  // "llama" / "gpt2"
  const std::string& pre_name() const { return pre_; }

  // True when decode() drops the single leading space that encode() put in
  // front of the text (SentencePiece with add_space_prefix). StreamDecoder
  // applies the same rule to the first non-empty piece.
  virtual bool decode_strips_leading_space() const { return false; }
  TokenId unk() const { return unk_; }  // -1 when absent
  TokenId pad() const { return pad_; }  // -1 when absent

 protected:
  // A piece of the input after special-token matching: either a special
  // token's id or raw text to tokenize normally.
  struct Fragment {
    TokenId special = -1;   // >= 0: this fragment is that token
    std::string_view text;  // raw text when special < 0
  };
  Tokenizer() = default;
  // token_to_id_ points into tokens_: a copy would dangle.
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  // Fills the members above from validated metadata (shared by subclasses);
  // takes over meta.tokens and meta.attrs.
  void init_vocab(VocabMetadata& meta);
  // Splits `text` at control / user-defined / unknown-type tokens written in
  // it (leftmost match, longest token first, as Hugging Face's added-token
  // matcher does). Without parse_special the whole text is one fragment.
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const;

  std::vector<std::string> tokens_;
  std::vector<TokenAttr> attrs_;
  std::vector<TokenId> end_ids_;
  TokenId bos_ = -1, eos_ = -1, eot_ = -1;
  bool add_bos_ = false;
  std::string model_, pre_;
  TokenId unk_ = -1, pad_ = -1;
  // Token text -> id, keyed by views of tokens_ (no second copy of the
  // strings); on duplicate texts the first id wins.
  std::unordered_map<std::string_view, TokenId> token_to_id_;
  // Byte trie over the texts of the tokens split_special matches.
  struct TrieNode {
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
    TokenId token = -1;                                       // token ending here
  };
  std::vector<TrieNode> special_trie_;
};

// Streaming detokeniser: returns only complete UTF-8 sequences, holding back
// the bytes of a character split across tokens until it is complete. Like
// decode(), it drops the leading space of the first non-empty piece when the
// tokenizer's decode_strips_leading_space() says so.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = true)
      : tok_(tok), render_special_(render_special) {}
  std::string push(TokenId id);
  std::string flush();  // whatever is held back (possibly invalid UTF-8)

 private:
  const Tokenizer& tok_;
  bool render_special_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace glassbox
