// The real test kernel's files, as tests/setup/kernel.sh describes them in kernel.env (shell syntax,
// values written with printf %q). Found at $RELAX_RMRR_KERNEL_ENV, else
// ${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/<kernel>/kernel.env. Missing inputs fail the test.
#pragma once

#include "common/file.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

namespace rr::test {

inline std::string kernel_env_setup_hint(const std::string& kernel) {
  return "run `tests/setup/kernel.sh " + kernel + "` first (it fetches the kernel and writes kernel.env)";
}

// Undoes printf %q quoting: '...' spans and backslash escapes.
inline std::string shell_unquote(std::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '\'') {
      size_t end = v.find('\'', i + 1);
      if (end == std::string_view::npos) end = v.size();
      out.append(v.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '\\' && i + 1 < v.size()) {
      out += v[++i];
    } else {
      out += c;
    }
  }
  return out;
}

// KEY -> value; empty when the file is missing.
inline std::map<std::string, std::string> read_kernel_env(const std::string& kernel = "debian-6.1") {
  std::filesystem::path file;
  if (const char* e = std::getenv("RELAX_RMRR_KERNEL_ENV")) file = e;
  else {
    const char* cache = std::getenv("RELAX_RMRR_CACHE");
    file = std::filesystem::path(cache ? cache : "/var/cache/relax-rmrr") / "kernels" / kernel / "kernel.env";
  }
  std::map<std::string, std::string> out;
  auto text = read_file_text(file);
  if (!text) return out;
  for (const auto& line : split_lines(*text)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    out[line.substr(0, eq)] = shell_unquote(std::string_view(line).substr(eq + 1));
  }
  return out;
}

}  // namespace rr::test
