#include "source/c_scan.h"

#include <algorithm>

namespace rr::source {

namespace {

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

}  // namespace

size_t line_of(std::string_view text, size_t offset) {
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(std::min(offset, text.size())), '\n'));
}

namespace {

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

}  // namespace

Result<std::vector<Token>> tokenize(std::string_view text, std::string_view path) { return Tokenizer(text, path).run(); }

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

namespace {

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
  RR_ASSIGN(std::vector<Token> toks, tokenize(text, display_path));
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

}  // namespace rr::source
