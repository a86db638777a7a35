// The kernel's special sections: tables whose entries point into code (or that code points into). A klp
// object must carry exactly the entries of the functions it carries: dropping a __bug_table entry turns a
// WARN into an oops, dropping ORC entries makes the stack unreliable and stalls the patch transition.
#pragma once

#include "common/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rr::analysis {
class Btf;
}

namespace rr::klp {

enum class EntryKind {
  points_to_code,  // each entry's first field is a relocation into the code it describes
  paired,  // entry i goes with entry i of `pair` (ORC data with ORC addresses)
  referenced,  // kept when carried code refers to the entry (dynamic debug descriptors)
};

struct SpecialSection {
  std::string name;
  uint64_t entry_size = 0;
  EntryKind kind = EntryKind::points_to_code;
  std::string pair;  // for `paired`
  // .altinstructions: where the replacement's offset and length sit in an entry, to keep only the used
  // bytes' relocations of .altinstr_replacement.
  std::optional<uint64_t> replacement_offset_field;
  std::optional<uint64_t> replacement_length_field;
  // The fewest bytes the section's last entry may have (0: entry_size). Tables written in asm align each entry
  // but do not pad the last one: 5.10's .parainstructions is 16-byte entries of 12 bytes, 108 bytes for 7.
  uint64_t last_entry_min = 0;
};

// How many entries a section of `section_size` bytes holds: whole entries, the last one possibly short of its
// trailing padding (last_entry_min); nullopt when the size fits no such count.
std::optional<uint64_t> entry_count(const SpecialSection& sp, uint64_t section_size);

struct SpecialLayouts {
  std::vector<SpecialSection> sections;
  const SpecialSection* find(std::string_view name) const;
};

// Entry sizes from the target's BTF (struct bug_entry, jump_entry, alt_instr, ...); the arrays of 32-bit
// offsets and 64-bit addresses have fixed sizes. A struct missing from BTF leaves its section out, and an
// object that has that section is then refused by the klp builder rather than guessed at.
Result<SpecialLayouts> layouts_from_btf(const analysis::Btf& btf);

}  // namespace rr::klp
