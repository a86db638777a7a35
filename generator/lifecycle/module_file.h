// What a livepatch .ko file says about itself, read without loading it: its .modinfo fields (name, vermagic,
// livepatch, relax_rmrr_*), its GNU build-id (the same bytes /sys/module/<name>/notes/.note.gnu.build-id
// shows once loaded, so a loaded module can be matched to a file), and whether a signature is appended.
#pragma once

#include "common/file.h"
#include "common/result.h"

#include <filesystem>
#include <map>
#include <set>
#include <string>

namespace rr::lifecycle {

// The trailer scripts/sign-file appends after the PKCS#7 signature and its 12-byte descriptor.
inline constexpr std::string_view kModuleSignatureTrailer = "~Module signature appended~\n";

struct ModuleFile {
  std::filesystem::path path;
  std::string name;  // modinfo name=, else the file name without .ko, '-' -> '_'
  std::map<std::string, std::string> modinfo;  // first value of each key
  std::set<std::string> parameters;  // every parameter the module declares (modinfo parm= and parmtype=)
  std::string vermagic;  // "6.1.0-56-amd64 SMP preempt mod_unload modversions "
  std::string vermagic_release;  // its first word: the kernel release the module was built for
  std::string build_id;  // lower-case hex, empty when the module has no .note.gnu.build-id
  bool is_livepatch = false;  // modinfo livepatch=Y
  bool is_signed = false;  // ends with kModuleSignatureTrailer
  bool compressed = false;  // the file is .ko.xz/.zst/.gz: image is the decompressed module
  Bytes image;  // the ELF bytes handed to the kernel (decompressed, signature kept)

  std::string field(const std::string& key) const {
    auto it = modinfo.find(key);
    return it == modinfo.end() ? std::string() : it->second;
  }
};

// Reads FILE (.ko, or .ko.xz/.ko.zst/.ko.gz which are decompressed). Errors: missing (3), not an ELF
// relocatable / corrupt (2). Not refusing non-livepatch modules: callers decide.
Result<ModuleFile> read_module_file(const std::filesystem::path& file);

// Same, from bytes already in memory (tests); `origin` names them in messages.
Result<ModuleFile> parse_module_image(Bytes image, const std::filesystem::path& origin);

}  // namespace rr::lifecycle
