#include "analysis/kbuild.h"

#include <algorithm>
#include <cstdio>
#include <memory>

namespace rr::analysis {

namespace {

bool is_version_token(std::string_view t) {
  // N.N or N.N.N...
  int dots = 0;
  bool digit_before = false;
  for (char c : t) {
    if (c >= '0' && c <= '9') {
      digit_before = true;
    } else if (c == '.' && digit_before) {
      ++dots;
      digit_before = false;
    } else {
      return false;
    }
  }
  return dots >= 1 && digit_before;
}

// Tokens of `s` outside parentheses.
std::vector<std::string> top_level_tokens(std::string_view s) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : s) {
    if (c == '(') {
      if (depth == 0 && !cur.empty()) out.push_back(std::exchange(cur, {}));
      ++depth;
    } else if (c == ')') {
      if (depth > 0) --depth;
    } else if (depth == 0 && (c == ' ' || c == '\t')) {
      if (!cur.empty()) out.push_back(std::exchange(cur, {}));
    } else if (depth == 0) {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// The content of the parenthesised group starting at s[at] == '(', and the index after it.
std::optional<std::pair<std::string_view, size_t>> paren_group(std::string_view s, size_t at) {
  if (at >= s.size() || s[at] != '(') return std::nullopt;
  int depth = 0;
  for (size_t i = at; i < s.size(); ++i) {
    if (s[i] == '(') ++depth;
    else if (s[i] == ')' && --depth == 0) return std::make_pair(s.substr(at + 1, i - at - 1), i + 1);
  }
  return std::nullopt;
}

size_t skip_spaces(std::string_view s, size_t at) {
  while (at < s.size() && s[at] == ' ') ++at;
  return at;
}

std::string major_of(std::string_view v) { return std::string(v.substr(0, v.find('.'))); }

}  // namespace

std::optional<CompilerInfo> parse_compiler_text(std::string_view text) {
  std::string t = trim(text);
  for (std::string_view linker : {", GNU ld", ", LLD", ", ld "}) {
    size_t at = t.find(linker);
    if (at != std::string::npos) t.resize(at);
  }
  auto tokens = top_level_tokens(t);
  if (tokens.empty()) return std::nullopt;
  CompilerInfo c;
  c.text = t;
  const std::string& first = tokens.front();
  if (first.find("clang") != std::string::npos || t.find("clang version") != std::string::npos) {
    c.family = "clang";
    c.command = first.find("clang") != std::string::npos ? first : "clang";
  } else if (first.find("gcc") != std::string::npos || first.find("g++") != std::string::npos) {
    c.family = "gcc";
    c.command = first;
  } else {
    return std::nullopt;
  }
  for (size_t i = 1; i < tokens.size(); ++i)
    if (is_version_token(tokens[i])) {
      c.version = tokens[i];
      break;
    }
  if (c.version.empty()) return std::nullopt;
  return c;
}

std::string_view match_name(CompilerMatch m) {
  switch (m) {
    case CompilerMatch::exact: return "exact";
    case CompilerMatch::same_major: return "same-major";
    case CompilerMatch::different: return "different";
    case CompilerMatch::unknown: return "unknown";
  }
  return "?";
}

CompilerMatch compare_compilers(const std::optional<CompilerInfo>& kernel, const std::optional<CompilerInfo>& local) {
  if (!kernel || !local) return CompilerMatch::unknown;
  if (kernel->family != local->family) return CompilerMatch::different;
  if (kernel->version == local->version) return CompilerMatch::exact;
  if (major_of(kernel->version) == major_of(local->version)) return CompilerMatch::same_major;
  return CompilerMatch::different;
}

std::optional<CompilerInfo> local_compiler(const std::string& command) {
  if (command.empty() || !std::all_of(command.begin(), command.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
               ch == '+' || ch == '/';
      }))
    return std::nullopt;
  struct Closer {
    void operator()(FILE* f) const { pclose(f); }
  };
  std::unique_ptr<FILE, Closer> p(popen((command + " --version 2>/dev/null").c_str(), "r"));
  if (!p) return std::nullopt;
  char buf[512];
  if (!std::fgets(buf, sizeof buf, p.get())) return std::nullopt;
  auto c = parse_compiler_text(buf);
  if (c) c->command = command;
  return c;
}

std::optional<Banner> parse_banner(std::string_view line) {
  constexpr std::string_view kPrefix = "Linux version ";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  size_t at = kPrefix.size();
  size_t sp = line.find(' ', at);
  if (sp == std::string_view::npos || sp == at) return std::nullopt;
  Banner b;
  b.text = trim(line);
  b.release = std::string(line.substr(at, sp - at));
  if (b.release.empty() || b.release[0] < '0' || b.release[0] > '9') return std::nullopt;
  auto host = paren_group(line, skip_spaces(line, sp));
  if (!host) return b;
  auto cc = paren_group(line, skip_spaces(line, host->second));
  if (cc) {
    auto info = parse_compiler_text(cc->first);
    b.compiler = info ? info->text : trim(cc->first);
  }
  return b;
}

std::optional<Banner> find_banner(ByteView bytes) {
  std::string_view all(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  for (size_t at = all.find("Linux version "); at != std::string_view::npos; at = all.find("Linux version ", at + 1)) {
    size_t end = all.find_first_of(std::string_view("\n\0", 2), at);
    if (end == std::string_view::npos) end = all.size();
    if (end - at > 1024) continue;
    auto b = parse_banner(all.substr(at, end - at));
    if (b && !b->compiler.empty()) return b;
  }
  return std::nullopt;
}

const Export* ModuleSymvers::find(std::string_view name) const {
  auto it = exports_.find(std::string(name));
  return it == exports_.end() ? nullptr : &it->second;
}

Result<ModuleSymvers> parse_module_symvers(std::string_view text, const std::string& origin) {
  ModuleSymvers out;
  size_t line_no = 0;
  for (const auto& line : split_lines(text)) {
    ++line_no;
    if (trim(line).empty()) continue;
    std::vector<std::string> f;
    size_t start = 0;
    for (;;) {
      size_t tab = line.find('\t', start);
      f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (f.size() < 4 || !starts_with(f[0], "0x") || f[1].empty())
      return make_error(ExitCode::bad_input, "{} line {}: expected 'crc<TAB>symbol<TAB>module<TAB>export type', got '{}'", origin, line_no,
                        line.substr(0, 80));
    Export e;
    if (f.size() >= 5 && starts_with(f[4], "EXPORT_") && !starts_with(f[3], "EXPORT_")) {
      // 5.4 - 5.9: crc, symbol, namespace, module, kind
      e.ns = f[2];
      e.module = f[3];
      e.kind = f[4];
    } else {
      e.module = f[2];
      e.kind = f[3];
      if (f.size() >= 5) e.ns = f[4];
    }
    out.add(f[1], std::move(e));
  }
  return out;
}

Result<ModuleSymvers> read_module_symvers(const std::filesystem::path& path) {
  RR_ASSIGN(std::string text, read_file_text(path, size_t{256} << 20));
  return parse_module_symvers(text, path.string());
}

std::filesystem::path default_kbuild_dir(std::string_view release, const std::filesystem::path& root) {
  return root / "lib/modules" / std::string(release) / "build";
}

Result<KbuildTree> inspect_kbuild(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return make_error(ExitCode::missing, "no kernel build tree at {}", dir.string());
  KbuildTree t;
  t.dir = dir;
  t.has_makefile = std::filesystem::exists(dir / "Makefile", ec);
  t.has_config = std::filesystem::exists(dir / ".config", ec);
  t.has_symvers = std::filesystem::exists(dir / "Module.symvers", ec);
  if (!t.has_makefile) return make_error(ExitCode::missing, "{} is not a kernel build tree (no Makefile)", dir.string());
  auto define_value = [](const std::string& text, std::string_view name) -> std::optional<std::string> {
    for (const auto& line : split_lines(text)) {
      auto w = split_ws(line);
      if (w.size() >= 3 && w[0] == "#define" && w[1] == name) {
        size_t q1 = line.find('"'), q2 = line.rfind('"');
        if (q1 != std::string::npos && q2 > q1) return line.substr(q1 + 1, q2 - q1 - 1);
      }
    }
    return std::nullopt;
  };
  if (auto uts = read_file_text(dir / "include/generated/utsrelease.h", 1 << 16)) t.release = define_value(*uts, "UTS_RELEASE");
  if (!t.release)
    if (auto r = read_attribute(dir / "include/config/kernel.release"); r && !r->empty()) t.release = *r;
  if (auto ch = read_file_text(dir / "include/generated/compile.h", 1 << 16)) {
    if (auto cc = define_value(*ch, "LINUX_COMPILER")) {
      auto info = parse_compiler_text(*cc);
      t.compiler = info ? info->text : *cc;
    }
  }
  return t;
}

}  // namespace rr::analysis
