// The `build` stage (compile part): the original and the relaxed intel-iommu source compiled side by side
// through the target kernel's kbuild tree (a headers package is enough), as objects of an external kbuild
// directory, with -ffunction-sections -fdata-sections so that every function has its own .text.<name>.
//
// By default each variant is compiled like the built-in driver it replaces (Kbuild `obj-y`: no -DMODULE,
// objtool run as for vmlinux objects) and `__FILE__` is mapped to the in-tree path
// (drivers/iommu/intel/iommu.c), so that WARN()s and the like in replaced functions read as in the
// running kernel and the two variants differ only where the transform changed something.
#pragma once

#include "common/json.h"
#include "common/result.h"
#include "source/source.h"
#include "source/transform.h"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rr::compile {

// The compiler the target kernel was built with, from CONFIG_CC_VERSION_TEXT of the kbuild tree.
struct TargetCompiler {
  std::string version_text;  // "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"
  std::string program;  // what to pass as CC= ("gcc-12"); empty: kbuild's default
  bool found = false;  // program is on PATH
};
Result<TargetCompiler> target_compiler(const std::filesystem::path& kbuild);

struct CompileOptions {
  std::filesystem::path kbuild;  // /lib/modules/<release>/build
  std::filesystem::path work_dir;  // the caller's (keep it for --keep-tmp); <work_dir>/<variant>/ is created
  std::string source_relative;  // "drivers/iommu/intel/iommu.c": object name and __FILE__ mapping
  std::vector<std::filesystem::path> include_dirs;  // the driver's private include directories
  std::string cc;  // empty: from target_compiler(); "-" : never pass CC=
  bool as_module = false;  // compile with obj-m (-DMODULE) instead of like the built-in driver
  std::vector<std::string> extra_cflags;
  bool parallel = true;  // both variants at once (2 make processes)
  // Where kbuild's compile commands are remembered (compile/command_cache.h); empty: always run make.
  std::filesystem::path command_cache_dir;
  // compile_source() refuses a source whose Makefile version differs from the kbuild tree's: a livepatch
  // built from other code than the running kernel's would replace functions with foreign ones.
  bool allow_version_mismatch = false;
};

struct CompiledObject {
  std::string variant;  // "original" / "patched"
  std::filesystem::path directory;  // <work_dir>/<variant>
  std::filesystem::path source;  // the .c file compiled
  std::filesystem::path object;  // the .o
  std::filesystem::path cmd_file;  // kbuild's .<obj>.o.cmd
  std::string compiler_command;  // the exact compiler command line kbuild ran
  std::string kbuild_command;  // the whole recorded command (compiler; objtool ...)
  std::vector<std::string> make_argv;  // how make was invoked
  std::string make_output;  // stdout+stderr of make (or of the recorded command), for logs
  bool replayed = false;  // kbuild's recorded command ran directly, without make
  double seconds = 0;
};

struct CompileResult {
  CompiledObject original;
  CompiledObject patched;
  TargetCompiler compiler;
  std::string cc;  // CC= passed to make, empty when none
  double seconds = 0;  // wall time for both
};

// kbuild's top Makefile and the Makefiles it includes (Debian's per-flavour headers include the common ones),
// in order, at most four, each read once; `visit(path, text)` returns true to stop.
void visit_kbuild_makefiles(const std::filesystem::path& kbuild,
                            const std::function<bool(const std::filesystem::path&, std::string_view)>& visit);

// VERSION/PATCHLEVEL/SUBLEVEL of a kbuild tree from its Makefile, following `include` lines. nullopt when not found.
std::optional<source::KernelVersion> kbuild_version(const std::filesystem::path& kbuild);

// What to pass make as CC= for a compiler name ("" for kbuild's default: none given, "-", or plain "gcc").
std::string make_cc(std::string_view cc);

// The environment of every make relax-rmrr runs in a kbuild tree: a make above us (ninja, a jobserver) must not
// leak its flags into kbuild, and messages are parsed in the C locale.
std::vector<std::pair<std::string, std::optional<std::string>>> kbuild_env();

// Compiles one variant. Failure is an Error with the compiler's last lines and a hint.
Result<CompiledObject> compile_variant(const CompileOptions& options, std::string_view variant, std::string_view source_text);

// Compiles the original and patched texts (in parallel unless options.parallel is false).
Result<CompileResult> compile_pair(const CompileOptions& options, std::string_view original_text, std::string_view patched_text);

// The whole stage for a located source: reads the driver, applies the transform, compiles both.
// options.source_relative and include_dirs are filled from the tree when empty.
Result<CompileResult> compile_source(const source::SourceTree& tree, const source::Transform& transform, CompileOptions options);

// For --json summaries: objects, compiler command lines, CC, timings.
Json to_json(const CompileResult& result);

// Parses a kbuild .cmd file: the recorded command and its compiler part (before "; objtool ...").
struct KbuildCommand {
  std::string full;
  std::string compiler;
};
Result<KbuildCommand> parse_cmd_file(std::string_view text, std::string_view what);

// Where kbuild ran a recorded compiler command, and how it named the object and the source: by absolute paths,
// run in the kbuild tree (external modules up to 6.12), or relative to the make's M= directory (6.13+): the
// variant's own directory, or the work directory above it when both variants were made by one make. nullopt
// when the command names neither.
struct CommandPaths {
  std::string object, source;  // the words as the command has them
  std::filesystem::path cwd;  // where it must run for them to mean `object` and `source`
};
std::optional<CommandPaths> command_paths(std::string_view command, const std::filesystem::path& object,
                                          const std::filesystem::path& source, const std::filesystem::path& kbuild);

}  // namespace rr::compile
