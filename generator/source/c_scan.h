// Just enough of C to find things in a kernel source file without a compiler: tokens outside comments, literals
// and preprocessor lines, matched brackets, and function definitions at file scope. The transforms
// (transform.h, option_transform.h) find their anchors with it, never by line numbers.
#pragma once

#include "common/result.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rr::source {

enum class Tok { ident, punct, number };

struct Token {
  Tok kind;
  size_t offset;  // bytes into the text
  size_t length;
  std::string_view text;  // views the text tokenized: keep it alive
};

// Identifiers, numbers and single punctuation characters. Error on an unterminated comment or literal;
// `path` names the file in messages.
Result<std::vector<Token>> tokenize(std::string_view text, std::string_view path);
bool is_punct(const Token& t, char c);
// The index of the bracket that closes toks[open] ('(', '[' or '{'), or toks.size() when none does.
size_t match_bracket(const std::vector<Token>& toks, size_t open);
// Error when braces, brackets or parentheses do not balance.
Status check_balanced(std::string_view text, const std::vector<Token>& toks, std::string_view path);
size_t line_of(std::string_view text, size_t offset);  // 1-based

// A function definition found in C source. Offsets are bytes into the text; lines are 1-based.
struct FunctionDefinition {
  std::string name;
  std::vector<std::string> specifiers;  // tokens before the name: {"static", "bool"}
  std::vector<std::string> parameters;  // parameter names in order ("dev"); empty for (void)
  size_t decl_offset = 0;  // first specifier token
  size_t body_open = 0;  // the '{'
  size_t body_close = 0;  // the matching '}'
  size_t line = 0;  // line of the name
};

// Every definition (not prototype, not call) of `name` at file scope. Error on text the tokenizer cannot
// follow (unterminated comment or literal, unbalanced braces or parentheses); `display_path` names the file.
Result<std::vector<FunctionDefinition>> find_function_definitions(std::string_view text, std::string_view name,
                                                                  std::string_view display_path);

}  // namespace rr::source
