#include "tokenizer/bpe_tokenizer.h"

#include <queue>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace glassbox {

namespace {

std::string merge_error(const VocabMetadata& meta, size_t index, const std::string& merge, const std::string& why) {
  return meta.source + ": tokenizer.ggml.merges[" + std::to_string(index) + "] '" + merge + "': " + why;
}

}  // namespace

void BpeTokenizer::MergeTable::reserve(size_t count) {
  size_t capacity = 16;
  while (capacity * 3 < count * 4) capacity *= 2;
  slots_.assign(capacity, Slot{kEmpty, Merge{0, 0}});
  mask_ = capacity - 1;
}

size_t BpeTokenizer::MergeTable::slot_of(uint64_t key) const {
  // splitmix64 finaliser: pair keys are highly structured (small ids).
  key ^= key >> 30;
  key *= 0xBF58476D1CE4E5B9ull;
  key ^= key >> 27;
  key *= 0x94D049BB133111EBull;
  key ^= key >> 31;
  return static_cast<size_t>(key) & mask_;
}

void BpeTokenizer::MergeTable::insert_if_absent(uint64_t key, Merge merge) {
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    if (slots_[i].key == key) return;
    if (slots_[i].key == kEmpty) {
      slots_[i] = Slot{key, merge};
      return;
    }
  }
}

const BpeTokenizer::Merge* BpeTokenizer::MergeTable::find(uint64_t key) const {
  if (slots_.empty()) return nullptr;
  for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
    if (slots_[i].key == key) return &slots_[i].merge;
    if (slots_[i].key == kEmpty) return nullptr;
  }
}

BpeTokenizer::BpeTokenizer(VocabMetadata meta) {
  init_vocab(meta);
  add_bos_ = meta.add_bos.value_or(false);
  pre_tokenizer_ = std::make_unique<PreTokenizer>(meta.pre);

  for (int byte = 0; byte < 256; ++byte)
    byte_tokens_[byte] = find_token(unicode::byte_symbol(static_cast<uint8_t>(byte)));

  if (meta.merges.empty() && tokens_.size() > 256) {
    throw Error(meta.source + ": tokenizer.ggml.merges: missing or empty (a gpt2 vocabulary needs its merges)");
  }
  merges_.reserve(meta.merges.size());
  std::string joined;
  for (size_t i = 0; i < meta.merges.size(); ++i) {
    const std::string& merge = meta.merges[i];
    // The separator is the first space after the first character, as in
    // llama.cpp (byte-level symbols never contain a plain space).
    const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
    if (space == std::string::npos || space + 1 >= merge.size()) {
      throw Error(merge_error(meta, i, merge, "expected two tokens separated by one space"));
    }
    const std::string_view left(merge.data(), space);
    const std::string_view right(merge.data() + space + 1, merge.size() - space - 1);
    const TokenId left_id = find_token(left);
    if (left_id < 0) throw Error(merge_error(meta, i, merge, "'" + std::string(left) + "' is not a token"));
    const TokenId right_id = find_token(right);
    if (right_id < 0) throw Error(merge_error(meta, i, merge, "'" + std::string(right) + "' is not a token"));
    joined.assign(left);
    joined.append(right);
    const TokenId result = find_token(joined);
    if (result < 0) throw Error(merge_error(meta, i, merge, "the merged text '" + joined + "' is not a token"));
    // A repeated pair keeps its first (best) rank.
    merges_.insert_if_absent(pair_key(left_id, right_id), Merge{static_cast<int32_t>(i), result});
  }
}

std::vector<TokenId> BpeTokenizer::encode(std::string_view text, bool parse_special, bool add_bos) const {
  std::vector<TokenId> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  for (const Fragment& fragment : split_special(text, parse_special)) {
    if (fragment.special >= 0) {
      out.push_back(fragment.special);
      continue;
    }
    for (const std::string& word : pre_tokenizer_->split(fragment.text)) encode_word(word, out);
  }
  return out;
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (pre_tokenizer_->ignore_merges()) {
    // Llama 3's ignore_merges: a word that is itself a token is not split.
    std::string symbols;
    for (char c : word) symbols += unicode::byte_symbol(static_cast<uint8_t>(c));
    const TokenId whole = find_token(symbols);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }

  // A doubly linked list of symbols, one per byte to begin with; each symbol
  // is a token id (-1 if the vocabulary lacks that byte's symbol).
  struct Symbol {
    TokenId id;
    int32_t prev, next;
  };
  std::vector<Symbol> symbols(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    const auto index = static_cast<int32_t>(i);
    symbols[i] = Symbol{byte_tokens_[static_cast<unsigned char>(word[i])], index - 1, index + 1};
  }
  symbols.back().next = -1;

  struct Candidate {
    int32_t rank;
    int32_t left, right;
    TokenId left_id, right_id, result;
  };
  // Lowest rank first; on equal ranks the leftmost pair (as HF and llama.cpp).
  const auto lower_priority = [](const Candidate& a, const Candidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(lower_priority)> queue(lower_priority);
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const TokenId left_id = symbols[left].id;
    const TokenId right_id = symbols[right].id;
    if (left_id < 0 || right_id < 0) return;
    const Merge* merge = merges_.find(pair_key(left_id, right_id));
    if (merge == nullptr) return;
    queue.push(Candidate{merge->rank, left, right, left_id, right_id, merge->result});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) try_add(i, i + 1);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    // Stale: the pair is no longer adjacent or one side changed since queued.
    if (left.id != top.left_id || left.next != top.right || symbols[top.right].id != top.right_id) continue;
    Symbol& right = symbols[top.right];
    left.id = top.result;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.id = -1;
    right.next = right.prev = -1;
    try_add(left.prev, top.left);
    try_add(top.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    if (symbols[i].id >= 0) {
      out.push_back(symbols[i].id);
    } else if (unk_ >= 0) {
      out.push_back(unk_);  // a byte the vocabulary cannot express
    }
  }
}

std::string BpeTokenizer::token_bytes(TokenId id, bool render_special) const {
  if (id < 0 || id >= vocab_size()) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
  const std::string& text = tokens_[id];
  switch (attrs_[id]) {
    case TokenAttr::Normal:
    case TokenAttr::Byte: {
      // Undo the byte-level mapping; characters outside it (never in a
      // well-formed vocabulary) are kept as they are, as HF's decoder does.
      std::string out;
      out.reserve(text.size());
      for (size_t pos = 0; pos < text.size();) {
        const size_t len = unicode::valid_sequence_length(text, pos);
        if (len == 0) {
          out.push_back(text[pos++]);
          continue;
        }
        const int byte = unicode::codepoint_to_byte(unicode::decode_at(text, pos));
        if (byte >= 0) {
          out.push_back(static_cast<char>(byte));
        } else {
          out.append(text, pos, len);
        }
        pos += len;
      }
      return out;
    }
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
