// kbuild's compile command, remembered per kbuild tree. Every `make -C <kbuild> M=...` first reads
// kbuild's Makefiles and runs some thirty compiler probes (cc-option and friends): about half a second, a
// quarter of compiling intel/iommu.c, paid again by every make run. The command kbuild ran for a variant does
// not depend on the source text, only on the kbuild tree, the compiler, the environment and our Kbuild file, so
// the first build records it (the variant directory replaced by a placeholder) under a key naming all of
// those, and later builds run it directly: the same command line make would run, in the same directory.
//
// Anything the key misses shows up as a different object, and verify (verify/verify.h) compares the original
// object with the kernel's own code before anything is written: a stale command is refused, not shipped.
#pragma once

#include "common/result.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace rr::compile {

// What decides kbuild's command line for one object.
struct CommandKeyInputs {
  std::filesystem::path kbuild;  // the target's kbuild tree
  std::string cc;  // CC= given to make ("" or "-": kbuild's default)
  std::string kbuild_file;  // our Kbuild file, the variant directory replaced by kVariantDirPlaceholder
  std::string object;  // "iommu.o"
};

inline constexpr std::string_view kVariantDirPlaceholder = "@RELAX_RMRR_VARIANT_DIR@";

// A hex SHA-256 over the inputs, the identity (size, mtime, inode) of kbuild's Makefiles, configuration and
// tools, the compiler found on PATH, and the environment variables kbuild reads.
std::string command_key(const CommandKeyInputs& inputs);

// The recorded command text of a kbuild .cmd file as the shell runs it: kbuild escapes '$' as "$$" and '#' as
// "\#" for make.
std::string unescape_make(std::string_view recorded);

// Where a recorded command runs (compile::command_paths): the kbuild tree (absolute paths, kbuild up to 6.12), or
// the M= directory of the make that ran it (6.13+): the variant's directory, or the work directory above it.
enum class CommandDir { kbuild, variant, work };
std::filesystem::path command_cwd(CommandDir dir, const std::filesystem::path& kbuild, const std::filesystem::path& variant_dir);

struct RecordedCommand {
  std::string templ;  // the command, the variant directory replaced by kVariantDirPlaceholder
  CommandDir dir = CommandDir::kbuild;
};

// `text` with every occurrence of `variant_dir` replaced by kVariantDirPlaceholder (the key's Kbuild file, templates).
std::string with_placeholder(std::string_view text, const std::filesystem::path& variant_dir);

// `command` with every occurrence of `variant_dir` replaced by the placeholder; nullopt when the command does not
// name the directory, or still names `work_dir` elsewhere (then it is not a function of the directory alone).
std::optional<RecordedCommand> to_template(std::string_view command, const std::filesystem::path& variant_dir,
                                           const std::filesystem::path& work_dir, CommandDir dir);
std::string from_template(std::string_view templ, const std::filesystem::path& variant_dir);

// The cache: one file per key in `dir`. lookup() is nullopt on a miss, an unreadable entry, or one (or a
// directory) that another user owns or can write; remember() writes atomically (a concurrent build sees the old
// entry or the new one); forget() drops an entry that failed.
std::optional<RecordedCommand> lookup_command(const std::filesystem::path& dir, const std::string& key);
Status remember_command(const std::filesystem::path& dir, const std::string& key, const RecordedCommand& command);
void forget_command(const std::filesystem::path& dir, const std::string& key);

}  // namespace rr::compile
