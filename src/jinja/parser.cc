// Lexer and parser. Both follow jinja2/lexer.py and jinja2/parser.py closely
// (same whitespace control, same operator precedence, same quirks), because
// byte-exact output depends on them.
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>

#include "jinja/internal.h"
#include "jinja/text.h"

namespace glassbox::jinja {

TemplateError::TemplateError(const std::string& template_name, int line, int column, const std::string& message)
    : glassbox::Error(template_name + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message),
      line_(line),
      column_(column),
      message_(message) {}

namespace {

// ------------------------------------------------------------------ tokens

enum class Tok { kData, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };

struct Token {
  Tok type;
  std::string value;  // data text, name, decoded string, operator
  int64_t int_value = 0;
  double float_value = 0;
  size_t offset = 0;
};

// Maps byte offsets of the (newline-normalised) source to line and column.
class LineIndex {
 public:
  explicit LineIndex(std::string_view source) : source_(source) {
    starts_.push_back(0);
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\n') starts_.push_back(i + 1);
    }
  }
  SourcePos at(size_t offset) const {
    offset = std::min(offset, source_.size());
    size_t line = std::upper_bound(starts_.begin(), starts_.end(), offset) - starts_.begin();
    const size_t start = starts_[line - 1];
    const size_t column = text::code_point_count(source_.substr(start, offset - start)) + 1;
    return SourcePos{static_cast<int>(line), static_cast<int>(column)};
  }

 private:
  std::string_view source_;
  std::vector<size_t> starts_;
};

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_ascii_digit(c); }

// Python's str.rstrip() (Unicode whitespace).
std::string_view rstrip_space(std::string_view s) {
  size_t end = s.size();
  // Walk code points forward, remembering where the trailing whitespace run starts.
  size_t pos = 0;
  size_t run_start = std::string_view::npos;
  while (pos < s.size()) {
    const size_t start = pos;
    const char32_t cp = text::next_code_point(s, pos);
    if (text::is_space(cp)) {
      if (run_start == std::string_view::npos) run_start = start;
    } else {
      run_start = std::string_view::npos;
    }
  }
  if (run_start != std::string_view::npos) end = run_start;
  return s.substr(0, end);
}

// Length of the run of Unicode whitespace starting at pos.
size_t space_run(std::string_view s, size_t pos) {
  size_t p = pos;
  while (p < s.size()) {
    size_t next = p;
    const char32_t cp = text::next_code_point(s, next);
    if (!text::is_space(cp)) break;
    p = next;
  }
  return p - pos;
}

class Lexer {
 public:
  Lexer(std::string_view source, const Options& options, const LineIndex& lines)
      : src_(source), options_(options), lines_(lines) {}

  std::vector<Token> tokenize() {
    bool line_starting = true;
    const size_t n = src_.size();
    while (pos_ < n) {
      size_t i = pos_;
      while (true) {
        i = src_.find('{', i);
        if (i == std::string_view::npos || i + 1 >= n) {
          i = std::string_view::npos;
          break;
        }
        const char k = src_[i + 1];
        if (k == '{' || k == '%' || k == '#') break;
        ++i;
      }
      if (i == std::string_view::npos) {
        emit_data(src_.substr(pos_), pos_);
        pos_ = n;
        break;
      }
      const char kind = src_[i + 1];
      size_t after = i + 2;
      char sign = 0;
      if (after < n && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
      std::string_view text = src_.substr(pos_, i - pos_);
      const size_t text_offset = pos_;
      text = apply_strip(text, sign, kind != '{', line_starting);
      emit_data(text, text_offset);

      if (kind == '#') {
        pos_ = lex_comment(after, i);
        line_starting = src_[pos_ - 1] == '\n';
        continue;
      }
      if (kind == '%') {
        size_t raw_end = match_raw_begin(after);
        if (raw_end != std::string_view::npos) {
          line_starting = src_[raw_end - 1] == '\n';
          pos_ = lex_raw(raw_end, i, line_starting);
          line_starting = src_[pos_ - 1] == '\n';
          continue;
        }
      }
      push(kind == '%' ? Tok::kBlockBegin : Tok::kVarBegin, "", i);
      pos_ = after;
      lex_tag(kind == '%');
      line_starting = src_[pos_ - 1] == '\n';
    }
    push(Tok::kEof, "", n);
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(size_t offset, const std::string& message) const {
    const SourcePos p = lines_.at(offset);
    throw TemplateError(options_.name, p.line, p.column, message);
  }

  void push(Tok type, std::string value, size_t offset) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.offset = offset;
    tokens_.push_back(std::move(t));
  }

  void emit_data(std::string_view text, size_t offset) {
    if (!text.empty()) push(Tok::kData, std::string(text), offset);
  }

  // Whitespace control for the text before a tag: "-" strips all trailing
  // whitespace, lstrip_blocks strips an indentation-only line start before
  // block and comment tags (not before {{ }}), "+" disables lstrip.
  std::string_view apply_strip(std::string_view text, char sign, bool lstrip_allowed, bool line_starting) const {
    if (sign == '-') return rstrip_space(text);
    if (sign != '+' && options_.lstrip_blocks && lstrip_allowed) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting) && l_pos < text.size() && space_run(text, l_pos) == text.size() - l_pos) {
        return text.substr(0, l_pos);
      }
    }
    return text;
  }

  // Matches a block end at pos (`+%}`, `-%}` plus whitespace, `%}` plus an
  // optional newline with trim_blocks); returns the end or npos.
  size_t match_block_end(size_t pos) const {
    if (src_.compare(pos, 3, "+%}") == 0) return pos + 3;
    if (src_.compare(pos, 3, "-%}") == 0) return pos + 3 + space_run(src_, pos + 3);
    if (src_.compare(pos, 2, "%}") == 0) {
      size_t end = pos + 2;
      if (options_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
      return end;
    }
    return std::string_view::npos;
  }

  size_t lex_comment(size_t pos, size_t tag_offset) {
    for (size_t j = pos; j < src_.size(); ++j) {
      if (src_.compare(j, 3, "+#}") == 0) return j + 3;
      if (src_.compare(j, 3, "-#}") == 0) return j + 3 + space_run(src_, j + 3);
      if (src_.compare(j, 2, "#}") == 0) {
        size_t end = j + 2;
        if (options_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
        return end;
      }
    }
    fail(tag_offset, "Missing end of comment tag");
  }

  size_t skip_ws(size_t p) const { return p + space_run(src_, p); }

  // `{%[-+]? raw %}` (the caller consumed `{%` and the sign): returns the
  // end of the tag or npos. No trim_blocks newline here, as in Jinja2.
  size_t match_raw_begin(size_t p) const {
    p = skip_ws(p);
    if (src_.compare(p, 3, "raw") != 0) return std::string_view::npos;
    p = skip_ws(p + 3);
    if (src_.compare(p, 3, "-%}") == 0) return p + 3 + space_run(src_, p + 3);
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string_view::npos;
  }

  size_t lex_raw(size_t pos, size_t tag_offset, bool line_starting) {
    for (size_t j = pos; j + 1 < src_.size(); ++j) {
      if (src_[j] != '{' || src_[j + 1] != '%') continue;
      size_t p = j + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      p = skip_ws(p);
      if (src_.compare(p, 6, "endraw") != 0) continue;
      p = skip_ws(p + 6);
      const size_t end = match_block_end(p);
      if (end == std::string_view::npos) continue;
      std::string_view text = apply_strip(src_.substr(pos, j - pos), sign, true, line_starting);
      emit_data(text, pos);
      return end;
    }
    fail(tag_offset, "Missing end of raw directive");
  }

  // `(\d+_)*\d+` at p: returns the end, or npos when there is no digit.
  size_t digit_run(size_t p) const {
    if (p >= src_.size() || !is_ascii_digit(src_[p])) return std::string_view::npos;
    while (true) {
      while (p < src_.size() && is_ascii_digit(src_[p])) ++p;
      if (p + 1 < src_.size() && src_[p] == '_' && is_ascii_digit(src_[p + 1])) {
        ++p;
        continue;
      }
      return p;
    }
  }

  size_t exponent_at(size_t p) const {
    if (p >= src_.size() || (src_[p] != 'e' && src_[p] != 'E')) return std::string_view::npos;
    ++p;
    if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
    return digit_run(p);
  }

  static std::string without_underscores(std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c != '_') out.push_back(c);
    }
    return out;
  }

  // Number literal at p (a digit). Float first, as in Jinja2's rule order.
  size_t lex_number(size_t p) {
    const bool after_dot = p > 0 && src_[p - 1] == '.';
    if (!after_dot) {
      const size_t int_end = digit_run(p);
      size_t end = std::string_view::npos;
      size_t frac_end = std::string_view::npos;
      if (int_end < src_.size() && src_[int_end] == '.') frac_end = digit_run(int_end + 1);
      if (frac_end != std::string_view::npos) end = exponent_at(frac_end);
      if (end == std::string_view::npos) end = exponent_at(int_end);
      if (end == std::string_view::npos) end = frac_end;
      if (end != std::string_view::npos) {
        const std::string literal = without_underscores(src_.substr(p, end - p));
        Token t;
        t.type = Tok::kFloat;
        t.value = literal;
        t.float_value = std::strtod(literal.c_str(), nullptr);
        t.offset = p;
        tokens_.push_back(std::move(t));
        return end;
      }
    }
    // Integer: 0b.., 0o.., 0x.., [1-9](_?\d)*, 0(_?0)*
    int base = 10;
    size_t q = p;
    const auto lower = [](char c) { return static_cast<char>(c | 0x20); };
    const auto is_base_digit = [](char c, int b) {
      if (b == 2) return c == '0' || c == '1';
      if (b == 8) return c >= '0' && c <= '7';
      if (b == 16) return is_ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
      return is_ascii_digit(c);
    };
    std::string digits;
    if (src_[p] == '0' && p + 1 < src_.size() &&
        (lower(src_[p + 1]) == 'b' || lower(src_[p + 1]) == 'o' || lower(src_[p + 1]) == 'x')) {
      base = lower(src_[p + 1]) == 'b' ? 2 : lower(src_[p + 1]) == 'o' ? 8 : 16;
      size_t r = p + 2;
      while (true) {
        size_t s = r;
        if (s < src_.size() && src_[s] == '_') ++s;
        if (s < src_.size() && is_base_digit(src_[s], base)) {
          digits.push_back(src_[s]);
          r = s + 1;
        } else {
          break;
        }
      }
      if (!digits.empty()) q = r;
    }
    if (digits.empty()) {
      base = 10;
      q = p;
      const bool zero = src_[p] == '0';
      digits.push_back(src_[q++]);
      while (true) {
        size_t s = q;
        if (s < src_.size() && src_[s] == '_') ++s;
        if (s < src_.size() && is_ascii_digit(src_[s]) && (!zero || src_[s] == '0')) {
          digits.push_back(src_[s]);
          q = s + 1;
        } else {
          break;
        }
      }
    }
    errno = 0;
    char* endp = nullptr;
    const unsigned long long v = std::strtoull(digits.c_str(), &endp, base);
    if (errno == ERANGE || v > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max())) {
      fail(p, "integer literal too large (integers are 64-bit here)");
    }
    Token t;
    t.type = Tok::kInt;
    t.value = std::string(src_.substr(p, q - p));
    t.int_value = static_cast<int64_t>(v);
    t.offset = p;
    tokens_.push_back(std::move(t));
    return q;
  }

  // Decodes a string literal body the way Python's "unicode-escape" codec
  // does (which is what Jinja2 uses).
  std::string unescape(std::string_view body, size_t offset) const {
    std::string out;
    size_t i = 0;
    const auto hex_value = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      c = static_cast<char>(c | 0x20);
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    while (i < body.size()) {
      const char c = body[i];
      if (c != '\\' || i + 1 >= body.size()) {
        out.push_back(c);
        ++i;
        continue;
      }
      const char e = body[i + 1];
      i += 2;
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t k = 0; k < len; ++k) {
            const int h = i + k < body.size() ? hex_value(body[i + k]) : -1;
            if (h < 0) {
              fail(offset, e == 'x'   ? "truncated \\xXX escape"
                           : e == 'u' ? "truncated \\uXXXX escape"
                                      : "truncated \\UXXXXXXXX escape");
            }
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          i += len;
          if (cp > 0x10FFFF) fail(offset, "illegal Unicode character");
          if (cp >= 0xD800 && cp <= 0xDFFF) fail(offset, "surrogate code points are not supported in strings");
          text::append_utf8(out, cp);
          break;
        }
        case 'N':
          fail(offset, "\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++k, ++i) {
              cp = cp * 8 + static_cast<uint32_t>(body[i] - '0');
            }
            text::append_utf8(out, cp);
          } else if (static_cast<unsigned char>(e) >= 0x80) {
            // A backslash before a non-ASCII character: Jinja2's
            // backslashreplace round trip yields "\xe9"-style text.
            size_t p = i - 1;
            const char32_t cp = text::next_code_point(body, p);
            i = p;
            char buf[16];
            if (cp <= 0xFF) {
              std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(cp));
            } else if (cp <= 0xFFFF) {
              std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
            } else {
              std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(cp));
            }
            out += buf;
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    return out;
  }

  void lex_tag(bool block) {
    std::vector<char> balancing;
    const size_t n = src_.size();
    while (true) {
      if (pos_ >= n) {
        fail(pos_, block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
      }
      if (balancing.empty()) {
        size_t end = std::string_view::npos;
        if (block) {
          end = match_block_end(pos_);
        } else if (src_.compare(pos_, 3, "-}}") == 0) {
          end = pos_ + 3 + space_run(src_, pos_ + 3);
        } else if (src_.compare(pos_, 2, "}}") == 0) {
          end = pos_ + 2;
        }
        if (end != std::string_view::npos) {
          push(block ? Tok::kBlockEnd : Tok::kVarEnd, "", pos_);
          pos_ = end;
          return;
        }
      }
      const size_t ws = space_run(src_, pos_);
      if (ws > 0) {
        pos_ += ws;
        continue;
      }
      const char c = src_[pos_];
      if (is_ascii_digit(c)) {
        pos_ = lex_number(pos_);
        continue;
      }
      if (is_name_start(c)) {
        size_t e = pos_ + 1;
        while (e < n && is_name_char(src_[e])) ++e;
        push(Tok::kName, std::string(src_.substr(pos_, e - pos_)), pos_);
        pos_ = e;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t e = pos_ + 1;
        bool closed = false;
        while (e < n) {
          if (src_[e] == '\\' && e + 1 < n) {
            e += 2;
            continue;
          }
          if (src_[e] == c) {
            closed = true;
            break;
          }
          ++e;
        }
        if (!closed) fail(pos_, std::string("unexpected char '") + c + "' (unterminated string)");
        push(Tok::kString, unescape(src_.substr(pos_ + 1, e - pos_ - 1), pos_), pos_);
        pos_ = e + 1;
        continue;
      }
      static const char* const kTwoCharOps[] = {"//", "**", "==", "!=", ">=", "<="};
      std::string op;
      for (const char* two : kTwoCharOps) {
        if (src_.compare(pos_, 2, two) == 0) {
          op = two;
          break;
        }
      }
      if (op.empty() && std::strchr("+-/*%~[](){}><=.:|,;", c) != nullptr && c != 0) op = std::string(1, c);
      if (op.empty()) {
        size_t p = pos_;
        const char32_t cp = text::next_code_point(src_, p);
        std::string shown;
        text::append_utf8(shown, cp);
        fail(pos_, "unexpected char '" + shown + "'");
      }
      if (op == "(" || op == "[" || op == "{") {
        balancing.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
      } else if (op == ")" || op == "]" || op == "}") {
        if (balancing.empty()) fail(pos_, "unexpected '" + op + "'");
        const char expected = balancing.back();
        balancing.pop_back();
        if (expected != op[0]) fail(pos_, "unexpected '" + op + "', expected '" + std::string(1, expected) + "'");
      }
      push(Tok::kOp, op, pos_);
      pos_ += op.size();
    }
  }

  std::string_view src_;
  const Options& options_;
  const LineIndex& lines_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
};

// ------------------------------------------------------------------ parser

class Parser {
 public:
  Parser(std::vector<Token> tokens, const Options& options, const LineIndex& lines)
      : tokens_(std::move(tokens)), options_(options), lines_(lines) {}

  Body parse() {
    Body body = subparse({});
    if (cur().type != Tok::kEof) fail(cur(), "unexpected " + describe(cur()));
    for (const auto& [e, message] : unknown_names_) {
      if (!e->soft) {
        throw TemplateError(options_.name, e->pos.line, e->pos.column, message);
      }
    }
    return body;
  }

 private:
  // ---- token stream helpers
  const Token& cur() const { return tokens_[index_]; }
  const Token& look() const { return tokens_[std::min(index_ + 1, tokens_.size() - 1)]; }
  const Token& advance() {
    const Token& t = tokens_[index_];
    if (index_ + 1 < tokens_.size()) ++index_;
    return t;
  }
  bool is_name(const Token& t, std::string_view name) const { return t.type == Tok::kName && t.value == name; }
  bool is_op(const Token& t, std::string_view op) const { return t.type == Tok::kOp && t.value == op; }
  bool skip_name(std::string_view name) {
    if (!is_name(cur(), name)) return false;
    advance();
    return true;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(cur(), op)) return false;
    advance();
    return true;
  }
  SourcePos pos_of(const Token& t) const { return lines_.at(t.offset); }

  [[noreturn]] void fail(const Token& t, const std::string& message) const {
    const SourcePos p = pos_of(t);
    throw TemplateError(options_.name, p.line, p.column, message);
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::kData:
        return "template data";
      case Tok::kVarBegin:
        return "begin of print statement";
      case Tok::kVarEnd:
        return "end of print statement";
      case Tok::kBlockBegin:
        return "begin of statement block";
      case Tok::kBlockEnd:
        return "end of statement block";
      case Tok::kName:
        return "'" + t.value + "'";
      case Tok::kString:
        return "string";
      case Tok::kInt:
        return "integer";
      case Tok::kFloat:
        return "float";
      case Tok::kOp:
        return "'" + t.value + "'";
      case Tok::kEof:
        return "end of template";
    }
    return "token";
  }

  const Token& expect_op(std::string_view op) {
    if (!is_op(cur(), op)) fail(cur(), "expected '" + std::string(op) + "', got " + describe(cur()));
    return advance();
  }
  const Token& expect_name() {
    if (cur().type != Tok::kName) fail(cur(), "expected name, got " + describe(cur()));
    return advance();
  }
  const Token& expect_name(std::string_view name) {
    if (!is_name(cur(), name)) fail(cur(), "expected '" + std::string(name) + "', got " + describe(cur()));
    return advance();
  }
  void expect_block_end() {
    if (cur().type != Tok::kBlockEnd) fail(cur(), "expected end of statement block, got " + describe(cur()));
    advance();
  }

  ExprPtr make(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos_of(at);
    return e;
  }
  ExprPtr make_at(ExprKind kind, SourcePos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  StmtPtr make_stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->pos = pos_of(at);
    return s;
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : parser(p) {
      if (++parser.depth_ > 200) parser.fail(parser.cur(), "template nested too deeply");
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  // ---- statements

  bool at_end_tag(const std::vector<std::string_view>& end_tags) const {
    if (cur().type != Tok::kName) return false;
    for (auto t : end_tags) {
      if (cur().value == t) return true;
    }
    return false;
  }

  // Parses until a block tag whose name is in end_tags; leaves the stream
  // on that name.
  Body subparse(const std::vector<std::string_view>& end_tags) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::kEof) {
        if (!end_tags.empty()) {
          std::string wanted;
          for (auto tag : end_tags) wanted += (wanted.empty() ? "'" : " or '") + std::string(tag) + "'";
          fail(t, "unexpected end of template, expected " + wanted);
        }
        return body;
      }
      if (t.type == Tok::kData) {
        auto s = make_stmt(StmtKind::kData, t);
        s->text = t.value;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == Tok::kVarBegin) {
        const Token& begin = advance();
        auto s = make_stmt(StmtKind::kOutput, begin);
        s->expr = parse_tuple(true, {}, false);
        if (cur().type != Tok::kVarEnd) fail(cur(), "expected end of print statement, got " + describe(cur()));
        advance();
        body.push_back(std::move(s));
      } else if (t.type == Tok::kBlockBegin) {
        advance();
        if (at_end_tag(end_tags)) return body;
        StmtPtr s = parse_statement(end_tags);
        if (s) body.push_back(std::move(s));
        expect_block_end();
      } else {
        fail(t, "unexpected " + describe(t));
      }
    }
  }

  Body parse_statements(const std::vector<std::string_view>& end_tags, bool drop_needle) {
    skip_op(":");
    expect_block_end();
    Body body = subparse(end_tags);
    if (drop_needle) advance();
    return body;
  }

  StmtPtr parse_statement(const std::vector<std::string_view>& end_tags) {
    const Token& t = cur();
    if (t.type != Tok::kName) fail(t, "tag name expected");
    DepthGuard guard(*this);
    const std::string& name = t.value;
    if (name == "if") return parse_if();
    if (name == "for") return parse_for();
    if (name == "set") return parse_set();
    if (name == "macro") return parse_macro();
    if (name == "call") return parse_call_block();
    if (name == "filter") return parse_filter_block();
    if (name == "with") return parse_with();
    if (name == "print") return parse_print();
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) fail(t, "'" + name + "' outside loop");
      auto s = make_stmt(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, t);
      advance();
      return s;
    }
    if (name == "block" || name == "extends" || name == "include" || name == "import" || name == "from" ||
        name == "autoescape") {
      fail(t, "tag '" + name + "' is not supported");
    }
    std::string message = "Encountered unknown tag '" + name + "'.";
    if (!end_tags.empty()) {
      message += " Jinja was looking for the following tags:";
      bool first = true;
      for (auto tag : end_tags) {
        message += (first ? " '" : " or '") + std::string(tag) + "'";
        first = false;
      }
      message += ".";
    }
    fail(t, message);
  }

  StmtPtr parse_if() {
    auto s = make_stmt(StmtKind::kIf, advance());
    SoftScope soft(*this, true);
    while (true) {
      IfBranch branch;
      branch.test = parse_tuple(false, {}, false);
      branch.body = parse_statements({"elif", "else", "endif"}, false);
      s->branches.push_back(std::move(branch));
      const Token& t = advance();
      if (t.value == "elif") continue;
      if (t.value == "else") s->else_body = parse_statements({"endif"}, true);
      break;
    }
    return s;
  }

  StmtPtr parse_for() {
    auto s = make_stmt(StmtKind::kFor, advance());
    s->target = parse_assign_target(true, {"in"});
    expect_name("in");
    s->expr = parse_tuple(false, {"recursive"}, false);
    SoftScope inner(*this, false);
    if (skip_name("if")) s->loop_filter = parse_expression(true);
    s->recursive = skip_name("recursive");
    ++loop_depth_;
    s->body = parse_statements({"endfor", "else"}, false);
    --loop_depth_;
    if (advance().value == "else") {
      // The else branch is not inside this loop (break there refers to an
      // enclosing loop, if any).
      s->else_body = parse_statements({"endfor"}, true);
    }
    return s;
  }

  StmtPtr parse_set() {
    auto s = make_stmt(StmtKind::kSet, advance());
    if (cur().type == Tok::kName && is_op(look(), ".")) {
      // {% set ns.attr = value %}
      const Token& ns = advance();
      advance();
      const Token& attr = expect_name();
      auto target = make(ExprKind::kGetattr, ns);
      auto base = make(ExprKind::kName, ns);
      base->name = ns.value;
      target->children.push_back(std::move(base));
      target->name = attr.value;
      s->target = std::move(target);
    } else {
      s->target = parse_assign_target(true, {});
    }
    if (skip_op("=")) {
      s->expr = parse_tuple(true, {}, false);
      return s;
    }
    s->kind = StmtKind::kSetBlock;
    SoftScope inner(*this, false);
    if (is_op(cur(), "|")) s->expr = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(cur(), ")")) {
      if (!s.params.empty()) expect_op(",");
      MacroParam p;
      p.name = expect_name().value;
      if (skip_op("=")) {
        p.default_value = parse_expression(true);
      } else if (!s.params.empty() && s.params.back().default_value) {
        fail(cur(), "non-default argument follows default argument");
      }
      s.params.push_back(std::move(p));
    }
    expect_op(")");
  }

  // Which of varargs / kwargs / caller a macro body refers to decides what
  // extra arguments the macro accepts, as in Jinja2.
  static void scan_names(const Expr* e, std::set<std::string>& names) {
    if (!e) return;
    if (e->kind == ExprKind::kName) names.insert(e->name);
    for (const auto& c : e->children) scan_names(c.get(), names);
    for (const auto& c : e->args.positional) scan_names(c.get(), names);
    for (const auto& [k, c] : e->args.keyword) scan_names(c.get(), names);
    scan_names(e->args.dyn_args.get(), names);
    scan_names(e->args.dyn_kwargs.get(), names);
  }
  static void scan_names(const Body& body, std::set<std::string>& names) {
    for (const auto& s : body) {
      scan_names(s->expr.get(), names);
      scan_names(s->loop_filter.get(), names);
      for (const auto& b : s->branches) {
        scan_names(b.test.get(), names);
        scan_names(b.body, names);
      }
      scan_names(s->body, names);
      scan_names(s->else_body, names);
      for (const auto& p : s->params) scan_names(p.default_value.get(), names);
      for (const auto& v : s->values) scan_names(v.get(), names);
    }
  }
  static void mark_special_names(Stmt& s) {
    std::set<std::string> names;
    scan_names(s.body, names);
    std::set<std::string> params;
    for (const auto& p : s.params) params.insert(p.name);
    s.uses_varargs = names.count("varargs") && !params.count("varargs");
    s.uses_kwargs = names.count("kwargs") && !params.count("kwargs");
    s.uses_caller = names.count("caller") && !params.count("caller");
  }

  StmtPtr parse_macro() {
    auto s = make_stmt(StmtKind::kMacro, advance());
    s->name = expect_name().value;
    SoftScope inner(*this, false);
    parse_signature(*s);
    const int saved = loop_depth_;
    loop_depth_ = 0;  // a loop outside the macro does not make break valid inside it
    s->body = parse_statements({"endmacro"}, true);
    loop_depth_ = saved;
    mark_special_names(*s);
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = make_stmt(StmtKind::kCallBlock, advance());
    if (is_op(cur(), "(")) parse_signature(*s);
    const Token& call_tok = cur();
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) fail(call_tok, "expected call");
    SoftScope inner(*this, false);
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_statements({"endcall"}, true);
    loop_depth_ = saved;
    mark_special_names(*s);
    s->name = "caller";
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = make_stmt(StmtKind::kFilterBlock, advance());
    s->expr = parse_filter(nullptr, true);
    SoftScope inner(*this, false);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = make_stmt(StmtKind::kWith, advance());
    while (cur().type != Tok::kBlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(true, {}));
      expect_op("=");
      s->values.push_back(parse_expression(true));
    }
    SoftScope inner(*this, false);
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  StmtPtr parse_print() {
    const Token& t = advance();
    auto tuple = make(ExprKind::kTuple, t);
    while (cur().type != Tok::kBlockEnd) {
      if (!tuple->children.empty()) expect_op(",");
      tuple->children.push_back(parse_expression(true));
    }
    // {% print a, b %} outputs each expression in turn.
    auto s = make_stmt(StmtKind::kOutput, t);
    if (tuple->children.size() == 1) {
      s->expr = std::move(tuple->children[0]);
      return s;
    }
    auto with = make_stmt(StmtKind::kIf, t);
    IfBranch always;
    always.test = make(ExprKind::kLiteral, t);
    always.test->value = Value(true);
    for (auto& e : tuple->children) {
      auto out = make_stmt(StmtKind::kOutput, t);
      out->expr = std::move(e);
      always.body.push_back(std::move(out));
    }
    with->branches.push_back(std::move(always));
    return with;
  }

  // Name, or a tuple of names (possibly nested), as the target of for/set.
  ExprPtr parse_assign_target(bool with_tuple, const std::vector<std::string_view>& extra_end) {
    const Token& start = cur();
    ExprPtr target;
    if (with_tuple) {
      target = parse_tuple_simplified(extra_end);
    } else {
      target = parse_primary();
    }
    check_assignable(*target, start);
    return target;
  }

  void check_assignable(const Expr& e, const Token& at) const {
    if (e.kind == ExprKind::kName) {
      if (e.name == "true" || e.name == "false" || e.name == "none" || e.name == "True" || e.name == "False" ||
          e.name == "None") {
        fail(at, "can't assign to const");
      }
      return;
    }
    if (e.kind == ExprKind::kTuple) {
      for (const auto& c : e.children) check_assignable(*c, at);
      return;
    }
    fail(at, "can't assign to this expression");
  }

  // ---- expressions

  bool is_tuple_end(const std::vector<std::string_view>& extra_end) const {
    const Token& t = cur();
    if (t.type == Tok::kVarEnd || t.type == Tok::kBlockEnd || is_op(t, ")")) return true;
    if (t.type == Tok::kName) {
      for (auto e : extra_end) {
        if (t.value == e) return true;
      }
    }
    return false;
  }

  ExprPtr parse_tuple_simplified(const std::vector<std::string_view>& extra_end) {
    const Token& start = cur();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_primary());
      if (is_op(cur(), ",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      fail(cur(), "Expected an expression, got " + describe(cur()));
    }
    auto t = make(ExprKind::kTuple, start);
    t->children = std::move(items);
    return t;
  }

  ExprPtr parse_tuple(bool with_condexpr, const std::vector<std::string_view>& extra_end, bool explicit_parentheses) {
    const Token& start = cur();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
      if (is_op(cur(), ",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) fail(cur(), "Expected an expression, got " + describe(cur()));
    }
    auto t = make(ExprKind::kTuple, start);
    t->children = std::move(items);
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    const Token& start = cur();
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      ExprPtr expr2 = parse_or();
      ExprPtr expr3;
      if (skip_name("else")) expr3 = parse_condexpr();
      auto c = make(ExprKind::kCondExpr, start);
      c->children.push_back(std::move(expr2));
      c->children.push_back(std::move(expr1));
      c->children.push_back(std::move(expr3));
      mark_soft(c.get());
      expr1 = std::move(c);
    }
    return expr1;
  }

  static void mark_soft(Expr* e) {
    if (!e) return;
    e->soft = true;
    for (auto& c : e->children) mark_soft(c.get());
    for (auto& c : e->args.positional) mark_soft(c.get());
    for (auto& [k, c] : e->args.keyword) mark_soft(c.get());
    mark_soft(e->args.dyn_args.get());
    mark_soft(e->args.dyn_kwargs.get());
  }

  // Frames: if statements share a soft frame; loops, macros and blocks get
  // inner (not soft) frames.
  struct SoftScope {
    SoftScope(Parser& p, bool soft) : parser(p), saved(p.soft_) { p.soft_ = soft; }
    ~SoftScope() { parser.soft_ = saved; }
    Parser& parser;
    bool saved;
  };

  ExprPtr parse_or() {
    const Token& start = cur();
    ExprPtr left = parse_and();
    while (skip_name("or")) {
      auto e = make(ExprKind::kOr, start);
      e->children.push_back(std::move(left));
      e->children.push_back(parse_and());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_and() {
    const Token& start = cur();
    ExprPtr left = parse_not();
    while (skip_name("and")) {
      auto e = make(ExprKind::kAnd, start);
      e->children.push_back(std::move(left));
      e->children.push_back(parse_not());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name(cur(), "not")) {
      const Token& t = advance();
      DepthGuard guard(*this);
      auto e = make(ExprKind::kNot, t);
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& start = cur();
    ExprPtr first = parse_math1();
    std::vector<CompareOp> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      const Token& t = cur();
      CompareOp op;
      if (is_op(t, "==")) {
        op = CompareOp::kEq;
      } else if (is_op(t, "!=")) {
        op = CompareOp::kNe;
      } else if (is_op(t, "<")) {
        op = CompareOp::kLt;
      } else if (is_op(t, "<=")) {
        op = CompareOp::kLe;
      } else if (is_op(t, ">")) {
        op = CompareOp::kGt;
      } else if (is_op(t, ">=")) {
        op = CompareOp::kGe;
      } else if (is_name(t, "in")) {
        op = CompareOp::kIn;
      } else if (is_name(t, "not") && is_name(look(), "in")) {
        advance();
        op = CompareOp::kNotIn;
      } else {
        break;
      }
      advance();
      ops.push_back(op);
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto e = make(ExprKind::kCompare, start);
    e->children.push_back(std::move(first));
    for (auto& o : operands) e->children.push_back(std::move(o));
    e->compare_ops = std::move(ops);
    return e;
  }

  ExprPtr binary(BinaryOp op, ExprPtr left, ExprPtr right, const Token& at) {
    auto e = make(ExprKind::kBinary, at);
    e->binary_op = op;
    e->children.push_back(std::move(left));
    e->children.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_math1() {
    const Token& start = cur();
    ExprPtr left = parse_concat();
    while (is_op(cur(), "+") || is_op(cur(), "-")) {
      const BinaryOp op = cur().value == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
      advance();
      left = binary(op, std::move(left), parse_concat(), start);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const Token& start = cur();
    ExprPtr first = parse_math2();
    if (!is_op(cur(), "~")) return first;
    auto e = make(ExprKind::kConcat, start);
    e->children.push_back(std::move(first));
    while (skip_op("~")) e->children.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    const Token& start = cur();
    ExprPtr left = parse_pow();
    while (true) {
      BinaryOp op;
      if (is_op(cur(), "*")) {
        op = BinaryOp::kMul;
      } else if (is_op(cur(), "/")) {
        op = BinaryOp::kDiv;
      } else if (is_op(cur(), "//")) {
        op = BinaryOp::kFloorDiv;
      } else if (is_op(cur(), "%")) {
        op = BinaryOp::kMod;
      } else {
        break;
      }
      advance();
      left = binary(op, std::move(left), parse_pow(), start);
    }
    return left;
  }

  ExprPtr parse_pow() {
    const Token& start = cur();
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) left = binary(BinaryOp::kPow, std::move(left), parse_unary(true), start);
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    const Token& t = cur();
    ExprPtr node;
    if (is_op(t, "-") || is_op(t, "+")) {
      advance();
      node = make(t.value == "-" ? ExprKind::kNeg : ExprKind::kPos, t);
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    DepthGuard guard(*this);
    const Token& t = cur();
    if (t.type == Tok::kName) {
      advance();
      auto e = make(ExprKind::kLiteral, t);
      if (t.value == "true" || t.value == "True") {
        e->value = Value(true);
      } else if (t.value == "false" || t.value == "False") {
        e->value = Value(false);
      } else if (t.value == "none" || t.value == "None") {
        e->value = Value::none();
      } else {
        e->kind = ExprKind::kName;
        e->name = t.value;
      }
      return e;
    }
    if (t.type == Tok::kString) {
      std::string s = advance().value;
      while (cur().type == Tok::kString) s += advance().value;  // adjacent literals concatenate
      auto e = make(ExprKind::kLiteral, t);
      e->value = Value(std::move(s));
      return e;
    }
    if (t.type == Tok::kInt || t.type == Tok::kFloat) {
      advance();
      auto e = make(ExprKind::kLiteral, t);
      e->value = t.type == Tok::kInt ? Value(t.int_value) : Value(t.float_value);
      return e;
    }
    if (is_op(t, "(")) {
      advance();
      ExprPtr e = parse_tuple(true, {}, true);
      expect_op(")");
      return e;
    }
    if (is_op(t, "[")) {
      advance();
      auto e = make(ExprKind::kList, t);
      while (!is_op(cur(), "]")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op(cur(), "]")) break;
        e->children.push_back(parse_expression(true));
      }
      expect_op("]");
      return e;
    }
    if (is_op(t, "{")) {
      advance();
      auto e = make(ExprKind::kDict, t);
      while (!is_op(cur(), "}")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op(cur(), "}")) break;
        e->children.push_back(parse_expression(true));
        expect_op(":");
        e->children.push_back(parse_expression(true));
      }
      expect_op("}");
      return e;
    }
    fail(t, "unexpected " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(cur(), ".") || is_op(cur(), "[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op(cur(), "(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op(cur(), "|")) {
        node = parse_filter(std::move(node), false);
      } else if (is_name(cur(), "is")) {
        node = parse_test(std::move(node));
      } else if (is_op(cur(), "(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = advance();
    if (t.value == ".") {
      const Token& attr = advance();
      if (attr.type == Tok::kName) {
        auto e = make(ExprKind::kGetattr, t);
        e->children.push_back(std::move(node));
        e->name = attr.value;
        return e;
      }
      if (attr.type != Tok::kInt) fail(attr, "expected name or number");
      auto e = make(ExprKind::kGetitem, t);
      e->children.push_back(std::move(node));
      auto index = make(ExprKind::kLiteral, attr);
      index->value = Value(attr.int_value);
      e->children.push_back(std::move(index));
      return e;
    }
    // '['
    std::vector<ExprPtr> args;
    while (!is_op(cur(), "]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto e = make(ExprKind::kGetitem, t);
    e->children.push_back(std::move(node));
    if (args.size() == 1) {
      e->children.push_back(std::move(args[0]));
    } else {
      auto tuple = make(ExprKind::kTuple, t);
      tuple->children = std::move(args);
      e->children.push_back(std::move(tuple));
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    const Token& start = cur();
    std::vector<ExprPtr> parts;
    if (is_op(cur(), ":")) {
      advance();
      parts.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression(true);
      if (!is_op(cur(), ":")) return node;
      advance();
      parts.push_back(std::move(node));
    }
    if (is_op(cur(), ":")) {
      parts.push_back(nullptr);
    } else if (!is_op(cur(), "]") && !is_op(cur(), ",")) {
      parts.push_back(parse_expression(true));
    } else {
      parts.push_back(nullptr);
    }
    if (is_op(cur(), ":")) {
      advance();
      if (!is_op(cur(), "]") && !is_op(cur(), ",")) {
        parts.push_back(parse_expression(true));
      } else {
        parts.push_back(nullptr);
      }
    } else {
      parts.push_back(nullptr);
    }
    auto e = make(ExprKind::kSlice, start);
    e->children = std::move(parts);
    return e;
  }

  CallArgs parse_call_args() {
    const Token& open = expect_op("(");
    CallArgs a;
    bool require_comma = false;
    const auto ensure = [&](bool ok) {
      if (!ok) fail(open, "invalid syntax for function call expression");
    };
    while (!is_op(cur(), ")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(cur(), ")")) break;
      }
      if (is_op(cur(), "*")) {
        ensure(!a.dyn_args && !a.dyn_kwargs);
        advance();
        a.dyn_args = parse_expression(true);
      } else if (is_op(cur(), "**")) {
        ensure(!a.dyn_kwargs);
        advance();
        a.dyn_kwargs = parse_expression(true);
      } else if (cur().type == Tok::kName && is_op(look(), "=")) {
        ensure(!a.dyn_kwargs);
        std::string key = advance().value;
        advance();
        a.keyword.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!a.dyn_args && !a.dyn_kwargs && a.keyword.empty());
        a.positional.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
    return a;
  }

  ExprPtr parse_call(ExprPtr node) {
    // Errors of a call are reported at the start of the callee.
    auto e = make_at(ExprKind::kCall, node->pos);
    e->args = parse_call_args();
    e->children.push_back(std::move(node));
    return e;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name().value;
    while (is_op(cur(), ".")) {
      advance();
      name += "." + expect_name().value;
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op(cur(), "|") || start_inline) {
      if (!start_inline) advance();
      start_inline = false;
      const Token& name_tok = cur();
      std::string name = parse_dotted_name();
      const int id = lookup_filter(name);
      auto e = make(ExprKind::kFilter, name_tok);
      if (id < 0) {
        e->soft = soft_;
        unknown_names_.emplace_back(e.get(), id == kUnknown
                                                 ? "No filter named '" + name + "'."
                                                 : "filter '" + name + "' is not supported by this renderer");
      }
      e->name = std::move(name);
      e->builtin_id = id;
      if (is_op(cur(), "(")) e->args = parse_call_args();
      e->children.push_back(std::move(node));
      node = std::move(e);
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const Token& is_tok = advance();
    const bool negated = skip_name("not");
    const Token& name_tok = cur();
    std::string name = parse_dotted_name();
    const int id = lookup_test(name);
    auto e = make(ExprKind::kTest, name_tok);
    if (id < 0) {
      e->soft = soft_;
      unknown_names_.emplace_back(e.get(), "No test named '" + name + "'.");
    }
    e->name = std::move(name);
    e->builtin_id = id;
    const Token& t = cur();
    if (is_op(t, "(")) {
      e->args = parse_call_args();
    } else if ((t.type == Tok::kName || t.type == Tok::kString || t.type == Tok::kInt || t.type == Tok::kFloat ||
                is_op(t, "(") || is_op(t, "[") || is_op(t, "{")) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
      if (is_name(t, "is")) fail(t, "You cannot chain multiple tests with is");
      ExprPtr arg = parse_postfix(parse_primary());
      e->args.positional.push_back(std::move(arg));
    }
    e->children.push_back(std::move(node));
    if (!negated) return e;
    auto n = make(ExprKind::kNot, is_tok);
    n->children.push_back(std::move(e));
    return n;
  }

  std::vector<Token> tokens_;
  const Options& options_;
  const LineIndex& lines_;
  size_t index_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;
  bool soft_ = false;  // inside an if statement (Jinja2's soft frame)
  std::vector<std::pair<Expr*, std::string>> unknown_names_;
};

}  // namespace

std::string normalize_source(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Body parse_template(std::string_view source, const Options& options) {
  if (!text::is_valid_utf8(source)) throw TemplateError(options.name, 1, 1, "template is not valid UTF-8");
  const std::string normalized = normalize_source(source, options.keep_trailing_newline);
  const LineIndex lines(normalized);
  Lexer lexer(normalized, options, lines);
  Parser parser(lexer.tokenize(), options, lines);
  return parser.parse();
}

}  // namespace glassbox::jinja
