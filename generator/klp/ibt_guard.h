// IBT (CONFIG_X86_KERNEL_IBT, Indirect Branch Tracking): an indirect call or jump must land on an ENDBR64, else
// the CPU raises #CP and the kernel dies. At boot the kernel "seals" every function objtool found to be only
// called directly: the image's .ibt_endbr_seal lists their ENDBRs (each entry an s32 offset from the entry
// itself to the ENDBR) and the kernel overwrites them. The livepatch must therefore never take the address of a
// sealed kernel function (it might be called through that pointer), and every function of the module that is
// reached indirectly (klp callbacks) must start with ENDBR64, as must each replacement whose kernel copy has one.
// This is proven here from the bytes and relocations, before anything is written: `build` refuses otherwise.
#pragma once

#include "analysis/kernel.h"
#include "common/json.h"
#include "common/result.h"
#include "elf/object.h"
#include "klp/klp_object.h"
#include "klp/special_sections.h"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace rr::klp {

inline constexpr uint8_t kEndbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};

// What the guard knows of the target.
struct IbtTarget {
  bool enabled = false;
  std::string enabled_from;  // "config" / "image (.ibt_endbr_seal present, no config)" / why unknown
  const analysis::SymbolTable* symbols = nullptr;
  const elf::ElfFile* image = nullptr;
  int64_t slide = 0;  // runtime minus link addresses of `symbols` (KASLR of a kallsyms dump), as verify uses
  std::optional<std::unordered_set<uint64_t>> sealed;  // link addresses of sealed ENDBRs; nullopt: unknown
  std::string sealed_from;
  std::vector<std::string> notes;
};

// The ENDBR sites a kernel image seals at boot: its .ibt_endbr_seal section, else the bytes between the
// __ibt_endbr_seal and __ibt_endbr_seal_end symbols of `symbols` (runtime addresses, minus `slide`).
// Link addresses: entry address + its s32 value, the computation the kernel makes when it seals.
Result<std::vector<uint64_t>> read_seal_list(const elf::ElfFile& image, const analysis::SymbolTable* symbols = nullptr, int64_t slide = 0);

// IBT on from the config (CONFIG_X86_KERNEL_IBT=y) or, without a config, from the image's .ibt_endbr_seal.
IbtTarget ibt_target(const analysis::LoadedKernel& kernel);

struct AddressTaken {
  std::string symbol;  // the kernel's function
  std::string site;  // "section+0xoff" in the klp object
  std::string reloc_type;  // R_X86_64_*
  std::optional<uint64_t> link_address;
  bool sealed = false;
};

struct IbtReport {
  bool enabled = false;
  std::string enabled_from;
  std::optional<size_t> seal_entries;
  size_t direct_branches = 0;  // call/jmp/jcc rel32 to kernel functions: no ENDBR needed
  std::vector<AddressTaken> address_taken;  // address-taking references to kernel functions
  size_t sealed_hits = 0;
  std::vector<std::string> endbr_checked;  // module functions proven to start with ENDBR64
  std::vector<std::string> endbr_not_needed;  // replacements whose kernel copy has no ENDBR either
  std::vector<std::string> notes;
};

// Is the relocation at `offset` of a code section the rel32 of a direct call, jmp or jcc (e8/e9/0f 8x)?
bool is_direct_branch(const obj::Section& code, const obj::Rela& r);

// Check 1 (no address-taking reference to a sealed kernel function, in carried code or data) and check 2 for the
// replacements (ENDBR64 at entry when the kernel's copy has one; every replacement without an image) on the klp
// object. Skipped, with enabled=false, on a target without IBT.
Status check_klp_object(const KlpObject& klp, const SpecialLayouts& layouts, const IbtTarget& target, IbtReport& report);

// Check 2 on the linked module (.ko, relocatable): every function of its own whose address it takes (the klp
// callbacks in struct klp_callbacks, ...) starts with ENDBR64 and is not in the module's own .ibt_endbr_seal.
// `replacements`: the klp object's new symbols, reached by livepatch's ftrace redirect and checked by
// check_klp_object() instead.
Status check_module_endbr(const obj::Object& module, const std::vector<std::string>& replacements, const IbtTarget& target,
                          IbtReport& report);

Json to_json(const IbtReport& report);

}  // namespace rr::klp
