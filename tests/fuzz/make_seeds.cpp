// Writes the synthetic seed inputs of the fuzz targets: the unit tests' own generators (analysis_fixtures.h,
// iommu_fixtures.h) produce ELF files, BTF, bzImages of every compression, kallsyms and config text, and
// intel-iommu source in both driver shapes. Usage: fuzz_seeds CORPUS_ROOT (one directory per target below it).
#include "analysis/dmar.h"
#include "analysis_fixtures.h"
#include "iommu_fixtures.h"

#include <fmt/core.h>

#include <cstdio>
#include <exception>

namespace fs = std::filesystem;
using namespace rr;

namespace {

fs::path g_root;

void put(const std::string& target, const std::string& name, const Bytes& bytes) {
  fs::create_directories(g_root / target);
  auto st = write_file_text(g_root / target / name,
                            std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (!st.ok()) throw std::runtime_error(st.error().message);
}
void put_text(const std::string& target, const std::string& name, std::string_view text) {
  put(target, name, Bytes(text.begin(), text.end()));
}

std::string kallsyms(bool modules) {
  std::string s;
  auto line = [&](uint64_t a, char t, const char* n) { s += fmt::format("{:016x} {} {}\n", a, t, n); };
  line(0xffffffff81000000ull, 'T', "_text");
  line(0xffffffff81000100ull, 't', "intel_iommu_attach_device");
  line(0xffffffff81000180ull, 't', "dup_helper");
  line(0xffffffff81000190ull, 't', "dup_helper");
  line(0xffffffff81000200ull, 't', "intel_iommu_get_resv_regions");
  line(0xffffffff81000300ull, 't', "intel_iommu_attach_device.cold");
  line(0xffffffff81000310ull, 't', "domain_context_mapping.constprop.0.isra.0");
  line(0xffffffff82a00010ull, 'd', "dmar_rmrr_units");
  line(0xffffffff82a00040ull, 'D', "dmar_global_lock");
  if (modules) s += fmt::format("{:016x} t vfio_helper\t[vfio]\n", 0xffffffffc0001000ull);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds CORPUS_ROOT\n");
    return 2;
  }
  g_root = argv[1];
  try {
    // DMAR: a QEMU-like table with an RMRR through a bridge, as encode() writes it.
    dmar::Table t;
    t.revision = 1;
    t.oem_id = "BOCHS ";
    t.oem_table_id = "BXPC    ";
    t.creator_id = "BXPC";
    t.host_address_width = 39;
    t.flags = 1;
    dmar::Drhd drhd;
    drhd.flags = 1;
    drhd.register_base = 0xfed90000;
    drhd.scopes.push_back(dmar::make_scope(dmar::ScopeType::ioapic, 0xf0, {{0x1f, 0}}));
    t.drhds.push_back(drhd);
    dmar::Rmrr rmrr;
    rmrr.base = 0xbd000000;
    rmrr.limit = 0xbd0fffff;
    rmrr.scopes.push_back(dmar::make_scope(dmar::ScopeType::endpoint, 0, {{0x1c, 0}, {0, 0}}));
    rmrr.scopes.push_back(dmar::make_scope(dmar::ScopeType::bridge, 0, {{0x01, 0}}));
    t.rmrrs.push_back(rmrr);
    dmar::Atsr atsr;
    atsr.scopes.push_back(dmar::make_scope(dmar::ScopeType::bridge, 0, {{0x03, 0}}));
    t.atsrs.push_back(atsr);
    put("dmar", "synthetic-qemu-rmrr.dat", dmar::encode(t));

    // Symbols.
    put_text("kallsyms", "synthetic.txt", kallsyms(true));
    put_text("kallsyms", "hidden-addresses.txt",
             "0000000000000000 T _text\n0000000000000000 t intel_iommu_attach_device\n0000000000000000 t x\t[m]\n");
    put_text("system_map", "synthetic.map", kallsyms(false));
    put_text("system_map", "debian-placeholder.map", "ffffffffffffffff B The real System.map is in the linux-image-6.1.0-56-amd64-dbg package\n");

    // ELF, BTF, bzImage: the analysis tests' generators.
    Bytes btf_old = test::build_btf({});
    Bytes btf_new = test::build_btf({.require_direct = true});
    put("btf", "attach-check.btf", btf_old);
    put("btf", "require-direct.btf", btf_new);
    Bytes vmlinux = test::build_vmlinux(btf_old, true);
    Bytes stripped = test::build_vmlinux({}, false);
    put("elf", "vmlinux-symtab-btf.elf", vmlinux);
    put("elf", "vmlinux-stripped.elf", stripped);
    put("bzimage", "plain-vmlinux.elf", stripped);
    for (const auto& [name, command] : std::vector<std::pair<std::string, std::string>>{
             {"gzip", "gzip -9 -n"}, {"xz", "xz --check=crc32"}, {"lzma", "lzma"}, {"zstd", "zstd -q"},
             {"lz4", "lz4 -l -q"}, {"bzip2", "bzip2"}}) {
      try {
        put("bzimage", "bzimage-" + name + ".bin", test::build_bzimage(test::compress_with(command, stripped)));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_seeds: no %s seed: %s\n", name.c_str(), e.what());
      }
    }

    // Config and kbuild text.
    put_text("kconfig", "synthetic.config",
             "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14) "
             "12.2.0\"\nCONFIG_LIVEPATCH=y\nCONFIG_INTEL_IOMMU=y\n# CONFIG_LTO_CLANG is not set\nCONFIG_X=m\n"
             "CONFIG_S=\"a \\\"quoted\\\" \\\\ string\"\nCONFIG_H=0x10\n");
    put_text("kbuild", "symvers.txt",
             std::string(1, '\0') + "0x12345678\tiommu_alloc_resv_region\tvmlinux\tEXPORT_SYMBOL_GPL\t\n"
                                    "0x00000000\tns_sym\tdrivers/x/y\tEXPORT_SYMBOL\tNS\n");
    put_text("kbuild", "banner.txt",
             std::string(1, '\1') + "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
                                    "12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP\n");
    put_text("kbuild", "compiler.txt", std::string(1, '\2') + "Debian clang version 16.0.6 (15~deb12u1)");
    put_text("kbuild", "filter.txt", std::string(1, '\3') + "intel_iommu_attach_device\nvfio_helper [vfio]\n");

    // C source: both driver shapes of the unit tests, with and without the host preamble.
    put_text("transform", "modern-driver.c", test::kModernDriver);
    put_text("transform", "old-driver.c", test::kOldDriver);
    put_text("transform", "host-program.c", test::host_program(test::kModernDriver));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
