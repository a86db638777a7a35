// The kernel's own symbol table, decoded from the kallsyms tables that every CONFIG_KALLSYMS kernel carries in the
// .rodata of its image: what /proc/kallsyms would print for that kernel (vmlinux only, addresses as linked, no
// KASLR), for a kernel that is installed but has never run. docs/design.md ("The kallsyms tables in the image")
// describes the tables, their orders across kernel versions and the checks each decoding must pass.
#pragma once

#include "analysis/symbols.h"
#include "common/file.h"
#include "common/json.h"
#include "common/result.h"
#include "elf/elf_file.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rr::analysis {

// Where the tables sit relative to each other. The kernel has reordered them twice and dropped one.
enum class KallsymsLayout {
  absolute,  // kallsyms_addresses (u64 each), num_syms, names, markers, token table, token index
  offsets_first,  // offsets, relative_base, num_syms, names, markers, token table, token index (5.10 to 6.1.41)
  offsets_first_seqs,  // as offsets_first with seqs_of_names before the token table (6.1.42 to 6.3)
  num_syms_first,  // num_syms, names, markers, token table/index, offsets, relative_base, seqs (6.4 to 6.19)
  num_syms_first_no_base,  // as num_syms_first without relative_base (7.0 on)
};
std::string_view layout_name(KallsymsLayout layout);
std::string_view layout_kernels(KallsymsLayout layout);

// How an entry of the address table becomes an address.
enum class KallsymsAddressForm {
  absolute,  // the u64 is the address
  absolute_percpu,  // v >= 0: v itself (per-CPU symbols); v < 0: relative_base - 1 - v (x86_64 SMP up to 6.14)
  base_relative,  // relative_base + (u32)v (6.15 to 6.19; earlier kernels without absolute per-CPU symbols)
  place_relative,  // the entry's own address + (s32)v (7.0 on)
};
std::string_view address_form_name(KallsymsAddressForm form);

struct KallsymsTable {
  std::string name;  // "kallsyms_names", ...
  uint64_t address = 0;  // link-time virtual address
  uint64_t size = 0;  // bytes
};

struct ImageKallsyms {
  SymbolTable symbols;  // SymbolSource::image, table order (= address order), empty names left out as the kernel does
  KallsymsLayout layout = KallsymsLayout::offsets_first;
  KallsymsAddressForm address_form = KallsymsAddressForm::absolute_percpu;
  bool long_names = false;  // some name's length took two bytes (the 6.1+ encoding was needed)
  size_t table_entries = 0;  // num_syms (the symbols above skip empty names)
  std::vector<KallsymsTable> tables;  // in address order
  unsigned self_checked = 0;  // kallsyms_* tables listed in the table itself whose address matched (6.11+)
  std::vector<std::string> checks;  // the cross-checks the decoding passed, for the report
};

// Finds and decodes the tables in `vmlinux` (the ELF a vmlinuz decompresses to; an x86_64 kernel). Every candidate
// is cross-checked before it is believed: token index against token table, markers against the names stream, every
// name well formed, addresses sorted, `_text` at the ELF's .text, kallsyms_* self entries, seqs_of_names a
// permutation. Error (missing, exit 3) when no kallsyms tables are there at all (CONFIG_KALLSYMS=n, or not a
// kernel); Error (bad_input, exit 2) when candidates exist but none, or more than one, decodes consistently.
// `origin` names the image in the symbol table and in messages.
// A kernel's own ELF (vmlinux, or what a vmlinuz decompresses to): a 64-bit x86_64 executable whose .text is linked
// in the kernel's half of the address space. Anything else given as a kernel (/bin/ls, a module) is bad input.
Status check_kernel_elf(const elf::ElfFile& elf, const std::string& origin);

Result<ImageKallsyms> decode_image_kallsyms(const elf::ElfFile& vmlinux, const std::string& origin);
// The same on the bytes of .rodata linked at `rodata_address`, with .text at `text_address` (what the image's
// section headers say): the part a fuzzer drives.
Result<ImageKallsyms> decode_kallsyms_tables(ByteView rodata, uint64_t rodata_address, uint64_t text_address, const std::string& origin);

// `relax-rmrr kallsyms --json`: the decoding report and every symbol.
Json to_json(const ImageKallsyms& k, bool with_symbols = true);

}  // namespace rr::analysis
