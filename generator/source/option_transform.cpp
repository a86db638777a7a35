#include "source/option_transform.h"

#include "source/c_scan.h"

#include <algorithm>

namespace rr::source {

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
  RR_ASSIGN(const FunctionDefinition relax, find_relaxable_definition(text, display_path));
  RR_ASSIGN(std::vector<Token> toks, tokenize(text, display_path));
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

}  // namespace rr::source
