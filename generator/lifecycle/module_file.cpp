#include "lifecycle/module_file.h"

#include "analysis/bzimage.h"
#include "common/names.h"
#include "elf/elf_file.h"

#include <elf.h>

#include <fmt/format.h>

namespace fs = std::filesystem;

namespace rr::lifecycle {

Result<ModuleFile> parse_module_image(Bytes image, const fs::path& origin) {
  ModuleFile m;
  m.path = origin;
  std::string_view all(reinterpret_cast<const char*>(image.data()), image.size());
  m.is_signed =
      all.size() >= kModuleSignatureTrailer.size() && all.substr(all.size() - kModuleSignatureTrailer.size()) == kModuleSignatureTrailer;
  auto elf = elf::ElfFile::from_bytes(image, origin.string());
  if (!elf) return elf.error().with_context(fmt::format("{} is not a kernel module", origin.string()));
  if (elf->file_type() != ET_REL)
    return make_error(ExitCode::bad_input, "{} is not a kernel module (not an ELF relocatable object)", origin.string());
  auto info = elf->section_data(".modinfo");
  if (!info) return make_error(ExitCode::bad_input, "{} is not a kernel module: it has no .modinfo section", origin.string());
  std::string_view text(reinterpret_cast<const char*>(info->data()), info->size());
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\0', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view entry = text.substr(at, end - at);
    size_t eq = entry.find('=');
    if (eq != std::string_view::npos) {
      std::string_view key = entry.substr(0, eq), value = entry.substr(eq + 1);
      m.modinfo.emplace(std::string(key), std::string(value));
      if ((key == "parm" || key == "parmtype") && value.find(':') != std::string_view::npos)
        m.parameters.emplace(value.substr(0, value.find(':')));
    }
    at = end + 1;
  }
  m.vermagic = m.field("vermagic");
  auto words = split_ws(m.vermagic);
  if (!words.empty()) m.vermagic_release = words.front();
  m.is_livepatch = m.field("livepatch") == "Y";
  m.name = m.field("name");
  if (m.name.empty()) {
    std::string stem = origin.filename().string();
    stem = stem.substr(0, stem.find(".ko"));
    for (char& c : stem)
      if (c == '-') c = '_';
    m.name = stem;
  }
  // Both become path components (/lib/modules/<release>/updates/<name>.ko, /run/relax-rmrr/<name>.path).
  if (auto st = check_module_name(fmt::format("{}: the module's name", origin.string()), m.name); !st) return st.error();
  if (!m.vermagic_release.empty())
    if (auto st = check_kernel_release(fmt::format("{}: the release in its vermagic", origin.string()), m.vermagic_release); !st)
      return st.error();
  if (auto notes = elf->section_data(".note.gnu.build-id")) m.build_id = elf::build_id_from_notes(*notes);
  m.image = std::move(image);
  return m;
}

Result<ModuleFile> read_module_file(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    Error e = make_error(ExitCode::missing, "module file {} not found", file.string());
    e.hint = "build one with `relax-rmrr build -o FILE.ko`, or give the path of the .ko";
    return e;
  }
  RR_ASSIGN(Bytes bytes, read_file_bytes(file, read_cap::binary));
  bool compressed = false;
  if (auto c = analysis::detect_compression(ByteView(bytes.data(), bytes.size())); c && *c != analysis::Compression::none) {
    auto plain = analysis::decompress(ByteView(bytes.data(), bytes.size()), *c);
    if (!plain) return plain.error().with_context(fmt::format("decompressing {}", file.string()));
    bytes = std::move(*plain);
    compressed = true;
  }
  RR_ASSIGN(ModuleFile m, parse_module_image(std::move(bytes), file));
  m.compressed = compressed;
  return m;
}

}  // namespace rr::lifecycle
