// The ELF reader (vmlinux, --vmlinux, the decompressed image, compiled objects): headers, every section's data,
// the symbol table with nm letters, bytes by address, the "Linux version" banner and the .BTF section.
#include "analysis/btf.h"
#include "analysis/kbuild.h"
#include "analysis/symbols.h"
#include "elf/elf_file.h"
#include "fuzz_util.h"

using namespace rr;
using namespace rr::analysis;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto elf = elf::ElfFile::from_bytes(Bytes(data, data + size), "fuzz");
  if (!elf.ok()) return 0;
  for (const auto& s : elf->sections()) {
    auto d = elf->section_data(s);
    if (d.ok()) fuzz::consume(d->size());
    fuzz::consume(elf->bytes_at(s.address, 16));
    fuzz::consume(elf->bytes_at(s.address + s.size - 1, 2));
  }
  auto syms = elf->symbols();
  if (syms.ok()) fuzz::consume(syms->size());
  auto table = symbols_from_elf(*elf);
  if (table.ok()) fuzz::consume(table->first("_text"));
  if (auto rodata = elf->section_data(".rodata"); rodata.ok()) fuzz::consume(find_banner(*rodata));
  auto btf = Btf::from_elf(*elf);
  if (btf.ok()) fuzz::consume(btf->type_count());
  return 0;
}
