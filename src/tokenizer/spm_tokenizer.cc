#include "tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <queue>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace glassbox {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

// "<0xAB>" -> 0xAB; -1 for any other text.
int parse_byte_token(const std::string& text) {
  if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>') return -1;
  int value = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = text[i];
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return -1;
    }
    value = value * 16 + digit;
  }
  return value;
}

std::string escape_spaces(std::string_view text, bool add_prefix) {
  std::string out;
  out.reserve(text.size() + text.size() / 4 + 3);
  if (add_prefix) out += kSpaceMark;
  for (char c : text) {
    if (c == ' ') {
      out += kSpaceMark;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

SpmTokenizer::SpmTokenizer(VocabMetadata meta) {
  init_vocab(meta);
  scores_ = std::move(meta.scores);
  add_bos_ = meta.add_bos.value_or(true);  // llama.cpp's default for SentencePiece
  add_space_prefix_ = meta.add_space_prefix.value_or(true);

  byte_tokens_.fill(-1);
  byte_values_.assign(tokens_.size(), -1);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const int byte = parse_byte_token(tokens_[i]);
    if (byte < 0) continue;
    if (attrs_[i] == TokenAttr::Byte) byte_values_[i] = static_cast<int16_t>(byte);
    if (byte_tokens_[byte] < 0) byte_tokens_[byte] = static_cast<TokenId>(i);
  }
}

std::vector<TokenId> SpmTokenizer::encode(std::string_view text, bool parse_special, bool add_bos) const {
  std::vector<TokenId> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  // As llama.cpp: a space is put in front of the text and again after every
  // special token.
  bool after_special = true;
  for (const Fragment& fragment : split_special(text, parse_special)) {
    if (fragment.special >= 0) {
      out.push_back(fragment.special);
      after_special = true;
      continue;
    }
    encode_escaped(escape_spaces(fragment.text, add_space_prefix_ && after_special), out);
    after_special = false;
  }
  return out;
}

void SpmTokenizer::emit_bytes(std::string_view text, std::vector<TokenId>& out) const {
  bool all_bytes = true;
  for (char c : text) all_bytes = all_bytes && byte_tokens_[static_cast<unsigned char>(c)] >= 0;
  if (all_bytes) {
    for (char c : text) out.push_back(byte_tokens_[static_cast<unsigned char>(c)]);
    return;
  }
  // No byte fallback for this character: one unknown token (or nothing when
  // the vocabulary has no unknown token either).
  if (unk_ >= 0) out.push_back(unk_);
}

void SpmTokenizer::encode_escaped(std::string_view text, std::vector<TokenId>& out) const {
  if (text.empty()) return;
  // One symbol per UTF-8 character (a byte that starts no valid sequence is
  // a symbol of its own); symbols stay contiguous in `text` while merging.
  struct Symbol {
    int32_t prev, next;
    uint32_t start, len;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = std::max<size_t>(1, unicode::valid_sequence_length(text, pos));
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{index - 1, index + 1, static_cast<uint32_t>(pos), static_cast<uint32_t>(len)});
    pos += len;
  }
  symbols.back().next = -1;

  struct Bigram {
    float score;
    int32_t left, right;
    uint32_t len;
  };
  // Highest score first; on equal scores the leftmost pair.
  const auto lower_priority = [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(lower_priority)> queue(lower_priority);
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t len = symbols[left].len + symbols[right].len;
    auto it = token_to_id_.find(text.substr(symbols[left].start, len));
    if (it == token_to_id_.end()) return;
    const float score = scores_.empty() ? 0.0f : scores_[it->second];
    queue.push(Bigram{score, left, right, len});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) try_add(i, i + 1);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    // Stale entry: one side was merged away or grew since it was queued.
    if (left.len == 0 || left.next != bigram.right) continue;
    Symbol& right = symbols[bigram.right];
    if (left.len + right.len != bigram.len) continue;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    try_add(left.prev, bigram.left);
    try_add(bigram.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].start, symbols[i].len);
    auto it = token_to_id_.find(piece);
    if (it != token_to_id_.end()) {
      out.push_back(it->second);
    } else {
      emit_bytes(piece, out);
    }
  }
}

std::string SpmTokenizer::token_bytes(TokenId id, bool render_special) const {
  if (id < 0 || id >= vocab_size()) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
  const std::string& text = tokens_[id];
  switch (attrs_[id]) {
    case TokenAttr::Normal: {
      std::string out;
      out.reserve(text.size());
      for (size_t pos = 0; pos < text.size();) {
        if (text.compare(pos, kSpaceMark.size(), kSpaceMark) == 0) {
          out.push_back(' ');
          pos += kSpaceMark.size();
        } else {
          out.push_back(text[pos++]);
        }
      }
      return out;
    }
    case TokenAttr::Byte:
      if (byte_values_[id] >= 0) return std::string(1, static_cast<char>(byte_values_[id]));
      return text;
    case TokenAttr::UserDefined:
      return text;
    case TokenAttr::Control:
    case TokenAttr::Unknown:
      return render_special ? text : std::string();
    case TokenAttr::Unused:
      return std::string();
  }
  return std::string();
}

}  // namespace glassbox
