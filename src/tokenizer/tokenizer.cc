#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>

#include "base/error.h"
#include "gguf/gguf.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace glassbox {

namespace {

std::string where(const gguf::File& file, std::string_view key) { return file.path() + ": " + std::string(key); }

// Reads an optional typed array, re-raising a type error with the file name.
template <typename Getter>
auto read_array(const gguf::File& file, std::string_view key, Getter getter) {
  try {
    return getter();
  } catch (const Error& e) {
    throw Error(where(file, key) + ": " + e.what());
  }
}

// Special ids are stored as uint32 (sometimes int32); -1 / 0xFFFFFFFF mean
// "none" (llama.cpp writes them that way for absent separator/padding).
TokenId read_token_id(const gguf::File& file, std::string_view key, size_t vocab_size) {
  const gguf::Value* value = file.find(key);
  if (value == nullptr) return -1;
  const std::optional<int64_t> id = value->as_int();
  if (!id || value->type() == gguf::ValueType::BOOL) {
    throw Error(where(file, key) + ": expected an integer token id, got " +
                std::string(gguf::value_type_name(value->type())));
  }
  if (*id == -1 || *id == 0xFFFFFFFFll) return -1;
  if (*id < 0 || static_cast<uint64_t>(*id) >= vocab_size) {
    throw Error(where(file, key) + ": token id " + std::to_string(*id) + " is outside the vocabulary (size " +
                std::to_string(vocab_size) + ")");
  }
  return static_cast<TokenId>(*id);
}

std::optional<bool> read_flag(const gguf::File& file, std::string_view key) {
  const gguf::Value* value = file.find(key);
  if (value == nullptr) return std::nullopt;
  const std::optional<bool> flag = value->as_bool();
  if (!flag) {
    throw Error(where(file, key) + ": expected a bool, got " + std::string(gguf::value_type_name(value->type())));
  }
  return flag;
}

// Texts that end a turn, most specific first (used when the GGUF has no
// tokenizer.ggml.eot_token_id).
constexpr std::string_view kEndOfTurnTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"};

// Texts of tokens that end generation besides eos/eot/eom (as llama.cpp's
// end-of-generation set).
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<|eom_id|>", "<EOT>",
    // DeepSeek's <｜end▁of▁sentence｜> (fullwidth bars, U+2581 spaces)
    "<\xEF\xBD\x9C"
    "end\xE2\x96\x81of\xE2\x96\x81sentence"
    "\xEF\xBD\x9C>"};

// Length of the longest prefix of `bytes` that does not end inside an
// unfinished UTF-8 sequence.
size_t complete_utf8_prefix(std::string_view bytes) {
  const size_t n = bytes.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto byte = static_cast<unsigned char>(bytes[n - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: look further back
    if (unicode::announced_length(byte) > back) return n - back;
    break;
  }
  return n;
}

}  // namespace

VocabMetadata read_vocab_metadata(const gguf::File& file) {
  VocabMetadata meta;
  meta.source = file.path();

  const gguf::Value* model = file.find("tokenizer.ggml.model");
  if (model == nullptr) throw Error(where(file, "tokenizer.ggml.model") + ": missing (the file has no vocabulary)");
  if (model->as_string() == nullptr) throw Error(where(file, "tokenizer.ggml.model") + ": expected a string");
  meta.model = *model->as_string();

  if (const gguf::Value* pre = file.find("tokenizer.ggml.pre")) {
    if (pre->as_string() == nullptr) throw Error(where(file, "tokenizer.ggml.pre") + ": expected a string");
    meta.pre = *pre->as_string();
  }

  auto tokens =
      read_array(file, "tokenizer.ggml.tokens", [&] { return file.get_string_array("tokenizer.ggml.tokens"); });
  if (!tokens) throw Error(where(file, "tokenizer.ggml.tokens") + ": missing");
  if (tokens->empty()) throw Error(where(file, "tokenizer.ggml.tokens") + ": empty vocabulary");
  if (tokens->size() >= static_cast<size_t>(std::numeric_limits<TokenId>::max())) {
    throw Error(where(file, "tokenizer.ggml.tokens") + ": too many tokens (" + std::to_string(tokens->size()) + ")");
  }
  meta.tokens = std::move(*tokens);
  const size_t n = meta.tokens.size();

  meta.attrs.assign(n, TokenAttr::Normal);
  auto types =
      read_array(file, "tokenizer.ggml.token_type", [&] { return file.get_int_array("tokenizer.ggml.token_type"); });
  if (types) {
    if (types->size() != n) {
      throw Error(where(file, "tokenizer.ggml.token_type") + ": " + std::to_string(types->size()) + " entries for " +
                  std::to_string(n) + " tokens");
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t type = (*types)[i];
      if (type < 0 || type > static_cast<int64_t>(TokenAttr::Byte)) {
        throw Error(where(file, "tokenizer.ggml.token_type") + "[" + std::to_string(i) + "]: unknown token type " +
                    std::to_string(type));
      }
      // 0 is "undefined" in the GGUF spec: treat it as a normal token.
      meta.attrs[i] = type == 0 ? TokenAttr::Normal : static_cast<TokenAttr>(type);
    }
  }

  auto scores =
      read_array(file, "tokenizer.ggml.scores", [&] { return file.get_float_array("tokenizer.ggml.scores"); });
  if (scores) {
    if (scores->size() != n) {
      throw Error(where(file, "tokenizer.ggml.scores") + ": " + std::to_string(scores->size()) + " entries for " +
                  std::to_string(n) + " tokens");
    }
    meta.scores = std::move(*scores);
  }

  auto merges =
      read_array(file, "tokenizer.ggml.merges", [&] { return file.get_string_array("tokenizer.ggml.merges"); });
  if (merges) meta.merges = std::move(*merges);

  meta.bos = read_token_id(file, "tokenizer.ggml.bos_token_id", n);
  meta.eos = read_token_id(file, "tokenizer.ggml.eos_token_id", n);
  meta.eot = read_token_id(file, "tokenizer.ggml.eot_token_id", n);
  meta.eom = read_token_id(file, "tokenizer.ggml.eom_token_id", n);
  meta.pad = read_token_id(file, "tokenizer.ggml.padding_token_id", n);
  meta.unk = read_token_id(file, "tokenizer.ggml.unknown_token_id", n);
  meta.add_bos = read_flag(file, "tokenizer.ggml.add_bos_token");
  meta.add_space_prefix = read_flag(file, "tokenizer.ggml.add_space_prefix");
  return meta;
}

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  VocabMetadata meta = read_vocab_metadata(file);
  if (meta.model == "llama") return std::make_unique<SpmTokenizer>(std::move(meta));
  if (meta.model == "gpt2") return std::make_unique<BpeTokenizer>(std::move(meta));
  throw Error(where(file, "tokenizer.ggml.model") + ": unsupported tokenizer model '" + meta.model +
              "' (supported: llama, gpt2)");
}

void Tokenizer::init_vocab(VocabMetadata& meta) {
  tokens_ = std::move(meta.tokens);
  attrs_ = std::move(meta.attrs);
  model_ = meta.model;
  pre_ = meta.pre;
  bos_ = meta.bos;
  eos_ = meta.eos;
  unk_ = meta.unk;
  pad_ = meta.pad;

  token_to_id_.reserve(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) token_to_id_.emplace(tokens_[i], static_cast<TokenId>(i));

  eot_ = meta.eot;
  if (eot_ < 0) {
    for (std::string_view text : kEndOfTurnTexts) {
      const TokenId id = find_token(text);
      if (id >= 0 && (attrs_[id] == TokenAttr::Control || attrs_[id] == TokenAttr::UserDefined)) {
        eot_ = id;
        break;
      }
    }
  }

  end_ids_.clear();
  for (TokenId id : {eos_, eot_, meta.eom}) {
    if (id >= 0) end_ids_.push_back(id);
  }
  for (std::string_view text : kEndOfGenerationTexts) {
    const TokenId id = find_token(text);
    if (id >= 0 && (attrs_[id] == TokenAttr::Control || attrs_[id] == TokenAttr::UserDefined)) end_ids_.push_back(id);
  }
  std::sort(end_ids_.begin(), end_ids_.end());
  end_ids_.erase(std::unique(end_ids_.begin(), end_ids_.end()), end_ids_.end());

  // Trie of the texts that split_special recognises.
  special_trie_.assign(1, TrieNode{});
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const TokenAttr attr = attrs_[i];
    if (attr != TokenAttr::Control && attr != TokenAttr::UserDefined && attr != TokenAttr::Unknown) continue;
    if (tokens_[i].empty()) continue;
    int32_t node = 0;
    for (unsigned char byte : tokens_[i]) {
      auto& children = special_trie_[node].children;
      auto it = std::lower_bound(children.begin(), children.end(), byte,
                                 [](const auto& child, unsigned char b) { return child.first < b; });
      if (it != children.end() && it->first == byte) {
        node = it->second;
      } else {
        const auto child = static_cast<int32_t>(special_trie_.size());
        children.insert(it, {byte, child});
        special_trie_.push_back(TrieNode{});
        node = child;
      }
    }
    // Duplicate texts: the first id wins, as in token_to_id_.
    if (special_trie_[node].token < 0) special_trie_[node].token = static_cast<TokenId>(i);
  }
}

std::vector<Tokenizer::Fragment> Tokenizer::split_special(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (!parse_special || special_trie_.size() <= 1) {
    if (!text.empty()) fragments.push_back(Fragment{-1, text});
    return fragments;
  }
  size_t raw_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    // Longest special token starting at pos.
    int32_t node = 0;
    TokenId match = -1;
    size_t match_len = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      const auto& children = special_trie_[node].children;
      const auto byte = static_cast<unsigned char>(text[i]);
      auto it = std::lower_bound(children.begin(), children.end(), byte,
                                 [](const auto& child, unsigned char b) { return child.first < b; });
      if (it == children.end() || it->first != byte) break;
      node = it->second;
      if (special_trie_[node].token >= 0) {
        match = special_trie_[node].token;
        match_len = i + 1 - pos;
      }
    }
    if (match < 0) {
      ++pos;
      continue;
    }
    if (pos > raw_start) fragments.push_back(Fragment{-1, text.substr(raw_start, pos - raw_start)});
    fragments.push_back(Fragment{match, {}});
    pos += match_len;
    raw_start = pos;
  }
  if (raw_start < text.size()) fragments.push_back(Fragment{-1, text.substr(raw_start)});
  return fragments;
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool render_special) const {
  std::string out;
  bool strip_space = decode_strips_leading_space();
  for (TokenId id : ids) {
    std::string piece = token_bytes(id, render_special);
    if (strip_space && !piece.empty()) {
      if (piece.front() == ' ') piece.erase(0, 1);
      strip_space = false;
    }
    out += piece;
  }
  return out;
}

bool Tokenizer::is_control(TokenId id) const {
  return id >= 0 && id < vocab_size() && attrs_[id] == TokenAttr::Control;
}

TokenId Tokenizer::find_token(std::string_view text) const {
  auto it = token_to_id_.find(text);
  return it == token_to_id_.end() ? -1 : it->second;
}

bool Tokenizer::is_end_of_generation(TokenId id) const {
  return std::binary_search(end_ids_.begin(), end_ids_.end(), id);
}

std::string StreamDecoder::push(TokenId id) {
  std::string piece = tok_.token_bytes(id, render_special_);
  if (first_ && !piece.empty()) {
    if (tok_.decode_strips_leading_space() && piece.front() == ' ') piece.erase(0, 1);
    first_ = false;
  }
  pending_ += piece;
  const size_t ready = complete_utf8_prefix(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace glassbox
