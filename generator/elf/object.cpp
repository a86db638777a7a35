#include "elf/object.h"

#include "elf/elf_file.h"

#include <elf.h>
#include <gelf.h>

#include <algorithm>

namespace rr::obj {

bool Section::is_text() const { return (flags & SHF_EXECINSTR) != 0; }
bool Section::is_strings() const { return (flags & SHF_STRINGS) != 0 && (flags & SHF_MERGE) != 0; }
bool Section::is_writable() const { return (flags & SHF_WRITE) != 0; }

bool Symbol::is_function() const { return type == STT_FUNC; }
bool Symbol::is_section() const { return type == STT_SECTION; }
bool Symbol::defined_in_section() const { return shndx != SHN_UNDEF && shndx < SHN_LORESERVE; }

const Section* Object::section(std::string_view name) const {
  for (const auto& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

const Symbol* Object::symbol(std::string_view name) const {
  for (const auto& s : symbols)
    if (s.name == name && !s.is_section()) return &s;
  return nullptr;
}

const Symbol* Object::symbol_at(uint32_t shndx, uint64_t offset) const {
  if (shndx >= sections.size()) return nullptr;
  const Symbol* best = nullptr;
  for (uint32_t i : sections[shndx].symbols) {
    const Symbol& s = symbols[i];
    bool covers = offset >= s.value && (offset < s.value + s.size || (s.size == 0 && offset == s.value));
    if (covers && (!best || s.size < best->size)) best = &s;
  }
  return best;
}

size_t rela_width(uint32_t type) {
  switch (type) {
    case R_X86_64_64:
    case R_X86_64_PC64: return 8;
    case R_X86_64_PC32:
    case R_X86_64_PLT32:
    case R_X86_64_32:
    case R_X86_64_32S:
    case R_X86_64_GOTPCREL:
    case R_X86_64_GOTPCRELX:
    case R_X86_64_REX_GOTPCRELX: return 4;
    case R_X86_64_NONE: return 0;
  }
  return 0;
}

bool rela_is_pc_relative(uint32_t type) {
  return type == R_X86_64_PC32 || type == R_X86_64_PLT32 || type == R_X86_64_PC64 || type == R_X86_64_GOTPCREL ||
         type == R_X86_64_GOTPCRELX || type == R_X86_64_REX_GOTPCRELX;
}

std::string rela_type_name(uint32_t type) {
  switch (type) {
    case R_X86_64_64: return "R_X86_64_64";
    case R_X86_64_PC32: return "R_X86_64_PC32";
    case R_X86_64_PLT32: return "R_X86_64_PLT32";
    case R_X86_64_32: return "R_X86_64_32";
    case R_X86_64_32S: return "R_X86_64_32S";
    case R_X86_64_PC64: return "R_X86_64_PC64";
  }
  return fmt::format("R_X86_64_type{}", type);
}

static bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string strip_number_suffixes(std::string_view name) {
  std::string_view n = name;
  for (;;) {
    size_t dot = n.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || !all_digits(n.substr(dot + 1))) break;
    n = n.substr(0, dot);
  }
  if (n.starts_with("__UNIQUE_ID_")) {
    size_t end = n.size();
    while (end > 12 && n[end - 1] >= '0' && n[end - 1] <= '9') --end;
    n = n.substr(0, end);
  }
  return std::string(n);
}

Result<Object> load_bytes(Bytes bytes, const std::string& origin) {
  RR_ASSIGN(auto elf, elf::ElfFile::from_bytes(std::move(bytes), origin));
  if (!elf.is_64bit() || elf.machine() != EM_X86_64)
    return make_error(ExitCode::bad_input, "{}: not an x86-64 object (machine {})", origin, elf.machine());
  if (elf.file_type() != ET_REL) return make_error(ExitCode::bad_input, "{}: not a relocatable object (.o)", origin);

  Object o;
  o.path = origin;
  const auto& secs = elf.sections();
  o.sections.resize(secs.size());
  for (const auto& s : secs) {
    Section& out = o.sections[s.index];
    out.index = static_cast<uint32_t>(s.index);
    out.name = s.name;
    out.type = s.type;
    out.flags = s.flags;
    out.entry_size = s.entry_size;
    out.size = s.size;
    if (s.has_file_data() && s.type != SHT_RELA && s.type != SHT_SYMTAB && s.type != SHT_STRTAB) {
      RR_ASSIGN(ByteView v, elf.section_data(s));
      out.data.assign(v.data(), v.data() + v.size());
    }
  }
  {
    GElf_Shdr sh;
    for (size_t i = 1; i < o.sections.size(); ++i) {
      Elf_Scn* scn = elf_getscn(elf.raw(), i);
      if (scn && gelf_getshdr(scn, &sh)) o.sections[i].align = sh.sh_addralign;
    }
  }

  RR_ASSIGN(auto syms, elf.symbols());
  o.symbols.resize(syms.size() + 1);
  for (size_t i = 0; i < syms.size(); ++i) {
    Symbol& s = o.symbols[i + 1];
    s.index = static_cast<uint32_t>(i + 1);
    s.name = syms[i].name;
    s.type = syms[i].type;
    s.bind = syms[i].bind;
    s.shndx = syms[i].section_index;
    s.value = syms[i].value;
    s.size = syms[i].size;
    if (s.defined_in_section() && s.shndx >= o.sections.size())
      return make_error(ExitCode::bad_input, "{}: symbol {} names section {}, which does not exist", origin, s.name, s.shndx);
    if (s.is_section() && s.defined_in_section()) {
      o.sections[s.shndx].section_symbol = s.index;
      if (s.name.empty()) s.name = o.sections[s.shndx].name;
    } else if ((s.type == STT_FUNC || s.type == STT_OBJECT) && s.defined_in_section()) {
      o.sections[s.shndx].symbols.push_back(s.index);
    }
  }
  for (auto& sec : o.sections)
    std::sort(sec.symbols.begin(), sec.symbols.end(), [&](uint32_t a, uint32_t b) { return o.symbols[a].value < o.symbols[b].value; });

  for (const auto& s : secs) {
    if (s.type != SHT_RELA) continue;
    if (s.info == 0 || s.info >= o.sections.size())
      return make_error(ExitCode::bad_input, "{}: relocation section {} applies to section {}, which does not exist", origin, s.name,
                        s.info);
    RR_ASSIGN(ByteView v, elf.section_data(s));
    if (v.size() % sizeof(Elf64_Rela) != 0)
      return make_error(ExitCode::bad_input, "{}: relocation section {} has a partial entry", origin, s.name);
    Section& target = o.sections[s.info];
    target.rela_section = static_cast<uint32_t>(s.index);
    for (size_t at = 0; at < v.size(); at += sizeof(Elf64_Rela)) {
      Elf64_Rela r = *v.read<Elf64_Rela>(at);
      Rela rela{r.r_offset, static_cast<uint32_t>(ELF64_R_TYPE(r.r_info)), static_cast<uint32_t>(ELF64_R_SYM(r.r_info)), r.r_addend};
      if (rela.symbol >= o.symbols.size())
        return make_error(ExitCode::bad_input, "{}: relocation in {} names symbol {}, which does not exist", origin, s.name, rela.symbol);
      if (rela.offset > target.size)
        return make_error(ExitCode::bad_input, "{}: relocation in {} at {:#x} lies outside its section", origin, s.name, rela.offset);
      target.relas.push_back(rela);
    }
    std::stable_sort(target.relas.begin(), target.relas.end(), [](const Rela& a, const Rela& b) { return a.offset < b.offset; });
  }
  return o;
}

Result<Object> load(const std::filesystem::path& path) {
  RR_ASSIGN(Bytes bytes, read_file_bytes(path));
  return load_bytes(std::move(bytes), path.string());
}

}  // namespace rr::obj
