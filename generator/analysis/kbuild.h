// The build side of a kernel: its kbuild tree (/lib/modules/<release>/build), Module.symvers, and the compiler
// that built it (from the image's "Linux version" banner, compile.h or CONFIG_CC_VERSION_TEXT) vs the local one.
#pragma once

#include "common/file.h"
#include "common/result.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rr::analysis {

struct CompilerInfo {
  std::string text;  // as found, e.g. "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
  std::string family;  // "gcc" or "clang" (empty when unknown)
  std::string version;  // "12.2.0"
  std::string command;  // the program to run for it: "gcc-12", "gcc", "clang-16"
};
// From a compiler identification line: `gcc --version`'s first line, CONFIG_CC_VERSION_TEXT, LINUX_COMPILER
// (the ", GNU ld ..." part is dropped). nullopt when it names no gcc or clang.
std::optional<CompilerInfo> parse_compiler_text(std::string_view text);

enum class CompilerMatch { exact, same_major, different, unknown };
std::string_view match_name(CompilerMatch m);
CompilerMatch compare_compilers(const std::optional<CompilerInfo>& kernel, const std::optional<CompilerInfo>& local);
// Runs `<command> --version` and parses its first line; nullopt when it cannot run.
std::optional<CompilerInfo> local_compiler(const std::string& command = "gcc");

struct Banner {
  std::string text;  // the whole line
  std::string release;  // "6.1.0-56-amd64"
  std::string compiler;  // "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
};
// "Linux version <release> (<user@host>) (<compiler>, <linker>) #..." — also the older
// "Linux version <release> (<user@host>) (gcc version 10.2.1 ...) #..." form.
std::optional<Banner> parse_banner(std::string_view line);
// Finds the banner in an image (.rodata of a vmlinux, or any bytes).
std::optional<Banner> find_banner(ByteView bytes);

struct Export {
  std::string module;  // "vmlinux" or a module path
  std::string kind;  // EXPORT_SYMBOL, EXPORT_SYMBOL_GPL, ...
  std::string ns;  // symbol namespace, may be empty
};
class ModuleSymvers {
 public:
  const Export* find(std::string_view name) const;
  bool exported(std::string_view name) const { return find(name) != nullptr; }
  size_t size() const { return exports_.size(); }
  void add(std::string name, Export e) { exports_.insert_or_assign(std::move(name), std::move(e)); }

 private:
  std::unordered_map<std::string, Export> exports_;
};
// Tab-separated "crc<TAB>name<TAB>module<TAB>kind[<TAB>namespace]" lines.
Result<ModuleSymvers> parse_module_symvers(std::string_view text, const std::string& origin = "Module.symvers");
Result<ModuleSymvers> read_module_symvers(const std::filesystem::path& path);

struct KbuildTree {
  std::filesystem::path dir;
  bool has_makefile = false;
  bool has_config = false;  // <dir>/.config
  bool has_symvers = false;  // <dir>/Module.symvers
  std::optional<std::string> release;  // include/config/kernel.release or utsrelease.h
  std::optional<std::string> compiler;  // LINUX_COMPILER from include/generated/compile.h, else CONFIG_CC_VERSION_TEXT
};
std::filesystem::path default_kbuild_dir(std::string_view release, const std::filesystem::path& root = "/");
// Error (missing) when dir does not exist or has no Makefile.
Result<KbuildTree> inspect_kbuild(const std::filesystem::path& dir);

}  // namespace rr::analysis
