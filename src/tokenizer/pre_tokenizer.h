// Pre-tokenizers for byte-level BPE: a sequence of regex splits (each match
// and each gap between matches becomes its own piece, as Hugging Face's
// `Split(behavior: Isolated)` and llama.cpp's unicode_regex_split do), chosen
// by the GGUF `tokenizer.ggml.pre` name, plus the options that go with the
// name (NFC normalisation, ignore_merges).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace glassbox {

class RegexSplit;

class PreTokenizer {
 public:
  // Throws glassbox::Error for an unknown name. An empty name means the
  // GGUF has no `tokenizer.ggml.pre` and selects llama.cpp's "default".
  explicit PreTokenizer(std::string_view pre_name);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Splits raw text into words (byte strings whose concatenation is the
  // input after normalisation). Invalid UTF-8 bytes become one-byte words of
  // their own, so any byte string can be tokenized.
  std::vector<std::string> split(std::string_view text) const;

  // Hugging Face applies an NFC normalizer for these vocabularies (Qwen2/3).
  bool nfc() const { return nfc_; }
  // A word that is itself a token is emitted without merging (Llama 3).
  bool ignore_merges() const { return ignore_merges_; }
  // The canonical family name ("qwen2", "llama-bpe", ...).
  const std::string& family() const { return family_; }

  // Names accepted for `tokenizer.ggml.pre`, for error messages and docs.
  static std::vector<std::string> known_names();

 private:
  void split_valid_utf8(std::string_view text, std::vector<std::string>& words) const;

  std::string family_;
  bool nfc_ = false;
  bool ignore_merges_ = false;
  std::vector<std::unique_ptr<RegexSplit>> regexes_;
};

}  // namespace glassbox
