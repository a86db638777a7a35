// The real test kernel's files, as tests/setup/kernel.sh describes them in kernel.env (shell syntax, values
// written with printf %q). Found at $RELAX_RMRR_KERNEL_ENV, else $RELAX_RMRR_KERNEL_DIR/kernel.env, else
// ${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/<kernel>/kernel.env. Single values can be overridden by
// environment variables (RELAX_RMRR_<KEY>, e.g. RELAX_RMRR_KBUILD). Missing inputs fail the tests.
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

struct KernelEnv {
  std::filesystem::path file;  // where it was looked for
  std::map<std::string, std::string> values;  // KEY -> value; empty when the file is missing

  std::string get(const std::string& key) const {
    auto it = values.find(key);
    return it == values.end() ? "" : it->second;
  }
  std::string& operator[](const std::string& key) { return values[key]; }
};

inline KernelEnv read_kernel_env(const std::string& kernel = "debian-6.1") {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  KernelEnv k;
  if (!env("RELAX_RMRR_KERNEL_ENV").empty()) k.file = env("RELAX_RMRR_KERNEL_ENV");
  else if (!env("RELAX_RMRR_KERNEL_DIR").empty()) k.file = std::filesystem::path(env("RELAX_RMRR_KERNEL_DIR")) / "kernel.env";
  else
    k.file = std::filesystem::path(env("RELAX_RMRR_CACHE").empty() ? "/var/cache/relax-rmrr" : env("RELAX_RMRR_CACHE")) / "kernels" /
             kernel / "kernel.env";
  if (auto text = read_file_text(k.file)) {
    for (const auto& raw : split_lines(*text)) {
      std::string line = trim(raw);
      if (starts_with(line, "export ")) line = trim(line.substr(7));
      auto eq = line.find('=');
      if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
      k.values[line.substr(0, eq)] = shell_unquote(std::string_view(line).substr(eq + 1));
    }
  }
  for (const char* key : {"VMLINUZ", "CONFIG", "KBUILD", "KALLSYMS", "SOURCE_TARBALL"}) {
    std::string v = env((std::string("RELAX_RMRR_") + key).c_str());
    if (!v.empty()) k.values[key] = v;
  }
  if (std::string v = env("RELAX_RMRR_KCONFIG"); !v.empty()) k.values["CONFIG"] = v;
  return k;
}

}  // namespace rr::test
