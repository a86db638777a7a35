// A read-only ELF file: RAII over libelf's Elf*, owning the bytes it reads. Every libelf return is checked, and
// section contents are sliced with bounds checks, so a corrupt or truncated file is an Error, never a crash.
#pragma once

#include "common/file.h"
#include "common/result.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

typedef struct Elf Elf;  // libelf's opaque handle; <libelf.h> stays out of this header

namespace rr::elf {

struct ElfSection {
  size_t index = 0;
  std::string name;
  uint32_t type = 0;  // SHT_*
  uint64_t flags = 0;  // SHF_*
  uint64_t address = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t link = 0;
  uint32_t info = 0;
  uint64_t entry_size = 0;

  bool has_file_data() const;  // not SHT_NOBITS / SHT_NULL
};

struct ElfSymbol {
  std::string name;
  uint64_t value = 0;
  uint64_t size = 0;
  uint8_t type = 0;  // STT_*
  uint8_t bind = 0;  // STB_*
  uint16_t section_index = 0;  // st_shndx (SHN_* values kept as is)
};

class ElfFile {
 public:
  // Takes the bytes (e.g. a decompressed vmlinux); `origin` names it in messages.
  static Result<ElfFile> from_bytes(Bytes bytes, std::string origin);
  static Result<ElfFile> open(const std::filesystem::path& path);

  ElfFile(ElfFile&& other) noexcept;
  ElfFile& operator=(ElfFile&& other) noexcept;
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
  ~ElfFile();

  Elf* raw() const { return elf_; }
  const std::string& origin() const { return origin_; }
  ByteView bytes() const { return ByteView(data_->data(), data_->size()); }

  bool is_64bit() const { return is_64_; }
  uint16_t machine() const { return machine_; }  // EM_*
  uint16_t file_type() const { return file_type_; }  // ET_*

  const std::vector<ElfSection>& sections() const { return sections_; }
  const ElfSection* section(std::string_view name) const;
  // Contents of a section inside the file; Error when it is NOBITS or lies outside the file.
  Result<ByteView> section_data(const ElfSection& section) const;
  Result<ByteView> section_data(std::string_view name) const;

  // Bytes at a link-time virtual address, from the allocated section that holds all of them.
  std::optional<ByteView> bytes_at(uint64_t address, size_t length) const;

  bool has_symtab() const { return section(".symtab") != nullptr; }
  // .symtab entries (index 0, the null symbol, is skipped). Error (missing) without a .symtab.
  Result<std::vector<ElfSymbol>> symbols() const;

 private:
  ElfFile() = default;
  Status load_headers();

  std::unique_ptr<Bytes> data_;  // heap-held so the address libelf keeps stays valid across moves
  Elf* elf_ = nullptr;
  std::string origin_;
  bool is_64_ = true;
  uint16_t machine_ = 0;
  uint16_t file_type_ = 0;
  std::vector<ElfSection> sections_;
};

// The payload of an ELF note section: the descriptor of its first NT_GNU_BUILD_ID note as lower-case hex, or ""
// (also for a damaged note list). The same bytes /sys/module/<name>/notes/.note.gnu.build-id holds.
std::string build_id_from_notes(ByteView notes);

}  // namespace rr::elf
