#include "elf/elf_file.h"

#include <gelf.h>
#include <libelf.h>

#include <algorithm>

namespace rr::elf {

namespace {

Error elf_error(const std::string& origin, std::string_view what) {
  const char* msg = elf_errmsg(-1);
  return make_error(ExitCode::bad_input, "{}: not a readable ELF file: {}{}{}", origin, what, msg ? ": " : "", msg ? msg : "");
}

bool libelf_ready() {
  static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
  return ready;
}

}  // namespace

bool ElfSection::has_file_data() const { return type != SHT_NOBITS && type != SHT_NULL; }

Result<ElfFile> ElfFile::from_bytes(Bytes bytes, std::string origin) {
  if (!libelf_ready()) return make_error(ExitCode::environment, "libelf does not support this ELF version");
  ElfFile f;
  f.origin_ = std::move(origin);
  f.data_ = std::make_unique<Bytes>(std::move(bytes));
  static const uint8_t kMagic[4] = {0x7f, 'E', 'L', 'F'};
  if (f.data_->size() < 4 || std::memcmp(f.data_->data(), kMagic, 4) != 0)
    return make_error(ExitCode::bad_input, "{}: not an ELF file (no \\x7fELF magic)", f.origin_);
  f.elf_ = elf_memory(reinterpret_cast<char*>(f.data_->data()), f.data_->size());
  if (!f.elf_) return elf_error(f.origin_, "elf_memory");
  RR_CHECK(f.load_headers());
  return f;
}

Result<ElfFile> ElfFile::open(const std::filesystem::path& path) {
  RR_ASSIGN(Bytes bytes, read_file_bytes(path));
  return from_bytes(std::move(bytes), path.string());
}

ElfFile::ElfFile(ElfFile&& other) noexcept
    : data_(std::move(other.data_)),
      elf_(std::exchange(other.elf_, nullptr)),
      origin_(std::move(other.origin_)),
      is_64_(other.is_64_),
      machine_(other.machine_),
      file_type_(other.file_type_),
      sections_(std::move(other.sections_)) {}

ElfFile& ElfFile::operator=(ElfFile&& other) noexcept {
  if (this != &other) {
    if (elf_) elf_end(elf_);
    data_ = std::move(other.data_);
    elf_ = std::exchange(other.elf_, nullptr);
    origin_ = std::move(other.origin_);
    is_64_ = other.is_64_;
    machine_ = other.machine_;
    file_type_ = other.file_type_;
    sections_ = std::move(other.sections_);
  }
  return *this;
}

ElfFile::~ElfFile() {
  if (elf_) elf_end(elf_);
}

Status ElfFile::load_headers() {
  if (elf_kind(elf_) != ELF_K_ELF) return make_error(ExitCode::bad_input, "{}: not an ELF object", origin_);
  GElf_Ehdr eh;
  if (!gelf_getehdr(elf_, &eh)) return elf_error(origin_, "ELF header");
  int cls = gelf_getclass(elf_);
  if (cls != ELFCLASS32 && cls != ELFCLASS64) return make_error(ExitCode::bad_input, "{}: unknown ELF class {}", origin_, cls);
  is_64_ = cls == ELFCLASS64;
  machine_ = eh.e_machine;
  file_type_ = eh.e_type;

  size_t count = 0, strndx = 0;
  if (elf_getshdrnum(elf_, &count) != 0) return elf_error(origin_, "section count");
  // libelf quietly treats a section header table outside the file as absent: say it is corrupt instead.
  size_t table_entries = std::max<size_t>(count, eh.e_shnum);
  if ((eh.e_shoff != 0 || table_entries != 0) && (eh.e_shentsize == 0 || !bytes().has(eh.e_shoff, table_entries * size_t{eh.e_shentsize})))
    return make_error(ExitCode::bad_input, "{}: the section header table ({} entries at {:#x}) lies outside the {}-byte file", origin_,
                      table_entries, eh.e_shoff, data_->size());
  if (count == 0) return ok_status();
  if (elf_getshdrstrndx(elf_, &strndx) != 0) return elf_error(origin_, "section name table index");
  if (strndx >= count) return make_error(ExitCode::bad_input, "{}: section name table index {} out of range", origin_, strndx);
  sections_.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    Elf_Scn* scn = elf_getscn(elf_, i);
    if (!scn) return elf_error(origin_, fmt::format("section {}", i));
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) return elf_error(origin_, fmt::format("section header {}", i));
    ElfSection s;
    s.index = i;
    s.type = sh.sh_type;
    s.flags = sh.sh_flags;
    s.address = sh.sh_addr;
    s.offset = sh.sh_offset;
    s.size = sh.sh_size;
    s.link = sh.sh_link;
    s.info = sh.sh_info;
    s.entry_size = sh.sh_entsize;
    if (i != 0) {
      const char* name = elf_strptr(elf_, strndx, sh.sh_name);
      if (!name) return elf_error(origin_, fmt::format("name of section {}", i));
      s.name = name;
    }
    if (s.has_file_data() && !bytes().has(s.offset, s.size))
      return make_error(ExitCode::bad_input, "{}: section {} ({}) at {:#x}+{:#x} lies outside the {}-byte file", origin_, i, s.name,
                        s.offset, s.size, data_->size());
    sections_.push_back(std::move(s));
  }
  return ok_status();
}

const ElfSection* ElfFile::section(std::string_view name) const {
  for (const auto& s : sections_)
    if (s.index != 0 && s.name == name) return &s;
  return nullptr;
}

Result<ByteView> ElfFile::section_data(const ElfSection& s) const {
  if (!s.has_file_data()) return make_error(ExitCode::bad_input, "{}: section {} has no contents in the file", origin_, s.name);
  auto v = bytes().sub(s.offset, s.size);
  if (!v) return make_error(ExitCode::bad_input, "{}: section {} lies outside the file", origin_, s.name);
  return *v;
}

Result<ByteView> ElfFile::section_data(std::string_view name) const {
  const ElfSection* s = section(name);
  if (!s) return make_error(ExitCode::missing, "{}: no {} section", origin_, name);
  return section_data(*s);
}

std::optional<ByteView> ElfFile::bytes_at(uint64_t address, size_t length) const {
  for (const auto& s : sections_) {
    if (!(s.flags & SHF_ALLOC) || !s.has_file_data()) continue;
    if (address < s.address || address - s.address > s.size || length > s.size - (address - s.address)) continue;
    return bytes().sub(s.offset + (address - s.address), length);
  }
  return std::nullopt;
}

Result<std::vector<ElfSymbol>> ElfFile::symbols() const {
  const ElfSection* symtab = nullptr;
  for (const auto& s : sections_)
    if (s.type == SHT_SYMTAB) symtab = &s;
  if (!symtab) return make_error(ExitCode::missing, "{}: no symbol table (.symtab): the file is stripped", origin_);
  if (symtab->link >= sections_.size() || sections_[symtab->link].type != SHT_STRTAB)
    return make_error(ExitCode::bad_input, "{}: the symbol table's string table link {} is not a string table", origin_, symtab->link);
  Elf_Scn* scn = elf_getscn(elf_, symtab->index);
  if (!scn) return elf_error(origin_, "symbol table section");
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (!data) return elf_error(origin_, "symbol table data");
  size_t entsize = gelf_fsize(elf_, ELF_T_SYM, 1, EV_CURRENT);
  if (entsize == 0) return elf_error(origin_, "symbol size");
  size_t count = data->d_size / entsize;
  std::vector<ElfSymbol> out;
  out.reserve(count);
  for (size_t i = 1; i < count; ++i) {
    GElf_Sym sym;
    if (!gelf_getsym(data, static_cast<int>(i), &sym)) return elf_error(origin_, fmt::format("symbol {}", i));
    const char* name = elf_strptr(elf_, symtab->link, sym.st_name);
    if (!name) return elf_error(origin_, fmt::format("name of symbol {}", i));
    ElfSymbol s;
    s.name = name;
    s.value = sym.st_value;
    s.size = sym.st_size;
    s.type = static_cast<uint8_t>(GELF_ST_TYPE(sym.st_info));
    s.bind = static_cast<uint8_t>(GELF_ST_BIND(sym.st_info));
    s.section_index = sym.st_shndx;
    out.push_back(std::move(s));
  }
  return out;
}

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

}  // namespace rr::elf
