#include "source/transform.h"

#include <algorithm>

namespace rr::source {

namespace {

enum class Tok { ident, punct, number };

struct Token {
  Tok kind;
  size_t offset;
  size_t length;
  std::string_view text;
};

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

size_t line_of(std::string_view text, size_t offset) {
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(std::min(offset, text.size())), '\n'));
}

// Tokens of C text outside comments, literals and preprocessor directives. Only identifiers, numbers and
// single punctuation characters are produced: enough to find declarations and match brackets.
class Tokenizer {
 public:
  Tokenizer(std::string_view text, std::string_view path) : t_(text), path_(path) {}

  Result<std::vector<Token>> run() {
    std::vector<Token> out;
    bool line_start = true;  // only whitespace (or comments) since the last newline
    size_t i = 0;
    while (i < t_.size()) {
      char c = t_[i];
      if (c == '\n') {
        line_start = true;
        ++i;
        continue;
      }
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        ++i;
        continue;
      }
      if (c == '\\' && i + 1 < t_.size() && t_[i + 1] == '\n') {  // line splice outside a directive
        i += 2;
        continue;
      }
      if (c == '/' && i + 1 < t_.size() && (t_[i + 1] == '*' || t_[i + 1] == '/')) {
        RR_ASSIGN(i, skip_comment(i));
        continue;
      }
      if (c == '#' && line_start) {
        RR_ASSIGN(i, skip_directive(i));
        continue;
      }
      line_start = false;
      if (c == '"' || c == '\'') {
        RR_ASSIGN(i, skip_literal(i));
        continue;
      }
      if (is_ident_start(c)) {
        size_t b = i;
        while (i < t_.size() && is_ident_char(t_[i])) ++i;
        out.push_back(Token{Tok::ident, b, i - b, t_.substr(b, i - b)});
        continue;
      }
      if (c >= '0' && c <= '9') {
        size_t b = i;
        // pp-number: digits, letters, '.', and exponent signs (1e+5, 0x1p-3)
        while (i < t_.size() &&
               (is_ident_char(t_[i]) || t_[i] == '.' ||
                ((t_[i] == '+' || t_[i] == '-') && (t_[i - 1] == 'e' || t_[i - 1] == 'E' || t_[i - 1] == 'p' || t_[i - 1] == 'P'))))
          ++i;
        out.push_back(Token{Tok::number, b, i - b, t_.substr(b, i - b)});
        continue;
      }
      out.push_back(Token{Tok::punct, i, 1, t_.substr(i, 1)});
      ++i;
    }
    return out;
  }

 private:
  Error err(size_t at, std::string_view what) const { return make_error(ExitCode::bad_input, "{}:{}: {}", path_, line_of(t_, at), what); }

  Result<size_t> skip_comment(size_t i) const {
    if (t_[i + 1] == '/') {  // to the end of the line; a backslash-newline continues it
      size_t j = i + 2;
      while (j < t_.size() && !(t_[j] == '\n' && t_[j - 1] != '\\')) ++j;
      return j;  // the newline itself is seen by the caller
    }
    size_t end = t_.find("*/", i + 2);
    if (end == std::string_view::npos) return err(i, "unterminated /* comment");
    return end + 2;
  }

  Result<size_t> skip_literal(size_t i) const {
    char q = t_[i];
    size_t j = i + 1;
    while (j < t_.size()) {
      char c = t_[j];
      if (c == '\\') {
        j += 2;
        continue;
      }
      if (c == q) return j + 1;
      if (c == '\n') break;
      ++j;
    }
    return err(i, q == '"' ? "unterminated string literal" : "unterminated character literal");
  }

  // A directive runs to the first newline not preceded by a backslash; comments inside it may span lines.
  Result<size_t> skip_directive(size_t i) const {
    size_t j = i + 1;
    while (j < t_.size()) {
      char c = t_[j];
      if (c == '\n') return j;
      if (c == '\\' && j + 1 < t_.size() && t_[j + 1] == '\n') {
        j += 2;
        continue;
      }
      if (c == '\\' && j + 2 < t_.size() && t_[j + 1] == '\r' && t_[j + 2] == '\n') {
        j += 3;
        continue;
      }
      if (c == '/' && j + 1 < t_.size() && (t_[j + 1] == '*' || t_[j + 1] == '/')) {
        RR_ASSIGN(j, skip_comment(j));
        continue;
      }
      if (c == '"' || c == '\'') {
        // `#include <a'b.h>` or a stray apostrophe in #error text must not derail us: a literal that does
        // not close on this line is taken as plain text.
        auto r = skip_literal(j);
        j = r ? *r : j + 1;
        continue;
      }
      ++j;
    }
    return j;
  }

  std::string_view t_;
  std::string_view path_;
};

bool is_punct(const Token& t, char c) { return t.kind == Tok::punct && t.text[0] == c; }

// Index of the bracket matching tokens[open]; tokens were checked to be balanced overall.
size_t match_bracket(const std::vector<Token>& toks, size_t open) {
  char o = toks[open].text[0];
  char c = o == '(' ? ')' : o == '{' ? '}' : ']';
  int depth = 0;
  for (size_t k = open; k < toks.size(); ++k) {
    if (is_punct(toks[k], o)) ++depth;
    if (is_punct(toks[k], c) && --depth == 0) return k;
  }
  return toks.size();
}

Status check_balanced(std::string_view text, const std::vector<Token>& toks, std::string_view path) {
  std::vector<size_t> stack;
  for (size_t k = 0; k < toks.size(); ++k) {
    if (toks[k].kind != Tok::punct) continue;
    char c = toks[k].text[0];
    if (c == '(' || c == '{' || c == '[') {
      stack.push_back(k);
    } else if (c == ')' || c == '}' || c == ']') {
      char want = c == ')' ? '(' : c == '}' ? '{' : '[';
      if (stack.empty())
        return make_error(ExitCode::bad_input, "{}:{}: unbalanced braces: '{}' closes nothing", path, line_of(text, toks[k].offset), c);
      const Token& open = toks[stack.back()];
      if (open.text[0] != want)
        return make_error(ExitCode::bad_input, "{}:{}: unbalanced braces: '{}' closes the '{}' opened at line {}", path,
                          line_of(text, toks[k].offset), c, open.text[0], line_of(text, open.offset));
      stack.pop_back();
    }
  }
  if (!stack.empty())
    return make_error(ExitCode::bad_input, "{}:{}: unbalanced braces: '{}' is never closed", path, line_of(text, toks[stack.back()].offset),
                      toks[stack.back()].text[0]);
  return ok_status();
}

// Skips GNU attribute syntax and attribute-like macros between a declarator's ')' and its body.
size_t skip_trailing_attributes(const std::vector<Token>& toks, size_t k) {
  while (k < toks.size()) {
    if (toks[k].kind == Tok::ident) {
      ++k;
      if (k < toks.size() && is_punct(toks[k], '(')) k = match_bracket(toks, k) + 1;
      continue;
    }
    break;
  }
  return k;
}

}  // namespace

Result<std::vector<FunctionDefinition>> find_function_definitions(std::string_view text, std::string_view name,
                                                                  std::string_view display_path) {
  RR_ASSIGN(std::vector<Token> toks, Tokenizer(text, display_path).run());
  RR_CHECK(check_balanced(text, toks, display_path));

  std::vector<FunctionDefinition> out;
  int depth = 0;  // braces and parentheses together: a definition's name sits at depth 0
  for (size_t k = 0; k < toks.size(); ++k) {
    const Token& t = toks[k];
    if (t.kind == Tok::punct) {
      char c = t.text[0];
      if (c == '{' || c == '(' || c == '[') ++depth;
      if (c == '}' || c == ')' || c == ']') --depth;
      continue;
    }
    if (depth != 0 || t.kind != Tok::ident || t.text != name) continue;
    if (k + 1 >= toks.size() || !is_punct(toks[k + 1], '(')) continue;
    size_t close = match_bracket(toks, k + 1);
    size_t after = skip_trailing_attributes(toks, close + 1);
    if (after >= toks.size() || !is_punct(toks[after], '{')) continue;  // prototype, or not a declaration

    FunctionDefinition d;
    d.name = std::string(name);
    d.line = line_of(text, t.offset);
    d.body_open = toks[after].offset;
    d.body_close = toks[match_bracket(toks, after)].offset;
    // Specifiers: identifiers and '*' back to the previous declaration's end.
    size_t b = k;
    while (b > 0 && (toks[b - 1].kind == Tok::ident || is_punct(toks[b - 1], '*'))) --b;
    d.decl_offset = toks[b].offset;
    for (size_t s = b; s < k; ++s) d.specifiers.emplace_back(toks[s].text);
    // Parameter names: the last identifier of each comma-separated parameter outside nested brackets, or
    // the declarator in parentheses of a function-pointer parameter: int (*cb)(int).
    size_t param_begin = k + 2;
    int pd = 0;
    for (size_t p = k + 2; p <= close; ++p) {
      const Token& pt = toks[p];
      if (pd == 0 && (p == close || is_punct(pt, ','))) {
        std::string pname;
        size_t idents = 0;
        int qd = 0;
        for (size_t q = param_begin; q < p; ++q) {
          if (is_punct(toks[q], '(') && qd == 0 && q + 2 < p && is_punct(toks[q + 1], '*') && toks[q + 2].kind == Tok::ident) {
            pname = std::string(toks[q + 2].text);
            idents = 2;
            break;
          }
          if (is_punct(toks[q], '(') || is_punct(toks[q], '[')) ++qd;
          if (is_punct(toks[q], ')') || is_punct(toks[q], ']')) --qd;
          if (qd == 0 && toks[q].kind == Tok::ident) {
            pname = std::string(toks[q].text);
            ++idents;
          }
        }
        if (!pname.empty() && !(idents == 1 && pname == "void")) d.parameters.push_back(pname);
        param_begin = p + 1;
        continue;
      }
      if (is_punct(pt, '(') || is_punct(pt, '[')) ++pd;
      if (is_punct(pt, ')') || is_punct(pt, ']')) --pd;
    }
    out.push_back(std::move(d));
  }
  return out;
}

namespace {

// The one definition of device_rmrr_is_relaxable() with the shape both transforms expect.
Result<FunctionDefinition> find_relaxable(std::string_view text, std::string_view display_path) {
  const std::string_view fn = kRelaxFunction;
  RR_ASSIGN(auto defs, find_function_definitions(text, fn, display_path));
  const std::string expected = fmt::format("expected exactly one definition `static bool {}(struct device *dev) {{ ... }}`", fn);
  if (defs.empty())
    return Error{fmt::format("{}: no definition of {}() found; {}", display_path, fn, expected), ExitCode::bad_input,
                 "the relax transform needs the intel-iommu driver of Linux 5.3 or later "
                 "(drivers/iommu/intel-iommu.c or drivers/iommu/intel/iommu.c)"};
  if (defs.size() > 1) {
    std::string lines;
    for (const auto& d : defs) lines += (lines.empty() ? "" : ", ") + std::to_string(d.line);
    return Error{fmt::format("{}: {} definitions of {}() (lines {}); {}", display_path, defs.size(), fn, lines, expected),
                 ExitCode::bad_input, "the file may be patched already or preprocessor-dependent; check it by hand"};
  }
  const FunctionDefinition& d = defs.front();
  bool returns_bool =
      std::any_of(d.specifiers.begin(), d.specifiers.end(), [](const std::string& s) { return s == "bool" || s == "_Bool" || s == "int"; });
  if (!returns_bool || std::find(d.specifiers.begin(), d.specifiers.end(), "*") != d.specifiers.end()) {
    std::string spec;
    for (const auto& s : d.specifiers) spec += (spec.empty() ? "" : " ") + s;
    return Error{fmt::format("{}:{}: {}() is declared `{}`; {}", display_path, d.line, fn, spec, expected), ExitCode::bad_input, {}};
  }
  if (d.parameters.empty())
    return Error{fmt::format("{}:{}: {}() takes no parameters; {}", display_path, d.line, fn, expected), ExitCode::bad_input, {}};
  return d;
}

}  // namespace

Result<Transform> relax_transform(std::string_view text, std::string_view display_path) {
  const std::string_view fn = kRelaxFunction;
  RR_ASSIGN(const FunctionDefinition d, find_relaxable(text, display_path));

  // The new body keeps every parameter referenced, so -Wunused-parameter (-Werror builds) stays quiet.
  std::string body = "{\n\t/* relax-rmrr: every RMRR is relaxable, as with intel_iommu=relax_rmrr */\n";
  for (const auto& p : d.parameters) body += fmt::format("\t(void){};\n", p);
  body += "\treturn true;\n}";

  Transform tr;
  tr.path = std::string(display_path);
  tr.function = std::string(fn);
  tr.line = d.line;
  tr.edits.push_back(TextEdit{d.body_open, std::string(text.substr(d.body_open, d.body_close + 1 - d.body_open)), std::move(body)});
  return tr;
}

namespace {

Result<std::vector<TextEdit>> sorted_checked(std::string_view text, const std::vector<TextEdit>& edits) {
  std::vector<TextEdit> s = edits;
  std::sort(s.begin(), s.end(), [](const TextEdit& a, const TextEdit& b) { return a.offset < b.offset; });
  for (size_t i = 0; i < s.size(); ++i) {
    const TextEdit& e = s[i];
    if (e.offset > text.size() || text.substr(e.offset, e.old_text.size()) != e.old_text)
      return make_error(ExitCode::bad_input, "edit at offset {} does not apply: the text there differs from what the edit replaces",
                        e.offset);
    if (i > 0 && s[i - 1].offset + s[i - 1].old_text.size() > e.offset)
      return make_error(ExitCode::bad_input, "edits at offsets {} and {} overlap", s[i - 1].offset, e.offset);
  }
  return s;
}

// Lines with their terminating newline (the last may lack one).
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    out.push_back(text.substr(start, end - start));
    start = end;
  }
  return out;
}

}  // namespace

Result<std::string> apply_edits(std::string_view text, const std::vector<TextEdit>& edits) {
  RR_ASSIGN(auto s, sorted_checked(text, edits));
  std::string out;
  out.reserve(text.size() + 256);
  size_t at = 0;
  for (const auto& e : s) {
    out.append(text.substr(at, e.offset - at));
    out.append(e.new_text);
    at = e.offset + e.old_text.size();
  }
  out.append(text.substr(at));
  return out;
}

Result<std::string> unified_diff(std::string_view text, const std::vector<TextEdit>& edits, std::string_view path, size_t context) {
  RR_ASSIGN(auto s, sorted_checked(text, edits));
  RR_ASSIGN(std::string patched, apply_edits(text, s));
  auto a = lines_of(text);
  auto b = lines_of(patched);

  // Line starts of the original, to map offsets to line indexes.
  std::vector<size_t> starts;
  for (size_t i = 0, off = 0; i < a.size(); off += a[i].size(), ++i) starts.push_back(off);
  auto line_index = [&](size_t offset) -> size_t {
    auto it = std::upper_bound(starts.begin(), starts.end(), offset);
    return it == starts.begin() ? 0 : static_cast<size_t>(it - starts.begin()) - 1;
  };

  // Each edit widened to whole lines: original lines [a0, a1) become patched lines [b0, b1).
  struct Change {
    size_t a0, a1, b0, b1;
  };
  std::vector<Change> changes;
  std::ptrdiff_t shift = 0;  // patched line index minus original line index before the current change
  size_t previous_end = 0;  // the previous edit's widened end line
  bool first = true;
  for (const auto& e : s) {
    if (e.old_text == e.new_text) continue;
    const size_t end_off = e.offset + e.old_text.size();
    size_t a0 = (e.offset == text.size() && (text.empty() || text.back() == '\n')) ? a.size() : line_index(e.offset);
    size_t a1 = e.old_text.empty() ? a0 : line_index(end_off - 1) + 1;
    // A pure insertion in the middle of a line rewrites that line.
    if (a1 == a0 && a0 < a.size() && e.offset > starts[a0]) a1 = a0 + 1;
    auto line_start = [&](size_t li) { return li < starts.size() ? starts[li] : text.size(); };
    // Widen to whole lines: prefix of the first line, the new text, the rest of the last line.
    std::string widened;
    for (;;) {
      widened = std::string(text.substr(line_start(a0), e.offset - line_start(a0))) + e.new_text +
                std::string(text.substr(end_off, line_start(a1) - end_off));
      if (a1 >= a.size() || widened.empty() || widened.back() == '\n') break;
      ++a1;  // the change ends mid-line: take in the line it continues into
    }
    if (!first && a0 < previous_end)
      return make_error(ExitCode::bad_input, "edits at offsets {} and earlier share a line; merge them into one edit", e.offset);
    first = false;
    previous_end = a1;
    size_t new_lines = lines_of(widened).size();
    size_t b0 = static_cast<size_t>(static_cast<std::ptrdiff_t>(a0) + shift);
    shift += static_cast<std::ptrdiff_t>(new_lines) - static_cast<std::ptrdiff_t>(a1 - a0);
    // Lines the edit rewrote identically (a kept '{' or '}') are context, not change.
    size_t b1 = b0 + new_lines;
    while (a0 < a1 && b0 < b1 && a[a0] == b[b0]) ++a0, ++b0;
    while (a1 > a0 && b1 > b0 && a[a1 - 1] == b[b1 - 1]) --a1, --b1;
    if (a0 == a1 && b0 == b1) continue;
    changes.push_back(Change{a0, a1, b0, b1});
  }
  // Merge changes whose context would touch (sorted edits may also share a line).
  std::vector<std::vector<Change>> hunks;
  for (const auto& c : changes) {
    if (!hunks.empty()) {
      const Change& p = hunks.back().back();
      if (c.a0 <= p.a1 + 2 * context) {
        hunks.back().push_back(c);
        continue;
      }
    }
    hunks.push_back({c});
  }

  auto emit = [](std::string& out, char mark, std::string_view line) {
    out += mark;
    out.append(line);
    if (line.empty() || line.back() != '\n') out += "\n\\ No newline at end of file\n";
  };
  auto range = [](size_t start, size_t count) {
    // Unified diff convention: a 1-based start, or the line before an empty range.
    return count == 0 ? fmt::format("{},0", start) : count == 1 ? fmt::format("{}", start + 1) : fmt::format("{},{}", start + 1, count);
  };

  std::string out = fmt::format("--- a/{}\n+++ b/{}\n", path, path);
  for (const auto& h : hunks) {
    size_t a_begin = h.front().a0 > context ? h.front().a0 - context : 0;
    size_t a_end = std::min(a.size(), h.back().a1 + context);
    size_t b_begin = static_cast<size_t>(static_cast<std::ptrdiff_t>(a_begin) +
                                         (static_cast<std::ptrdiff_t>(h.front().b0) - static_cast<std::ptrdiff_t>(h.front().a0)));
    size_t b_end = static_cast<size_t>(static_cast<std::ptrdiff_t>(a_end) +
                                       (static_cast<std::ptrdiff_t>(h.back().b1) - static_cast<std::ptrdiff_t>(h.back().a1)));
    std::string body;
    size_t ai = a_begin;
    for (const auto& c : h) {
      for (; ai < c.a0; ++ai) emit(body, ' ', a[ai]);
      for (size_t k = c.a0; k < c.a1; ++k) emit(body, '-', a[k]);
      for (size_t k = c.b0; k < c.b1; ++k) emit(body, '+', b[k]);
      ai = c.a1;
    }
    for (; ai < a_end; ++ai) emit(body, ' ', a[ai]);
    out += fmt::format("@@ -{} +{} @@\n", range(a_begin, a_end - a_begin), range(b_begin, b_end - b_begin));
    out += body;
  }
  return out;
}

namespace {

bool is_ident(const Token& t, std::string_view name) { return t.kind == Tok::ident && t.text == name; }

size_t line_start_of(std::string_view text, size_t offset) {
  size_t nl = offset == 0 ? std::string_view::npos : text.rfind('\n', offset - 1);
  return nl == std::string_view::npos ? 0 : nl + 1;
}

// The whitespace that starts the line holding `offset`.
std::string indentation_at(std::string_view text, size_t offset) {
  size_t b = line_start_of(text, offset);
  size_t e = b;
  while (e < text.size() && (text[e] == ' ' || text[e] == '\t')) ++e;
  return std::string(text.substr(b, e - b));
}

// Where to put a new file-scope declaration so that it sits before the definition starting at `decl_offset`:
// the start of its line, moved above a block comment that ends right before it (a kernel-doc header).
size_t declaration_anchor(std::string_view text, size_t decl_offset) {
  size_t at = line_start_of(text, decl_offset);
  size_t e = at;
  while (e > 0 && (text[e - 1] == '\n' || text[e - 1] == ' ' || text[e - 1] == '\t')) --e;
  if (e >= 2 && text.substr(e - 2, 2) == "*/") {
    size_t open = text.rfind("/*", e - 2);
    if (open != std::string_view::npos) {
      size_t ls = line_start_of(text, open);
      if (text.substr(ls, open - ls).find_first_not_of(" \t") == std::string_view::npos &&
          text.substr(open, e - open).find("*/") == e - 2 - open)
        at = ls;
    }
  }
  return at;
}

// True when the depth-0 statement starting at toks[k] is a declaration (a heuristic good for kernel code:
// a type keyword, or `T name` / `T *name` with T a typedef name).
bool starts_declaration(const std::vector<Token>& toks, size_t k, size_t end) {
  static const char* const kTypeWords[] = {"struct", "union", "enum", "const", "volatile", "unsigned", "signed",   "int",   "long",
                                           "short",  "char",  "bool", "_Bool", "void",     "static",   "register", "u8",    "u16",
                                           "u32",    "u64",   "s8",   "s16",   "s32",      "s64",      "size_t",   "float", "double"};
  static const char* const kStatementWords[] = {"return", "if",      "else", "for",   "while",    "do",    "switch",
                                                "case",   "default", "goto", "break", "continue", "sizeof"};
  if (k >= end || toks[k].kind != Tok::ident) return false;
  for (const char* w : kStatementWords)
    if (toks[k].text == w) return false;
  for (const char* w : kTypeWords)
    if (toks[k].text == w) return true;
  if (k + 1 < end && toks[k + 1].kind == Tok::ident) return true;
  if (k + 3 < end && is_punct(toks[k + 1], '*') && toks[k + 2].kind == Tok::ident &&
      (is_punct(toks[k + 3], ';') || is_punct(toks[k + 3], '=') || is_punct(toks[k + 3], ',') || is_punct(toks[k + 3], '[')))
    return true;
  return false;
}

size_t token_at(const std::vector<Token>& toks, size_t offset) {
  auto it = std::lower_bound(toks.begin(), toks.end(), offset, [](const Token& t, size_t o) { return t.offset < o; });
  return static_cast<size_t>(it - toks.begin());
}

}  // namespace

Result<Transform> option_transform(std::string_view text, std::string_view display_path) {
  RR_ASSIGN(const FunctionDefinition relax, find_relaxable(text, display_path));
  RR_ASSIGN(std::vector<Token> toks, Tokenizer(text, display_path).run());
  auto shape_error = [&](size_t at, std::string what) {
    return Error{fmt::format("{}:{}: {}", display_path, line_of(text, at), what), ExitCode::bad_input,
                 "this tree's intel-iommu driver has an unexpected shape; patch it by hand, or use the livepatch "
                 "(relax-rmrr build) or `--format kpatch`, which only rewrite device_rmrr_is_relaxable()"};
  };

  // Already there (a Proxmox kernel, or a tree patched before): refuse rather than add a second option.
  for (const auto& t : toks)
    if (is_ident(t, kOptionVariable))
      return Error{fmt::format("{}:{}: {} is already defined: this tree already has intel_iommu={}", display_path, line_of(text, t.offset),
                               kOptionVariable, kOptionName),
                   ExitCode::bad_input, "use the tree as it is, with intel_iommu=relax_rmrr on the kernel command line"};
  if (size_t at = text.find(fmt::format("\"{}\"", kOptionName)); at != std::string_view::npos)
    return Error{fmt::format("{}:{}: the string \"{}\" is already there: this tree already has an intel_iommu={} option", display_path,
                             line_of(text, at), kOptionName, kOptionName),
                 ExitCode::bad_input, "use the tree as it is, with intel_iommu=relax_rmrr on the kernel command line"};

  // intel_iommu_setup(): exactly one definition taking the option string.
  RR_ASSIGN(auto setups, find_function_definitions(text, kSetupFunction, display_path));
  if (setups.size() != 1)
    return Error{fmt::format("{}: {} definitions of {}(); expected exactly one (the intel_iommu= boot option parser)", display_path,
                             setups.size(), kSetupFunction),
                 ExitCode::bad_input, "the full kernel patch needs the intel-iommu driver of Linux 5.3 or later"};
  const FunctionDefinition& setup = setups.front();
  if (setup.parameters.size() != 1)
    return shape_error(setup.decl_offset,
                       fmt::format("{}() takes {} parameters; expected one (the option string)", kSetupFunction, setup.parameters.size()));
  const std::string& str = setup.parameters.front();

  // Its `if (!strncmp(str, "...", N)) {...} else if ... ` chain.
  const size_t body_begin = token_at(toks, setup.body_open) + 1;
  const size_t body_end = token_at(toks, setup.body_close);
  size_t k = body_begin;
  for (; k + 5 < body_end; ++k)
    if (is_ident(toks[k], "if") && is_punct(toks[k + 1], '(') && is_punct(toks[k + 2], '!') && is_ident(toks[k + 3], "strncmp") &&
        is_punct(toks[k + 4], '(') && is_ident(toks[k + 5], str))
      break;
  if (k + 5 >= body_end)
    return shape_error(setup.body_open,
                       fmt::format("{}() has no `if (!strncmp({}, \"...\", N))` chain to add \"{}\" to", kSetupFunction, str, kOptionName));
  size_t insert_at = 0;
  std::string indent;
  bool before_else = false;
  for (;;) {
    size_t close_paren = match_bracket(toks, k + 1);
    size_t open_brace = close_paren + 1;
    if (open_brace >= body_end || !is_punct(toks[open_brace], '{'))
      return shape_error(toks[k].offset, fmt::format("a branch of the {}() option chain has no braces", kSetupFunction));
    size_t close_brace = match_bracket(toks, open_brace);
    indent = indentation_at(text, toks[close_brace].offset);
    if (close_brace + 2 < body_end && is_ident(toks[close_brace + 1], "else") && is_ident(toks[close_brace + 2], "if")) {
      k = close_brace + 2;
      continue;
    }
    if (close_brace + 2 < body_end && is_ident(toks[close_brace + 1], "else") && is_punct(toks[close_brace + 2], '{')) {
      insert_at = toks[close_brace + 1].offset;  // before a final bare else ("Unknown option")
      before_else = true;
    } else {
      insert_at = toks[close_brace].offset + 1;  // after the last branch
    }
    break;
  }
  const std::string branch_body = fmt::format(
      "if (!strncmp({}, \"{}\", {})) {{\n"
      "{}\tpr_warn(\"{}: every RMRR is treated as relaxable: devices with RMRRs can be assigned to VMs, which can lead "
      "to instability or data loss\\n\");\n"
      "{}\t{} = true;\n"
      "{}}}",
      str, kOptionName, kOptionName.size(), indent, kOptionName, indent, kOptionVariable, indent);
  TextEdit branch{insert_at, "", before_else ? "else " + branch_body + " " : " else " + branch_body};

  // device_rmrr_is_relaxable(): the check goes after the leading declarations.
  const size_t rb = token_at(toks, relax.body_open) + 1;
  const size_t re = token_at(toks, relax.body_close);
  size_t after_decls = rb;  // first token after the last leading declaration
  while (starts_declaration(toks, after_decls, re)) {
    size_t j = after_decls;
    int depth = 0;
    for (; j < re; ++j) {
      if (is_punct(toks[j], '(') || is_punct(toks[j], '[') || is_punct(toks[j], '{')) ++depth;
      if (is_punct(toks[j], ')') || is_punct(toks[j], ']') || is_punct(toks[j], '}')) --depth;
      if (depth == 0 && is_punct(toks[j], ';')) break;
    }
    if (j >= re) break;
    after_decls = j + 1;
  }
  const size_t anchor_tok_end = after_decls == rb ? relax.body_open + 1 : toks[after_decls - 1].offset + 1;
  size_t eol = text.find('\n', anchor_tok_end);
  if (eol == std::string_view::npos ||
      text.substr(anchor_tok_end, eol - anchor_tok_end).find_first_not_of(" \t\r") != std::string_view::npos)
    return shape_error(anchor_tok_end, fmt::format("{}(): expected a line break after {}", kRelaxFunction,
                                                   after_decls == rb ? "the opening brace" : "its declarations"));
  const std::string check = fmt::format("\tif ({})\n\t\treturn true;\n", kOptionVariable);
  TextEdit relax_edit{eol + 1, "", after_decls == rb ? check + "\n" : "\n" + check};

  // The variable, before whichever of the two functions comes first.
  size_t decl_at = declaration_anchor(text, std::min(setup.decl_offset, relax.decl_offset));
  TextEdit decl{decl_at, "",
                fmt::format("/* intel_iommu={}: treat every RMRR as relaxable (device_rmrr_is_relaxable()) */\nstatic bool {};\n\n",
                            kOptionName, kOptionVariable)};

  Transform tr;
  tr.path = std::string(display_path);
  tr.function = std::string(kRelaxFunction);
  tr.line = relax.line;
  tr.edits = {decl, branch, relax_edit};
  std::sort(tr.edits.begin(), tr.edits.end(), [](const TextEdit& a, const TextEdit& b) { return a.offset < b.offset; });
  RR_CHECK(apply_edits(text, tr.edits));  // non-overlapping by construction; checked anyway
  return tr;
}

std::vector<TextEdit> preserve_line_count(std::vector<TextEdit> edits) {
  for (auto& e : edits) {
    auto old_lines = static_cast<size_t>(std::count(e.old_text.begin(), e.old_text.end(), '\n'));
    auto new_lines = static_cast<size_t>(std::count(e.new_text.begin(), e.new_text.end(), '\n'));
    if (new_lines >= old_lines) continue;
    const size_t pad = old_lines - new_lines;
    // The start of the last line (a final newline ends that line, it does not start another).
    size_t end = !e.new_text.empty() && e.new_text.back() == '\n' ? e.new_text.size() - 1 : e.new_text.size();
    size_t last_nl = end == 0 ? std::string::npos : e.new_text.rfind('\n', end - 1);
    size_t at = last_nl == std::string::npos ? 0 : last_nl + 1;
    std::string filler;
    if (pad >= 4) {
      // A comment that says why, as long as needed, indented like the line before it.
      size_t prev_begin = 0;
      if (at >= 2)
        if (size_t p = e.new_text.rfind('\n', at - 2); p != std::string::npos) prev_begin = p + 1;
      size_t ind_end = e.new_text.find_first_not_of(" \t", prev_begin);
      std::string ind = e.new_text.substr(prev_begin, (ind_end == std::string::npos ? at : ind_end) - prev_begin);
      filler = ind + "/*\n" + ind + " * relax-rmrr: padding that keeps the file's line count, so that __LINE__\n" + ind +
               " * in the code below is unchanged (kpatch-build, klp-build).\n";
      for (size_t i = 4; i < pad; ++i) filler += ind + " *\n";
      filler += ind + " */\n";
    } else {
      filler.assign(pad, '\n');
    }
    e.new_text.insert(at, filler);
  }
  return edits;
}

}  // namespace rr::source
