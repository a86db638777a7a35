// Step "verify" of the pipeline (between the plan and the klp object): does the source we compiled produce
// the target kernel's code? One function of the ORIGINAL object (compiled like the built-in driver) is
// compared with the same function's bytes in the target kernel. Only bytes that may legitimately differ are
// masked, and which those are depends on where the kernel's bytes come from:
//
//  - the image (vmlinuz -> vmlinux): code as linked, before any boot-time patching. The only legitimate
//    differences are relocation fields (the object has zeros/addends there, the image the linked values).
//    Measured on Debian 6.1.0-56: 110 of 110 intel-iommu functions with a unique kallsyms name are identical
//    outside relocation fields; ftrace calls, jump labels, return thunks and retpoline calls are all still
//    as the compiler and objtool left them. So nothing else is masked for the image, and relocation fields
//    whose target the kernel's symbols name are checked for their value, not merely masked.
//    Measured on Debian 6.12.118 (gcc-14, IBT, objtool run on vmlinux.o at link time): 105 of 116 functions are
//    identical outside relocation fields; the other 11 differ; 7 of them only at __jump_table sites, where the link-time
//    objtool turned `jmp` into a NOP of the same length (e9 rel32 -> 0f 1f 44 00 00, eb rel8 -> 66 90). So
//    for the image a jump-label site may hold exactly that NOP, nothing else. (The other 4 of the 11 differ in
//    loop-alignment padding: the kernel links the driver as one .text, we compile a section per function, and
//    where the kernel's copy is not aligned like our section the .p2align padding inside differs. Not masked:
//    it is reported as such; none of them is called by the functions the 6.12 livepatch replaces.)
//  - a running kernel (/proc/kcore): the kernel has rewritten the sites its tables list: ftrace calls
//    (__mcount_loc), jump labels (__jump_table), alternatives (.altinstructions), paravirt calls
//    (.parainstructions), static calls (.static_call_sites), retpolines (.retpoline_sites), return thunks
//    (.return_sites), call depth thunks (.call_sites), ENDBR sealing (.ibt_endbr_seal), LOCK prefixes
//    (.smp_locks). Those sites are masked too; everything else must still be equal.
#pragma once

#include "common/file.h"
#include "common/json.h"
#include "elf/object.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rr::verify {

enum class TextOrigin { image, kcore };
std::string_view origin_name(TextOrigin o);

struct MaskedRange {
  uint64_t offset = 0;  // in the function's section
  uint64_t length = 0;
  std::string why;  // "relocation R_X86_64_PLT32 __fentry__", "ftrace site", "jump label", ...
  // Empty: any bytes are accepted. Otherwise the kernel's bytes must be the compiled ones or exactly these
  // (a jump label the link-time objtool turned into a NOP of the same length).
  Bytes alternative;
};

// The byte ranges of section `shndx` of `o` that may differ from the kernel's copy, sorted by offset.
// Relocation fields always; with TextOrigin::kcore also the runtime-patched sites that the object's special
// sections list for that section.
std::vector<MaskedRange> legitimate_differences(const obj::Object& o, uint32_t shndx, TextOrigin origin);

// Where the kernel has a symbol, at link addresses (the image's addresses; the caller removes the KASLR slide).
// nullopt when unknown or ambiguous: the relocation field is then masked without checking its value.
using SymbolResolver = std::function<std::optional<uint64_t>(const obj::Symbol& symbol)>;

struct FunctionComparison {
  std::string name;  // the function (object symbol name, e.g. "intel_iommu_attach_device.cold")
  std::string section;  // its section in the object
  uint64_t address = 0;  // link address in the target
  uint64_t object_size = 0;
  uint64_t target_size = 0;  // the symbol's size in the target (or the distance to the next symbol)
  bool target_size_exact = false;  // from an ELF symtab; otherwise it includes alignment padding
  bool size_ok = false;
  std::optional<uint64_t> first_difference;  // offset of the first unmasked differing byte
  std::string expected_bytes, target_bytes;  // hex around the first difference
  std::string difference_note;  // what is at that offset (a relocation value, ...)
  size_t masked_ranges = 0;
  size_t masked_bytes = 0;
  size_t relocations_checked = 0;  // relocation fields whose value was confirmed
  size_t alternatives_accepted = 0;  // jump labels found NOPed by the link-time objtool (image)
  bool equal() const { return size_ok && !first_difference; }
};

// Compares function `fn` (a symbol of `o`, at offset fn.value of its section) with `target`, the kernel's
// bytes at `address` (at least object_size bytes; `target_size` bytes of padding may follow). Relocation
// values are checked where `resolve` knows the target; pass nullptr to only mask them.
FunctionComparison compare_function(const obj::Object& o, const obj::Symbol& fn, ByteView target, uint64_t address, uint64_t target_size,
                                    bool target_size_exact, TextOrigin origin, const SymbolResolver& resolve);

Json to_json(const FunctionComparison& c);

}  // namespace rr::verify
