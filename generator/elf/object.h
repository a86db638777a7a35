// A relocatable object (.o) as one in-memory graph: sections with their bytes and relocations, symbols
// pointing at sections. The diff and the klp builder both work on this; indices are the file's own.
#pragma once

#include "common/file.h"
#include "common/result.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace rr::obj {

struct Rela {
  uint64_t offset = 0;  // in the section the relocation applies to
  uint32_t type = 0;  // R_X86_64_*
  uint32_t symbol = 0;  // index into Object::symbols
  int64_t addend = 0;
};

struct Section {
  uint32_t index = 0;
  std::string name;
  uint32_t type = 0;  // SHT_*
  uint64_t flags = 0;  // SHF_*
  uint64_t align = 0;
  uint64_t entry_size = 0;
  uint64_t size = 0;  // also for NOBITS, which have no data
  Bytes data;
  std::vector<Rela> relas;  // from the SHT_RELA section that applies to this one, sorted by offset
  uint32_t rela_section = 0;  // index of that SHT_RELA section, 0 when none
  uint32_t section_symbol = 0;  // its STT_SECTION symbol, 0 when none
  std::vector<uint32_t> symbols;  // function and object symbols defined in it, by address

  bool is_text() const;  // SHF_EXECINSTR
  bool is_strings() const;  // SHF_MERGE|SHF_STRINGS
  bool is_writable() const;
};

struct Symbol {
  uint32_t index = 0;
  std::string name;
  uint8_t type = 0;  // STT_*
  uint8_t bind = 0;  // STB_*
  uint8_t other = 0;  // visibility
  uint16_t shndx = 0;  // SHN_UNDEF, SHN_ABS, ... or a section index
  uint64_t value = 0;
  uint64_t size = 0;

  bool is_undefined() const { return shndx == 0; }
  bool is_function() const;
  bool is_section() const;
  bool defined_in_section() const;  // a real section index (not UNDEF/ABS/COMMON)
};

struct Object {
  std::filesystem::path path;
  std::vector<Section> sections;  // sections[i].index == i; index 0 is the null section
  std::vector<Symbol> symbols;  // symbols[i].index == i; index 0 is the null symbol

  const Section* section(std::string_view name) const;
  const Symbol* symbol(std::string_view name) const;
  // The function or object symbol that covers `offset` in section `shndx`, or nullptr.
  const Symbol* symbol_at(uint32_t shndx, uint64_t offset) const;
};

// Loads a relocatable x86-64 ELF object. Executables, other machines and corrupt files are Errors.
Result<Object> load(const std::filesystem::path& path);
Result<Object> load_bytes(Bytes bytes, const std::string& origin);

// Relocation helpers for x86-64.
size_t rela_width(uint32_t type);  // bytes the relocation writes; 0 when unknown
bool rela_is_pc_relative(uint32_t type);
std::string rela_type_name(uint32_t type);

// Drops only trailing ".N" numbers ("warned.3" -> "warned", "foo.part.0" -> "foo.part"), keeping kinds, and
// the preprocessor's __COUNTER__ of the kernel's __UNIQUE_ID(prefix) names ("__UNIQUE_ID_ddebug412.7" ->
// "__UNIQUE_ID_ddebug"): an edit that drops a macro using __COUNTER__ (compiletime_assert in container_of
// before 5.16) renumbers every such name after it.
std::string strip_number_suffixes(std::string_view symbol_name);

}  // namespace rr::obj
