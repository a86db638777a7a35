// Synthetic kernel inputs for the analysis tests: ELF objects written with libelf, BTF built with libbpf's
// btf__add_* API, bzImages wrapped around a payload the way the x86 boot protocol lays them out.
#pragma once

#include "common/file.h"
#include "test_util.h"

#include <bpf/btf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace rr::test {

struct SectionSpec {
  std::string name;
  uint32_t type = SHT_PROGBITS;
  uint64_t flags = SHF_ALLOC;
  uint64_t address = 0;
  Bytes data;
};

struct SymbolSpec {
  std::string name;
  uint64_t value = 0;
  uint64_t size = 0;
  unsigned char type = STT_FUNC;
  unsigned char bind = STB_GLOBAL;
  std::string section;  // empty: SHN_ABS
};

inline Bytes to_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Writes an x86-64 ET_EXEC ELF with the given sections and (when any) a .symtab, and returns its bytes.
inline Bytes build_elf(const std::vector<SectionSpec>& sections, const std::vector<SymbolSpec>& symbols) {
  if (elf_version(EV_CURRENT) == EV_NONE) throw std::runtime_error("libelf");
  TempDir dir;
  std::string path = (dir.path() / "out.elf").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("open");
  Elf* e = elf_begin(fd, ELF_C_WRITE, nullptr);
  if (!e || !gelf_newehdr(e, ELFCLASS64)) throw std::runtime_error(elf_errmsg(-1));
  GElf_Ehdr eh;
  gelf_getehdr(e, &eh);
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_machine = EM_X86_64;
  eh.e_type = ET_EXEC;
  eh.e_version = EV_CURRENT;

  // Section name table content.
  std::string shstr(1, '\0');
  auto add_name = [&](const std::string& n) {
    size_t off = shstr.size();
    shstr += n;
    shstr.push_back('\0');
    return off;
  };
  // Keep every buffer alive until elf_update.
  std::vector<Bytes> keep;
  std::map<std::string, size_t> index;
  auto add_section = [&](const std::string& name, uint32_t type, uint64_t flags, uint64_t addr, Bytes data, Elf_Type dtype,
                         uint64_t entsize) {
    Elf_Scn* scn = elf_newscn(e);
    Elf_Data* d = elf_newdata(scn);
    keep.push_back(std::move(data));
    d->d_buf = keep.back().empty() ? nullptr : keep.back().data();
    d->d_size = keep.back().size();
    d->d_type = dtype;
    d->d_align = 1;
    d->d_version = EV_CURRENT;
    GElf_Shdr sh;
    gelf_getshdr(scn, &sh);
    sh.sh_name = static_cast<uint32_t>(add_name(name));
    sh.sh_type = type;
    sh.sh_flags = flags;
    sh.sh_addr = addr;
    sh.sh_entsize = entsize;
    sh.sh_addralign = 1;
    gelf_update_shdr(scn, &sh);
    index[name] = elf_ndxscn(scn);
    return scn;
  };
  keep.reserve(sections.size() + 4);
  for (const auto& s : sections) add_section(s.name, s.type, s.flags, s.address, s.data, ELF_T_BYTE, 0);
  if (!symbols.empty()) {
    std::string strtab(1, '\0');
    Bytes symtab(sizeof(Elf64_Sym), 0);  // the null symbol
    // Locals first, as ELF requires.
    std::vector<SymbolSpec> ordered;
    for (const auto& s : symbols)
      if (s.bind == STB_LOCAL) ordered.push_back(s);
    size_t locals = ordered.size() + 1;
    for (const auto& s : symbols)
      if (s.bind != STB_LOCAL) ordered.push_back(s);
    for (const auto& s : ordered) {
      Elf64_Sym sym{};
      sym.st_name = static_cast<uint32_t>(strtab.size());
      strtab += s.name;
      strtab.push_back('\0');
      sym.st_value = s.value;
      sym.st_size = s.size;
      sym.st_info = static_cast<unsigned char>(ELF64_ST_INFO(s.bind, s.type));
      sym.st_shndx = s.section.empty() ? SHN_ABS : static_cast<uint16_t>(index.at(s.section));
      const auto* p = reinterpret_cast<const uint8_t*>(&sym);
      symtab.insert(symtab.end(), p, p + sizeof sym);
    }
    Elf_Scn* str = add_section(".strtab", SHT_STRTAB, 0, 0, to_bytes(strtab), ELF_T_BYTE, 0);
    Elf_Scn* sym = add_section(".symtab", SHT_SYMTAB, 0, 0, symtab, ELF_T_SYM, sizeof(Elf64_Sym));
    GElf_Shdr sh;
    gelf_getshdr(sym, &sh);
    sh.sh_link = static_cast<uint32_t>(elf_ndxscn(str));
    sh.sh_info = static_cast<uint32_t>(locals);
    gelf_update_shdr(sym, &sh);
  }
  size_t shstr_name = add_name(".shstrtab");
  Elf_Scn* shs = elf_newscn(e);
  Elf_Data* d = elf_newdata(shs);
  keep.push_back(to_bytes(shstr));
  d->d_buf = keep.back().data();
  d->d_size = keep.back().size();
  d->d_type = ELF_T_BYTE;
  d->d_align = 1;
  GElf_Shdr sh;
  gelf_getshdr(shs, &sh);
  sh.sh_name = static_cast<uint32_t>(shstr_name);
  sh.sh_type = SHT_STRTAB;
  gelf_update_shdr(shs, &sh);
  eh.e_shstrndx = static_cast<uint16_t>(elf_ndxscn(shs));
  gelf_update_ehdr(e, &eh);
  if (elf_update(e, ELF_C_WRITE) < 0) throw std::runtime_error(elf_errmsg(-1));
  elf_end(e);
  ::close(fd);
  auto bytes = read_file_bytes(path);
  if (!bytes) throw std::runtime_error(bytes.error().message);
  return *bytes;
}

struct BtfSpec {
  bool dev_iommu = true;
  bool require_direct = false;
  bool attach_func = true;
  bool resv_func = true;
};

// A small vmlinux-like BTF: struct dev_iommu (with an anonymous union, and require_direct as a 1-bit field
// when asked), the special-section entry structs, and FUNCs for the intel driver callbacks.
inline Bytes build_btf(const BtfSpec& spec) {
  struct btf* b = btf__new_empty();
  if (!b) throw std::runtime_error("btf__new_empty");
  int u32 = btf__add_int(b, "unsigned int", 4, 0);
  int u64 = btf__add_int(b, "long long unsigned int", 8, 0);
  int intt = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
  int ptr = btf__add_ptr(b, 0);
  if (spec.dev_iommu) {
    int anon = btf__add_union(b, nullptr, 8);
    btf__add_field(b, "fwspec", ptr, 0, 0);
    btf__add_field(b, "iopf_param", ptr, 0, 0);
    btf__add_struct(b, "dev_iommu", 24);
    btf__add_field(b, "lock", u64, 0, 0);
    btf__add_field(b, nullptr, anon, 64, 0);
    btf__add_field(b, "max_pasids", u32, 128, 0);
    btf__add_field(b, "attach_deferred", u32, 160, 1);
    btf__add_field(b, "pci_32bit_workaround", u32, 161, 1);
    if (spec.require_direct) btf__add_field(b, "require_direct", u32, 162, 1);
  }
  btf__add_struct(b, "bug_entry", 12);
  btf__add_field(b, "bug_addr_disp", intt, 0, 0);
  btf__add_struct(b, "jump_entry", 16);
  btf__add_field(b, "code", intt, 0, 0);
  btf__add_struct(b, "alt_instr", 12);
  btf__add_field(b, "instr_offset", intt, 0, 0);
  btf__add_struct(b, "orc_entry", 6);
  btf__add_struct(b, "exception_table_entry", 12);
  btf__add_struct(b, "static_call_site", 8);
  int proto = btf__add_func_proto(b, intt);
  btf__add_func_param(b, "domain", ptr);
  btf__add_func_param(b, "dev", ptr);
  if (spec.attach_func) btf__add_func(b, "intel_iommu_attach_device", BTF_FUNC_STATIC, proto);
  int proto2 = btf__add_func_proto(b, 0);
  btf__add_func_param(b, "device", ptr);
  btf__add_func_param(b, "head", ptr);
  if (spec.resv_func) btf__add_func(b, "intel_iommu_get_resv_regions", BTF_FUNC_STATIC, proto2);
  btf__add_func(b, "iommu_alloc_resv_region", BTF_FUNC_GLOBAL, proto2);
  uint32_t size = 0;
  const void* raw = btf__raw_data(b, &size);
  Bytes out(static_cast<const uint8_t*>(raw), static_cast<const uint8_t*>(raw) + size);
  btf__free(b);
  return out;
}

// A minimal x86 bzImage: setup sectors with the "HdrS" header, a version string, then the protected-mode part
// with the payload at payload_offset.
inline Bytes build_bzimage(const Bytes& payload, uint8_t setup_sects = 3,
                           const std::string& version = "6.1.0-99-test (tester@example) #1 SMP") {
  size_t code = (size_t{setup_sects} + 1) * 512;
  const uint32_t payload_offset = 0x180;
  Bytes img(code + payload_offset, 0);
  img[0x1f1] = setup_sects;
  img[0x1fe] = 0x55;
  img[0x1ff] = 0xaa;
  std::memcpy(&img[0x202], "HdrS", 4);
  uint16_t proto = 0x020f;
  std::memcpy(&img[0x206], &proto, 2);
  uint16_t kv = 0x100;  // the string at 0x200 + kv
  std::memcpy(&img[0x20e], &kv, 2);
  std::memcpy(&img[0x300], version.c_str(), version.size() + 1);
  uint32_t len = static_cast<uint32_t>(payload.size());
  std::memcpy(&img[0x248], &payload_offset, 4);
  std::memcpy(&img[0x24c], &len, 4);
  img.insert(img.end(), payload.begin(), payload.end());
  img.resize(img.size() + 64, 0);  // the kernel's trailing padding
  return img;
}

// Compresses `data` with a command-line compressor ("gzip -9 -n", "lz4 -l", ...) and appends the decompressed
// size as the kernel's build does.
inline Bytes compress_with(const std::string& command, const Bytes& data) {
  TempDir dir;
  auto in = dir.path() / "in";
  auto out = dir.path() / "out";
  if (!write_file_text(in, std::string_view(reinterpret_cast<const char*>(data.data()), data.size()))) throw std::runtime_error("write");
  auto r = run_command(fmt::format("{} -c < {} > {}", command, in.string(), out.string()));
  if (r.exit_code != 0) throw std::runtime_error(command + " failed: " + r.output);
  auto bytes = read_file_bytes(out);
  if (!bytes) throw std::runtime_error(bytes.error().message);
  Bytes b = *bytes;
  uint32_t size = static_cast<uint32_t>(data.size());
  const auto* p = reinterpret_cast<const uint8_t*>(&size);
  b.insert(b.end(), p, p + 4);
  return b;
}

// A vmlinux-like ELF: .text at the x86-64 default link address, a banner in .rodata, optionally .BTF and symbols.
inline Bytes build_vmlinux(const Bytes& btf, bool with_symbols,
                           const std::string& banner =
                               "Linux version 6.1.0-99-test (tester@example) (gcc-12 (Debian "
                               "12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP\n") {
  std::vector<SectionSpec> secs;
  secs.push_back({".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 0xffffffff81000000ull, Bytes(0x400, 0xcc)});
  Bytes ro = to_bytes(std::string("padding") + std::string(1, '\0') + banner + std::string(1, '\0'));
  secs.push_back({".rodata", SHT_PROGBITS, SHF_ALLOC, 0xffffffff82000000ull, ro});
  if (!btf.empty()) secs.push_back({".BTF", SHT_PROGBITS, SHF_ALLOC, 0xffffffff82100000ull, btf});
  secs.push_back({".data", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, 0xffffffff82a00000ull, Bytes(0x100, 0)});
  secs.push_back({".bss", SHT_NOBITS, SHF_ALLOC | SHF_WRITE, 0xffffffff83000000ull, {}});
  std::vector<SymbolSpec> syms;
  if (with_symbols) {
    syms = {
        {"_text", 0xffffffff81000000ull, 0, STT_NOTYPE, STB_GLOBAL, ".text"},
        {"intel_iommu_attach_device", 0xffffffff81000100ull, 0x80, STT_FUNC, STB_LOCAL, ".text"},
        {"intel_iommu_attach_device.cold", 0xffffffff81000300ull, 0x10, STT_FUNC, STB_LOCAL, ".text"},
        {"intel_iommu_get_resv_regions", 0xffffffff81000200ull, 0x40, STT_FUNC, STB_LOCAL, ".text"},
        {"dup_helper", 0xffffffff81000280ull, 0x8, STT_FUNC, STB_LOCAL, ".text"},
        {"dup_helper", 0xffffffff81000180ull, 0x8, STT_FUNC, STB_LOCAL, ".text"},
        {"dmar_rmrr_units", 0xffffffff82a00010ull, 0x10, STT_OBJECT, STB_LOCAL, ".data"},
        {"dmar_global_lock", 0xffffffff82a00040ull, 0x28, STT_OBJECT, STB_GLOBAL, ".data"},
        {"some_const", 0xffffffff82000000ull, 0x8, STT_OBJECT, STB_GLOBAL, ".rodata"},
        {"weak_fn", 0xffffffff81000390ull, 0x8, STT_FUNC, STB_WEAK, ".text"},
    };
  }
  return build_elf(secs, syms);
}

}  // namespace rr::test
