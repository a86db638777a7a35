#include "elf/writer.h"

#include "elf/handle.h"

#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

namespace rr::obj {

namespace {

Error elf_failure(const std::filesystem::path& path, std::string_view what) {
  const char* msg = elf_errmsg(-1);
  return make_error(ExitCode::failure, "writing {}: {}: {}", path.string(), what, msg ? msg : "libelf error");
}

// Names go into a string table; offsets are handed out as they are added.
class StringTable {
 public:
  StringTable() { bytes_.push_back(0); }
  uint32_t add(const std::string& s) {
    if (s.empty()) return 0;
    auto it = offsets_.find(s);
    if (it != offsets_.end()) return it->second;
    uint32_t off = static_cast<uint32_t>(bytes_.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    bytes_.push_back(0);
    offsets_[s] = off;
    return off;
  }
  Bytes& bytes() { return bytes_; }

 private:
  Bytes bytes_;
  std::map<std::string, uint32_t> offsets_;
};

}  // namespace

Status write_object(const obj::Object& o, const std::filesystem::path& path) {
  RR_ASSIGN(elf::ElfHandle out, elf::ElfHandle::open(path, elf::ElfHandle::Mode::create));
  Elf* elf = out.get();
  Elf64_Ehdr* eh = elf64_newehdr(elf);
  if (!eh) {
    return elf_failure(path, "ELF header");
  }
  eh->e_ident[EI_DATA] = ELFDATA2LSB;
  eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
  eh->e_type = ET_REL;
  eh->e_machine = EM_X86_64;
  eh->e_version = EV_CURRENT;

  // Symbol order: null, locals, then globals; remember where each model symbol went.
  std::vector<uint32_t> order;
  for (const auto& s : o.symbols)
    if (s.index != 0 && s.bind == STB_LOCAL) order.push_back(s.index);
  uint32_t first_global = static_cast<uint32_t>(order.size()) + 1;
  for (const auto& s : o.symbols)
    if (s.index != 0 && s.bind != STB_LOCAL) order.push_back(s.index);
  std::vector<uint32_t> new_index(o.symbols.size(), 0);
  for (size_t i = 0; i < order.size(); ++i) new_index[order[i]] = static_cast<uint32_t>(i + 1);

  // Data buffers must outlive elf_update: keep them here.
  std::vector<std::unique_ptr<Bytes>> buffers;
  StringTable shstr, str;
  auto add_section = [&](const std::string& name, uint32_t type, uint64_t flags, uint64_t align, uint64_t entsize, Bytes bytes,
                         uint64_t nobits_size) -> Result<size_t> {
    Elf_Scn* scn = elf_newscn(elf);
    if (!scn) return elf_failure(path, "new section " + name);
    Elf64_Shdr* sh = elf64_getshdr(scn);
    sh->sh_name = shstr.add(name);
    sh->sh_type = type;
    sh->sh_flags = flags;
    sh->sh_addralign = align ? align : 1;
    sh->sh_entsize = entsize;
    Elf_Data* d = elf_newdata(scn);
    if (!d) return elf_failure(path, "data of " + name);
    buffers.push_back(std::make_unique<Bytes>(std::move(bytes)));
    d->d_buf = buffers.back()->empty() ? nullptr : buffers.back()->data();
    d->d_size = type == SHT_NOBITS ? nobits_size : buffers.back()->size();
    d->d_type = ELF_T_BYTE;
    d->d_align = sh->sh_addralign;
    return elf_ndxscn(scn);
  };

  // Content sections keep their model index (the model's index 0 is the null section libelf makes itself).
  for (size_t i = 1; i < o.sections.size(); ++i) {
    const obj::Section& s = o.sections[i];
    auto r = add_section(s.name, s.type, s.flags, s.align, s.entry_size, s.data, s.size);
    if (!r) {
      return r.error();
    }
    if (*r != i) {
      return make_error(ExitCode::failure, "writing {}: section {} landed at index {}", path.string(), i, *r);
    }
  }
  size_t symtab_index = o.sections.size();
  // Relocation sections come after the symbol table so that its index is known when they are written.
  Bytes symtab;
  auto put_sym = [&](const obj::Symbol& s, uint32_t name_off) {
    Elf64_Sym e{};
    e.st_name = name_off;
    e.st_info = static_cast<unsigned char>(ELF64_ST_INFO(s.bind, s.type));
    e.st_other = s.other;
    e.st_shndx = s.shndx;
    e.st_value = s.value;
    e.st_size = s.size;
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&e);
    symtab.insert(symtab.end(), p, p + sizeof e);
  };
  put_sym(obj::Symbol{}, 0);
  for (uint32_t idx : order) {
    const obj::Symbol& s = o.symbols[idx];
    put_sym(s, s.is_section() ? 0 : str.add(s.name));
  }
  auto sr = add_section(".symtab", SHT_SYMTAB, 0, 8, sizeof(Elf64_Sym), std::move(symtab), 0);
  if (!sr || *sr != symtab_index) {
    return sr ? make_error(ExitCode::failure, "writing {}: symbol table misplaced", path.string()) : sr.error();
  }
  auto strr = add_section(".strtab", SHT_STRTAB, 0, 1, 0, str.bytes(), 0);
  if (!strr) {
    return strr.error();
  }
  {
    Elf64_Shdr* sh = elf64_getshdr(elf_getscn(elf, symtab_index));
    sh->sh_link = static_cast<uint32_t>(*strr);
    sh->sh_info = first_global;
  }
  for (size_t i = 1; i < o.sections.size(); ++i) {
    const obj::Section& s = o.sections[i];
    if (s.relas.empty()) continue;
    Bytes rb;
    for (const auto& r : s.relas) {
      if (r.symbol >= new_index.size() || (r.symbol != 0 && new_index[r.symbol] == 0)) {
        return make_error(ExitCode::failure, "writing {}: relocation in {} names a symbol that is not written", path.string(), s.name);
      }
      Elf64_Rela e{r.offset, ELF64_R_INFO(new_index[r.symbol], r.type), r.addend};
      const uint8_t* p = reinterpret_cast<const uint8_t*>(&e);
      rb.insert(rb.end(), p, p + sizeof e);
    }
    auto rr_ = add_section(".rela" + s.name, SHT_RELA, SHF_INFO_LINK, 8, sizeof(Elf64_Rela), std::move(rb), 0);
    if (!rr_) {
      return rr_.error();
    }
    Elf64_Shdr* sh = elf64_getshdr(elf_getscn(elf, *rr_));
    sh->sh_link = static_cast<uint32_t>(symtab_index);
    sh->sh_info = static_cast<uint32_t>(i);
  }
  size_t shstr_index = 0;
  {
    // The section-name table names itself, so add its name before its bytes are taken.
    shstr.add(".shstrtab");
    auto r = add_section(".shstrtab", SHT_STRTAB, 0, 1, 0, shstr.bytes(), 0);
    if (!r) {
      return r.error();
    }
    shstr_index = *r;
    // add_section copied the bytes before ".shstrtab"'s own name offset existed in a copy: refresh it.
    Elf_Data* d = elf_getdata(elf_getscn(elf, shstr_index), nullptr);
    buffers.push_back(std::make_unique<Bytes>(shstr.bytes()));
    d->d_buf = buffers.back()->data();
    d->d_size = buffers.back()->size();
  }
  if (shstr_index >= SHN_LORESERVE) {
    return make_error(ExitCode::failure, "writing {}: too many sections", path.string());
  }
  elf64_getehdr(elf)->e_shstrndx = static_cast<Elf64_Half>(shstr_index);
  RR_CHECK(out.write());
  return ok_status();
}

}  // namespace rr::obj
