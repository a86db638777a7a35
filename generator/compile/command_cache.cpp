#include "compile/command_cache.h"

#include "common/atomic_file.h"
#include "common/file.h"
#include "common/sha256.h"
#include "common/subprocess.h"
#include "compile/compile.h"

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cstdlib>

extern char** environ;

namespace fs = std::filesystem;

namespace rr::compile {

namespace {

constexpr std::string_view kEntryHeader = "# relax-rmrr kbuild command, v2\n";
constexpr std::string_view kDirNames[] = {"kbuild", "variant", "work"};

// kbuild's files that shape a compile command, relative to the kbuild tree and to every directory whose
// Makefile it includes (Debian: the per-flavour tree includes ../linux-headers-R-common/Makefile).
constexpr const char* kShapingFiles[] = {
    "Makefile",
    ".config",
    "include/config/auto.conf",
    "include/generated/autoconf.h",
    "scripts/Kbuild.include",
    "scripts/Makefile.build",
    "scripts/Makefile.lib",
    "scripts/Makefile.compiler",
    "scripts/Makefile.extrawarn",
    "scripts/Makefile.gcc-plugins",
    "scripts/Makefile.kcov",
    "scripts/Makefile.kasan",
    "scripts/Makefile.ubsan",
    "arch/x86/Makefile",
    "tools/objtool/objtool",
};

// Environment variables kbuild reads (make imports the environment as variables).
bool kbuild_reads(std::string_view name) {
  for (std::string_view exact : {"PATH", "ARCH", "SUBARCH", "CROSS_COMPILE", "LLVM", "LLVM_IAS", "KCFLAGS", "KCPPFLAGS", "KAFLAGS",
                                 "KRUSTFLAGS", "CFLAGS_MODULE", "KBUILD_EXTMOD"})
    if (name == exact) return true;
  return starts_with(name, "KBUILD_") || starts_with(name, "CONFIG_");
}

}  // namespace

std::string command_key(const CommandKeyInputs& in) {
  std::string text;
  text += "relax-rmrr kbuild command key v1\n";
  std::error_code ec;
  fs::path kbuild = fs::weakly_canonical(fs::absolute(in.kbuild), ec);
  if (ec) kbuild = fs::absolute(in.kbuild);
  text += "kbuild " + kbuild.string() + "\n";
  // Relative to the kbuild tree and to the directory of every Makefile it includes.
  std::vector<fs::path> roots = {kbuild};
  visit_kbuild_makefiles(kbuild, [&](const fs::path& makefile, std::string_view) {
    if (std::find(roots.begin(), roots.end(), makefile.parent_path()) == roots.end()) roots.push_back(makefile.parent_path());
    return false;
  });
  for (const auto& root : roots)
    for (const char* f : kShapingFiles) {
      fs::path p = root / f;
      text += fmt::format("file {} {}\n", p.string(), file_identity(p).value_or("absent"));
    }
  std::string cc = in.cc.empty() || in.cc == "-" ? "gcc" : in.cc;
  auto cc_path = proc::find_program(cc);
  fs::path cc_real = cc_path ? fs::weakly_canonical(*cc_path, ec) : fs::path();
  text += fmt::format("cc {} {} {}\n", in.cc, cc_real.string(), cc_path ? file_identity(cc_real).value_or("absent") : "absent");
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (kbuild_reads(kv.substr(0, kv.find('=')))) env.emplace_back(kv);
  }
  std::sort(env.begin(), env.end());
  for (const auto& e : env) text += "env " + e + "\n";
  text += "object " + in.object + "\n";
  text += "kbuild-file\n" + in.kbuild_file;
  Sha256 h;
  h.update(text.data(), text.size());
  return h.hex();
}

std::string unescape_make(std::string_view recorded) {
  std::string out;
  out.reserve(recorded.size());
  for (size_t i = 0; i < recorded.size(); ++i) {
    char c = recorded[i];
    if (c == '$' && i + 1 < recorded.size() && recorded[i + 1] == '$') {
      out.push_back('$');
      ++i;
    } else if (c == '\\' && i + 1 < recorded.size() && recorded[i + 1] == '#') {
      out.push_back('#');
      ++i;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

namespace {
std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(text);
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t at = text.find(from, pos);
    if (at == std::string_view::npos) break;
    out.append(text.substr(pos, at - pos));
    out.append(to);
    pos = at + from.size();
  }
  out.append(text.substr(pos));
  return out;
}
}  // namespace

fs::path command_cwd(CommandDir dir, const fs::path& kbuild, const fs::path& variant_dir) {
  switch (dir) {
    case CommandDir::variant: return variant_dir;
    case CommandDir::work: return variant_dir.parent_path();
    case CommandDir::kbuild: break;
  }
  return fs::absolute(kbuild);
}

std::string with_placeholder(std::string_view text, const fs::path& variant_dir) {
  return replace_all(text, variant_dir.string(), kVariantDirPlaceholder);
}

std::optional<RecordedCommand> to_template(std::string_view command, const fs::path& variant_dir, const fs::path& work_dir,
                                           CommandDir dir) {
  const std::string d = variant_dir.string();
  if (d.empty() || command.find(d) == std::string_view::npos) return std::nullopt;
  std::string templ = with_placeholder(command, variant_dir);
  if (!work_dir.empty() && templ.find(work_dir.string()) != std::string::npos) return std::nullopt;
  if (templ.find('\n') != std::string::npos) return std::nullopt;
  return RecordedCommand{templ, dir};
}

std::string from_template(std::string_view templ, const fs::path& variant_dir) {
  return replace_all(templ, kVariantDirPlaceholder, variant_dir.string());
}

namespace {
// An entry is a shell command relax-rmrr runs (often as root): trusted only when this user owns it and its
// directory and nobody else can write either (a cache under a shared /tmp must not run another user's command).
bool only_ours(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && st.st_uid == ::geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}
}  // namespace

std::optional<RecordedCommand> lookup_command(const fs::path& dir, const std::string& key) {
  if (dir.empty() || !only_ours(dir) || !only_ours(dir / key)) return std::nullopt;
  auto text = read_file_text(dir / key, 1u << 20);
  if (!text || !starts_with(*text, kEntryHeader)) return std::nullopt;
  auto lines = split_lines(std::string_view(*text).substr(kEntryHeader.size()));
  if (lines.size() < 2 || !starts_with(lines[0], "cwd ")) return std::nullopt;
  RecordedCommand c;
  std::string_view cwd = std::string_view(lines[0]).substr(4);
  size_t i = 0;
  while (i < std::size(kDirNames) && kDirNames[i] != cwd) ++i;
  if (i == std::size(kDirNames)) return std::nullopt;
  c.dir = static_cast<CommandDir>(i);
  c.templ = trim(lines[1]);
  for (size_t k = 2; k < lines.size(); ++k)
    if (!trim(lines[k]).empty()) return std::nullopt;
  if (c.templ.empty() || c.templ.find(kVariantDirPlaceholder) == std::string::npos) return std::nullopt;
  return c;
}

Status remember_command(const fs::path& dir, const std::string& key, const RecordedCommand& command) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ExitCode::environment, "cannot create {}: {}", dir.string(), ec.message());
  std::string text = fmt::format("{}cwd {}\n{}\n", kEntryHeader, kDirNames[static_cast<size_t>(command.dir)], command.templ);
  return write_file_atomically(dir / key, text);
}

void forget_command(const fs::path& dir, const std::string& key) {
  std::error_code ec;
  if (!dir.empty()) fs::remove(dir / key, ec);
}

}  // namespace rr::compile
