// Kernel types from BTF (libbpf): raw BTF such as /sys/kernel/btf/vmlinux, or the .BTF section of a vmlinux.
// RAII over struct btf*; answers the questions the analysis asks (struct sizes, member offsets, functions).
#pragma once

#include "common/file.h"
#include "common/result.h"
#include "elf/elf_file.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct btf;  // libbpf

namespace rr::analysis {

struct BtfMember {
  std::string name;
  uint64_t bit_offset = 0;  // from the start of the outer struct (anonymous members are looked through)
  uint32_t bitfield_size = 0;  // 0 when not a bitfield
  uint32_t type_id = 0;
};

struct BtfFunction {
  std::string name;
  bool global = false;  // BTF_FUNC_GLOBAL vs static
  std::vector<std::string> params;  // parameter names (may be empty strings)
};

class Btf {
 public:
  // Raw BTF bytes (copied by libbpf).
  static Result<Btf> from_bytes(ByteView raw, std::string origin);
  // A raw BTF file, or an ELF file whose .BTF section is used.
  static Result<Btf> open(const std::filesystem::path& path);
  static Result<Btf> from_elf(const elf::ElfFile& elf);

  Btf(Btf&& other) noexcept;
  Btf& operator=(Btf&& other) noexcept;
  Btf(const Btf&) = delete;
  Btf& operator=(const Btf&) = delete;
  ~Btf();

  struct btf* raw() const {
    return btf_;
  }
  const std::string& origin() const { return origin_; }
  uint32_t type_count() const;

  // A type id by name and BTF_KIND_*; nullopt when absent.
  std::optional<uint32_t> find(std::string_view name, int kind) const;
  // sizeof(struct name) (or union); nullopt when the type is absent.
  std::optional<uint64_t> struct_size(std::string_view name) const;
  // Where the last member of struct `name` ends, in bytes: struct_size() without the trailing alignment padding.
  std::optional<uint64_t> struct_data_end(std::string_view name) const;
  std::optional<BtfMember> member(std::string_view struct_name, std::string_view member_name) const;
  std::optional<BtfFunction> function(std::string_view name) const;

 private:
  Btf() = default;
  struct btf* btf_ = nullptr;
  std::string origin_;
};

// The entry structs of the special sections a klp object keeps per function.
const std::vector<std::string>& special_section_structs();

struct BtfFacts {
  std::string origin;
  uint32_t type_count = 0;
  bool has_dev_iommu = false;
  std::optional<uint64_t> dev_iommu_size;
  std::optional<BtfMember> require_direct;  // struct dev_iommu.require_direct: the >= 6.6 "core" era
  std::vector<std::pair<std::string, std::optional<uint64_t>>> entry_sizes;  // special_section_structs() order
  std::vector<std::pair<std::string, std::optional<BtfFunction>>> functions;  // as asked
};
BtfFacts collect_btf_facts(const Btf& btf, const std::vector<std::string>& functions);

}  // namespace rr::analysis
