#include "tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <memory>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace glassbox {

namespace {

// Letter-like classes that DeepSeek LLM's tokenizer.json spells out by hand
// (Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee, ... and the
// fullwidth forms) instead of \p{L}.
// The classes are written with \x{...} escapes: several of these code points
// (U+1FD3, U+212A, ...) have canonical decompositions, and a literal copy
// would be silently changed by any tool that NFC-normalises source text.
//
// Cased letters of many scripts that DeepSeek LLM's tokenizer.json spells
// out by hand (Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee, ...,
// fullwidth Latin) instead of \p{L}.
constexpr const char* kDeepseekLlmLetters =
    R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})re"
    R"re(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})re"
    R"re(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})re"
    R"re(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A})re"
    R"re(\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B})re"
    R"re(\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})re"
    R"re(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})re"
    R"re(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134})re"
    R"re(\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})re"
    R"re(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})re"
    R"re(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A})re"
    R"re(\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})re"
    R"re(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re";

// ASCII punctuation and its fullwidth forms, curly quotes, CJK space and
// punctuation U+3000..U+3002.
constexpr const char* kDeepseekLlmPunctuation =
    R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re";

// CJK ideographs, the block U+0800..U+4E00 (Samaritan to CJK), and Hangul.
constexpr const char* kDeepseekCjk = R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";

// CJK ideographs, Hiragana and Katakana (DeepSeek V3).
constexpr const char* kDeepseekV3CjkKana = R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re";

struct Family {
  std::string name;
  std::vector<std::string> aliases;
  std::vector<std::string> regexes;  // applied in order
  bool nfc = false;
  bool ignore_merges = false;
};

const std::vector<Family>& families() {
  static const std::vector<Family> list = {
      // Qwen2/2.5/3 tokenizer.json: NFC normalizer, then this split. One
      // digit per piece.
      {"qwen2",
       {"qwen2", "deepseek-r1-qwen"},
       {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       /*nfc=*/true,
       /*ignore_merges=*/false},
      // Llama 3: digits in runs of up to three; tokenizer.json sets
      // ignore_merges.
      {"llama-bpe",
       {"llama-bpe", "llama3", "llama-v3"},
       {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       false,
       true},
      // DeepSeek LLM (7B/67B): newlines alone, letter runs, ASCII/fullwidth
      // punctuation runs, trailing whitespace, CJK runs, digit runs.
      {"deepseek-llm",
       {"deepseek-llm"},
       {R"re([\r\n])re", kDeepseekLlmLetters, kDeepseekLlmPunctuation, R"re(\s+$)re", kDeepseekCjk, R"re(\p{N}+)re"},
       false,
       false},
      // DeepSeek Coder: like DeepSeek LLM with \p{L}/\p{P} classes and one
      // digit per piece.
      {"deepseek-coder",
       {"deepseek-coder"},
       {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kDeepseekCjk, R"re(\p{N})re"},
       false,
       false},
      // DeepSeek V3/R1: digit runs of up to three, CJK/kana runs, then a
      // GPT-4-like split where punctuation may lead a Latin word.
      {"deepseek-v3",
       {"deepseek-v3"},
       {R"re(\p{N}{1,3})re", kDeepseekV3CjkKana,
        R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       false,
       false},
      // GPT-2's ByteLevel pre-tokenizer regex.
      {"gpt-2",
       {"gpt-2", "phi-2"},
       {R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re"},
       false,
       false},
      // llama.cpp's fallback when a GGUF names no pre-tokenizer.
      {"default",
       {"default"},
       {R"re([\p{P}\$\+<=>\^~\|]+)re", R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re",
        R"re(\p{N}+)re", R"re([0-9][0-9][0-9])re"},
       false,
       false},
  };
  return list;
}

}  // namespace

// One compiled PCRE2 pattern (UTF + UCP, JIT when available). Matching is
// re-entrant: each call makes its own match data.
class RegexSplit {
 public:
  explicit RegexSplit(const std::string& pattern) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                          &error_code, &error_offset, nullptr);
    if (code_ == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof(message));
      throw Error("pre-tokenizer regex does not compile at offset " + std::to_string(error_offset) + ": " +
                  reinterpret_cast<const char*>(message));
    }
    // JIT is an optimisation only: without it the interpreter is used.
    (void)pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
  }
  ~RegexSplit() { pcre2_code_free(code_); }
  RegexSplit(const RegexSplit&) = delete;
  RegexSplit& operator=(const RegexSplit&) = delete;

  // Appends to `out` the pieces of `piece` (well-formed UTF-8): every match
  // and every non-empty gap between matches, in order.
  void split(std::string_view piece, std::vector<std::string_view>& out) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match_data(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    if (!match_data) throw Error("pre-tokenizer: out of memory");
    const auto subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
    size_t gap_start = 0;
    size_t search_from = 0;
    while (search_from <= piece.size()) {
      // The subject was validated as UTF-8 once; re-checking it on every call
      // would make splitting quadratic.
      int rc = pcre2_match(code_, subject, piece.size(), search_from, PCRE2_NO_UTF_CHECK, match_data.get(), nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        rc = pcre2_match(code_, subject, piece.size(), search_from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match_data.get(),
                         nullptr);
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof(message));
        throw Error(std::string("pre-tokenizer regex failed on the input: ") + reinterpret_cast<const char*>(message));
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data.get());
      const size_t match_start = ovector[0];
      const size_t match_end = ovector[1];
      if (match_end == match_start) {
        // None of the patterns can match empty, but a safe split must not
        // loop: step over one character and keep searching.
        if (match_start >= piece.size()) break;
        search_from = match_start + std::max<size_t>(1, unicode::valid_sequence_length(piece, match_start));
        continue;
      }
      if (match_start > gap_start) out.push_back(piece.substr(gap_start, match_start - gap_start));
      out.push_back(piece.substr(match_start, match_end - match_start));
      gap_start = match_end;
      search_from = match_end;
    }
    if (gap_start < piece.size()) out.push_back(piece.substr(gap_start));
  }

 private:
  pcre2_code* code_ = nullptr;
};

PreTokenizer::PreTokenizer(std::string_view pre_name) {
  const std::string_view wanted = pre_name.empty() ? std::string_view("default") : pre_name;
  for (const Family& family : families()) {
    if (std::find(family.aliases.begin(), family.aliases.end(), wanted) == family.aliases.end()) continue;
    family_ = family.name;
    nfc_ = family.nfc;
    ignore_merges_ = family.ignore_merges;
    for (const std::string& pattern : family.regexes) regexes_.push_back(std::make_unique<RegexSplit>(pattern));
    return;
  }
  std::string known;
  for (const std::string& name : known_names()) {
    if (!known.empty()) known += ", ";
    known += name;
  }
  throw Error("tokenizer.ggml.pre: unknown pre-tokenizer '" + std::string(pre_name) + "' (supported: " + known + ")");
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::known_names() {
  std::vector<std::string> names;
  for (const Family& family : families()) names.insert(names.end(), family.aliases.begin(), family.aliases.end());
  return names;
}

void PreTokenizer::split_valid_utf8(std::string_view text, std::vector<std::string>& words) const {
  std::string normalized;
  if (nfc_) {
    normalized = unicode::nfc(text);
    text = normalized;
  }
  std::vector<std::string_view> pieces{text};
  std::vector<std::string_view> next;
  for (const auto& regex : regexes_) {
    next.clear();
    // Each piece is matched on its own, so anchors and look-arounds see the
    // piece's edges (as in Hugging Face's Split sequence).
    for (std::string_view piece : pieces) regex->split(piece, next);
    pieces.swap(next);
  }
  for (std::string_view piece : pieces) words.emplace_back(piece);
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string> words;
  size_t run_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t len = unicode::valid_sequence_length(text, pos);
    if (len > 0) {
      pos += len;
      continue;
    }
    if (pos > run_start) split_valid_utf8(text.substr(run_start, pos - run_start), words);
    words.emplace_back(text.substr(pos, 1));  // an invalid byte: its own word
    ++pos;
    run_start = pos;
  }
  if (pos > run_start) split_valid_utf8(text.substr(run_start, pos - run_start), words);
  return words;
}

}  // namespace glassbox
