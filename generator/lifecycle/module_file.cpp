#include "lifecycle/module_file.h"

#include "analysis/bzimage.h"
#include "analysis/elf_file.h"

#include <elf.h>

#include <fmt/format.h>

namespace fs = std::filesystem;

namespace rr::lifecycle {

std::string build_id_from_notes(ByteView notes) {
  size_t at = 0;
  auto align4 = [](size_t v) { return (v + 3) & ~size_t{3}; };
  while (notes.has(at, 12)) {
    uint32_t namesz = *notes.read<uint32_t>(at);
    uint32_t descsz = *notes.read<uint32_t>(at + 4);
    uint32_t type = *notes.read<uint32_t>(at + 8);
    size_t name_at = at + 12;
    if (namesz > notes.size() || descsz > notes.size()) return {};
    size_t desc_at = name_at + align4(namesz);
    if (!notes.has(desc_at, descsz)) return {};
    if (type == NT_GNU_BUILD_ID && namesz == 4 && notes.string_at(name_at, 3) == "GNU") {
      std::string hex;
      for (uint32_t i = 0; i < descsz; ++i) hex += fmt::format("{:02x}", notes.data()[desc_at + i]);
      return hex;
    }
    at = desc_at + align4(descsz);
  }
  return {};
}

Result<ModuleFile> parse_module_image(Bytes image, const fs::path& origin) {
  ModuleFile m;
  m.path = origin;
  std::string_view all(reinterpret_cast<const char*>(image.data()), image.size());
  m.is_signed =
      all.size() >= kModuleSignatureTrailer.size() && all.substr(all.size() - kModuleSignatureTrailer.size()) == kModuleSignatureTrailer;
  auto elf = analysis::ElfFile::from_bytes(image, origin.string());
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
    if (eq != std::string_view::npos) m.modinfo.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
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
  if (auto notes = elf->section_data(".note.gnu.build-id")) m.build_id = build_id_from_notes(*notes);
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
  RR_ASSIGN(Bytes bytes, read_file_bytes(file, size_t{256} << 20));
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
