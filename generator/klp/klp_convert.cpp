#include "klp/klp_convert.h"

#include "elf/handle.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#ifndef SHN_LIVEPATCH
#define SHN_LIVEPATCH 0xff20
#endif
#ifndef SHF_RELA_LIVEPATCH
#define SHF_RELA_LIVEPATCH 0x00100000
#endif

namespace rr::klp {

namespace {

Error fail(const std::filesystem::path& p, std::string_view what) {
  const char* m = elf_errmsg(-1);
  return make_error(ExitCode::failure, "{}: {}{}{}", p.string(), what, m ? ": " : "", m ? m : "");
}

}  // namespace

Result<ConversionReport> convert_to_klp_module(const std::filesystem::path& ko, const std::string& target_object) {
  RR_ASSIGN(elf::ElfHandle handle, elf::ElfHandle::open(ko, elf::ElfHandle::Mode::read_write));
  Elf* elf = handle.get();
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return fail(ko, "no section name table");

  // The symbol table: mark .klp.sym.* symbols.
  Elf_Scn* symtab_scn = nullptr;
  size_t symtab_index = 0;
  for (Elf_Scn* s = elf_nextscn(elf, nullptr); s; s = elf_nextscn(elf, s)) {
    GElf_Shdr sh;
    if (gelf_getshdr(s, &sh) && sh.sh_type == SHT_SYMTAB) {
      symtab_scn = s;
      symtab_index = elf_ndxscn(s);
    }
  }
  if (!symtab_scn) return make_error(ExitCode::bad_input, "{}: no symbol table", ko.string());
  GElf_Shdr symtab_sh;
  gelf_getshdr(symtab_scn, &symtab_sh);
  Elf_Data* syms = elf_getdata(symtab_scn, nullptr);
  if (!syms) return fail(ko, "symbol table data");
  size_t nsyms = syms->d_size / sizeof(Elf64_Sym);
  std::vector<bool> is_klp(nsyms, false);
  ConversionReport report;
  const std::string prefix = ".klp.sym." + target_object + ".";
  for (size_t i = 1; i < nsyms; ++i) {
    GElf_Sym sym;
    if (!gelf_getsym(syms, static_cast<int>(i), &sym)) return fail(ko, "symbol");
    const char* name = elf_strptr(elf, symtab_sh.sh_link, sym.st_name);
    if (!name || std::strncmp(name, ".klp.sym.", 9) != 0) continue;
    if (std::strncmp(name, prefix.c_str(), prefix.size()) != 0 || !std::strchr(name, ','))
      return make_error(ExitCode::failure, "{}: malformed livepatch symbol {}", ko.string(), name);
    if (sym.st_shndx != SHN_UNDEF && sym.st_shndx != SHN_LIVEPATCH)
      return make_error(ExitCode::failure, "{}: livepatch symbol {} is defined in the module", ko.string(), name);
    sym.st_shndx = SHN_LIVEPATCH;
    if (!gelf_update_sym(syms, static_cast<int>(i), &sym)) return fail(ko, "symbol update");
    is_klp[i] = true;
    ++report.klp_symbols;
  }
  elf_flagdata(syms, ELF_C_SET, ELF_F_DIRTY);

  // Split every relocation section; buffers must live until elf_update.
  std::vector<std::unique_ptr<std::vector<uint8_t>>> buffers;
  struct NewSection {
    std::string name;
    size_t target;
    std::vector<uint8_t>* data;
  };
  std::vector<NewSection> added;
  std::vector<Elf_Scn*> rela_sections;
  for (Elf_Scn* s = elf_nextscn(elf, nullptr); s; s = elf_nextscn(elf, s)) {
    GElf_Shdr sh;
    if (gelf_getshdr(s, &sh) && sh.sh_type == SHT_RELA && !(sh.sh_flags & SHF_RELA_LIVEPATCH)) rela_sections.push_back(s);
  }
  for (Elf_Scn* s : rela_sections) {
    GElf_Shdr sh;
    gelf_getshdr(s, &sh);
    if (sh.sh_link != symtab_index) continue;
    Elf_Data* d = elf_getdata(s, nullptr);
    if (!d || d->d_size == 0) continue;
    size_t n = d->d_size / sizeof(Elf64_Rela);
    auto keep = std::make_unique<std::vector<uint8_t>>();
    auto moved = std::make_unique<std::vector<uint8_t>>();
    for (size_t i = 0; i < n; ++i) {
      GElf_Rela r;
      if (!gelf_getrela(d, static_cast<int>(i), &r)) return fail(ko, "relocation");
      size_t sym = GELF_R_SYM(r.r_info);
      if (sym >= nsyms) return make_error(ExitCode::bad_input, "{}: relocation names symbol {} of {}", ko.string(), sym, nsyms);
      auto& dst = is_klp[sym] ? *moved : *keep;
      const uint8_t* p = reinterpret_cast<const uint8_t*>(&r);
      dst.insert(dst.end(), p, p + sizeof(Elf64_Rela));
    }
    if (moved->empty()) continue;
    report.klp_relocations += moved->size() / sizeof(Elf64_Rela);
    Elf_Scn* target = elf_getscn(elf, sh.sh_info);
    GElf_Shdr tsh;
    if (!target || !gelf_getshdr(target, &tsh)) return fail(ko, "relocation target");
    const char* tname = elf_strptr(elf, shstrndx, tsh.sh_name);
    if (!tname) return fail(ko, "relocation target name");
    d->d_buf = keep->empty() ? nullptr : keep->data();
    d->d_size = keep->size();
    elf_flagdata(d, ELF_C_SET, ELF_F_DIRTY);
    buffers.push_back(std::move(keep));
    added.push_back({".klp.rela." + target_object + "." + tname, sh.sh_info, moved.get()});
    buffers.push_back(std::move(moved));
  }

  // New section names go at the end of the section name table.
  Elf_Scn* shstr_scn = elf_getscn(elf, shstrndx);
  Elf_Data* shstr = elf_getdata(shstr_scn, nullptr);
  auto names =
      std::make_unique<std::vector<uint8_t>>(static_cast<uint8_t*>(shstr->d_buf), static_cast<uint8_t*>(shstr->d_buf) + shstr->d_size);
  std::vector<size_t> name_offsets;
  for (const auto& a : added) {
    name_offsets.push_back(names->size());
    names->insert(names->end(), a.name.begin(), a.name.end());
    names->push_back(0);
  }
  shstr->d_buf = names->data();
  shstr->d_size = names->size();
  elf_flagdata(shstr, ELF_C_SET, ELF_F_DIRTY);
  buffers.push_back(std::move(names));

  for (size_t i = 0; i < added.size(); ++i) {
    Elf_Scn* s = elf_newscn(elf);
    if (!s) return fail(ko, "new section");
    GElf_Shdr sh{};
    sh.sh_name = static_cast<Elf64_Word>(name_offsets[i]);
    sh.sh_type = SHT_RELA;
    sh.sh_flags = SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH;
    sh.sh_link = static_cast<Elf64_Word>(symtab_index);
    sh.sh_info = static_cast<Elf64_Word>(added[i].target);
    sh.sh_addralign = 8;
    sh.sh_entsize = sizeof(Elf64_Rela);
    Elf_Data* d = elf_newdata(s);
    if (!d) return fail(ko, "new section data");
    d->d_buf = added[i].data->data();
    d->d_size = added[i].data->size();
    d->d_type = ELF_T_BYTE;
    d->d_align = 8;
    if (!gelf_update_shdr(s, &sh)) return fail(ko, "new section header");
    ++report.klp_sections;
  }
  if (elf_update(elf, ELF_C_WRITE) < 0) return fail(ko, "writing");
  return report;
}

}  // namespace rr::klp
