// Writes the synthetic seed inputs of the fuzz targets: the unit tests' own generators (analysis_fixtures.h,
// iommu_fixtures.h, kallsyms_fixtures.h) produce ELF files, BTF, bzImages of every compression, kallsyms and
// config text, kallsyms tables of every layout, and intel-iommu source in both driver shapes.
//   fuzz_seeds CORPUS_ROOT                  one directory per target below it
//   fuzz_seeds --image VMLINUZ DIR NAME     image_kallsyms seeds cut from a real image's .rodata (real_image_seeds)
#include "analysis/bzimage.h"
#include "analysis/image_kallsyms.h"
#include "analysis_fixtures.h"
#include "elf/elf_file.h"
#include "host/dmar.h"
#include "iommu_fixtures.h"
#include "kallsyms_fixtures.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>

namespace fs = std::filesystem;
using namespace rr;

namespace {

fs::path g_root;

void put(const std::string& target, const std::string& name, const Bytes& bytes) {
  fs::create_directories(g_root / target);
  auto st = write_file_text(g_root / target / name, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
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

// The synthetic .rodata the image_kallsyms target starts from must decode as the target calls the decoder.
void check_decodes(const std::string& name, const Bytes& rodata) {
  auto k = analysis::decode_kallsyms_tables(ByteView(rodata.data(), rodata.size()), test::kRodataAddress, test::kTextAddress, name);
  if (!k) throw std::runtime_error(fmt::format("{}: {}", name, k.error().message));
}

// Seeds of image_kallsyms_fuzz from a real image (the real tables are MBs; a seed stays under 64 KiB):
//   NAME-token-window.bin    .rodata verbatim around the token table and token index (16 KiB either side)
//   NAME-markers-window.bin  .rodata verbatim around the markers: the end of the names, the start of what follows
//   NAME-head.bin            the image's own tables cut to their first 1024 symbols (past _text) and laid out
//                            again in the image's layout: real token table, index, names, markers, offsets and
//                            base, num_syms rewritten, seqs_of_names recomputed; it decodes as the target calls it
// Offsets are kept modulo 8, so every table keeps its alignment at the target's .rodata address.
int real_image_seeds(const fs::path& vmlinuz, const fs::path& dir, const std::string& name) {
  using analysis::KallsymsAddressForm;
  using analysis::KallsymsLayout;
  auto image = analysis::read_kernel_image(vmlinuz);
  if (!image) throw std::runtime_error(image.error().message);
  auto elf = elf::ElfFile::from_bytes(std::move(image->elf), vmlinuz.string());
  if (!elf) throw std::runtime_error(elf.error().message);
  auto k = analysis::decode_image_kallsyms(*elf, vmlinuz.string());
  if (!k) throw std::runtime_error(k.error().message);
  const elf::ElfSection* text = elf->section(".text");
  const elf::ElfSection* rodata_section = elf->section(".rodata");
  auto rodata_bytes = elf->section_data(".rodata");
  if (!text || !rodata_section || !rodata_bytes) throw std::runtime_error("no .text or .rodata");
  ByteView ro = *rodata_bytes;
  uint64_t ro_address = rodata_section->address;
  std::map<std::string, analysis::KallsymsTable> table;
  for (const auto& t : k->tables) table[t.name] = t;
  auto off = [&](const std::string& t) -> size_t {
    if (!table.count(t)) throw std::runtime_error("no " + t);
    return static_cast<size_t>(table[t].address - ro_address);
  };
  auto slice = [&](size_t from, size_t to) {
    from = std::min(from, ro.size()) & ~size_t{7};
    to = std::min({to, ro.size(), from + 65536});
    return Bytes(ro.data() + from, ro.data() + to);
  };
  auto write = [&](const std::string& suffix, const Bytes& b) {
    auto st = write_file_text(dir / (name + suffix), std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    if (!st.ok()) throw std::runtime_error(st.error().message);
    std::printf("%s%s: %zu bytes\n", name.c_str(), suffix.c_str(), b.size());
  };
  constexpr size_t kAround = 16384;
  size_t tokens = off("kallsyms_token_table"), index_end = off("kallsyms_token_index") + 512;
  write("-token-window.bin", slice(tokens > kAround ? tokens - kAround : 0, index_end + kAround));
  size_t markers = off("kallsyms_markers"), markers_end = markers + table["kallsyms_markers"].size;
  write("-markers-window.bin", slice(markers > kAround ? markers - kAround : 0, markers_end + kAround));

  // The head: n symbols, enough to hold _text and _stext.
  const auto& syms = k->symbols.symbols();
  if (syms.size() != k->table_entries) throw std::runtime_error("the image has nameless kallsyms entries");
  size_t n = 1024;
  for (size_t i = 0; i < syms.size(); ++i)
    if (syms[i].name == "_text" || syms[i].name == "_stext") n = std::max(n, (i + 256) / 256 * 256);
  n = std::min(n, k->table_entries);
  const uint8_t* d = ro.data();
  size_t names = off("kallsyms_names"), pos = names;
  for (size_t i = 0; i < n; ++i) {
    size_t len = d[pos++];
    if (k->long_names && (len & 0x80)) len = (len & 0x7f) | (size_t{d[pos++]} << 7);
    pos += len;
  }
  Bytes names_head(d + names, d + pos);
  bool absolute = k->address_form == KallsymsAddressForm::absolute;
  size_t entry = absolute ? 8 : 4;
  size_t offsets = off(absolute ? "kallsyms_addresses" : "kallsyms_offsets");
  size_t alignment = k->layout == KallsymsLayout::num_syms_first_no_base ? 4 : 8;
  // Addresses move by `delta` so that _text lands on the target's .text.
  uint64_t delta = test::kTextAddress - text->address;

  Bytes r;
  auto label = [&] {
    while (r.size() % alignment) r.push_back(0);
  };
  auto put = [&](const void* p, size_t len) { r.insert(r.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + len); };
  auto put_offsets = [&] {
    label();
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* e = d + offsets + entry * i;
      if (absolute) {
        uint64_t a;
        std::memcpy(&a, e, 8);
        if (a >= 0xffff800000000000ull) a += delta;
        put(&a, 8);
      } else if (k->address_form == KallsymsAddressForm::place_relative) {
        int32_t v;
        std::memcpy(&v, e, 4);
        uint64_t a = ro_address + offsets + 4 * i + static_cast<uint64_t>(static_cast<int64_t>(v)) + delta;
        int32_t w = static_cast<int32_t>(a - (test::kRodataAddress + r.size()));
        put(&w, 4);
      } else {
        put(e, 4);
      }
    }
  };
  auto put_base = [&] {
    label();
    uint64_t base;
    std::memcpy(&base, d + off("kallsyms_relative_base"), 8);
    base += delta;
    put(&base, 8);
  };
  auto put_num_syms = [&] {
    label();
    uint32_t v = static_cast<uint32_t>(n);
    put(&v, 4);
  };
  auto put_names = [&] {
    label();
    put(names_head.data(), names_head.size());
  };
  auto put_markers = [&] {
    label();
    put(d + markers, 4 * ((n + 255) / 256));
  };
  auto put_seqs = [&] {
    label();
    std::vector<uint32_t> order(n);
    for (uint32_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return syms[a].name < syms[b].name; });
    for (uint32_t i : order) {
      uint8_t b[3] = {static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
      put(b, 3);
    }
  };
  auto put_tokens = [&] {
    label();
    put(d + tokens, table["kallsyms_token_table"].size);
    label();
    put(d + off("kallsyms_token_index"), 512);
  };
  // 256 real bytes before the first table, as in the image (a multiple of 8: the tables keep their alignment).
  size_t start = ro.size();
  for (const auto& t : k->tables) start = std::min<size_t>(start, t.address - ro_address);
  size_t lead = std::min<size_t>(256, start) & ~size_t{7};
  put(d + start - lead, lead);
  switch (k->layout) {
    case KallsymsLayout::absolute:
      put_offsets();
      put_num_syms();
      put_names();
      put_markers();
      put_tokens();
      break;
    case KallsymsLayout::offsets_first:
      put_offsets();
      put_base();
      put_num_syms();
      put_names();
      put_markers();
      put_tokens();
      break;
    case KallsymsLayout::offsets_first_seqs:
      put_offsets();
      put_base();
      put_num_syms();
      put_names();
      put_markers();
      put_seqs();
      put_tokens();
      break;
    case KallsymsLayout::num_syms_first:
      put_num_syms();
      put_names();
      put_markers();
      put_tokens();
      put_offsets();
      put_base();
      put_seqs();
      break;
    case KallsymsLayout::num_syms_first_no_base:
      put_num_syms();
      put_names();
      put_markers();
      put_tokens();
      put_offsets();
      put_seqs();
      break;
  }
  // And 256 after the last.
  size_t end = 0;
  for (const auto& t : k->tables) end = std::max<size_t>(end, t.address - ro_address + t.size);
  put(d + end, std::min<size_t>(256, ro.size() - end));
  auto again = analysis::decode_kallsyms_tables(ByteView(r.data(), r.size()), test::kRodataAddress, test::kTextAddress, name);
  if (!again || again->symbols.size() != n)
    throw std::runtime_error(
        fmt::format("{}-head.bin does not decode to its {} symbols: {}", name, n, again ? "a different count" : again.error().message));
  write("-head.bin", r);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string_view(argv[1]) == "--image") {
    try {
      return real_image_seeds(argv[2], argv[3], argv[4]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_seeds: %s\n", e.what());
      return 1;
    }
  }
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds CORPUS_ROOT | fuzz_seeds --image VMLINUZ DIR NAME\n");
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
    put_text("system_map", "debian-placeholder.map",
             "ffffffffffffffff B The real System.map is in the linux-image-6.1.0-56-amd64-dbg package\n");

    // kallsyms tables in .rodata: every layout and address form, one-byte and two-byte name lengths, the
    // kallsyms_* self entries of 6.11+; 200 symbols each.
    struct ImageCase {
      const char* name;
      analysis::KallsymsLayout layout;
      analysis::KallsymsAddressForm form;
      size_t alignment;
      bool percpu;
      size_t long_names;
      bool self_symbols;
    };
    using L = analysis::KallsymsLayout;
    using F = analysis::KallsymsAddressForm;
    for (const ImageCase& c : {ImageCase{"absolute", L::absolute, F::absolute, 8, false, 0, false},
                               ImageCase{"v5.10", L::offsets_first, F::absolute_percpu, 8, true, 0, false},
                               ImageCase{"v6.1.42", L::offsets_first_seqs, F::absolute_percpu, 8, true, 0, false},
                               ImageCase{"v6.4-long-names", L::num_syms_first, F::absolute_percpu, 8, true, 3, false},
                               ImageCase{"v6.15-self", L::num_syms_first, F::base_relative, 8, false, 0, true},
                               ImageCase{"v7.0-self", L::num_syms_first_no_base, F::place_relative, 4, false, 0, true}}) {
      test::KallsymsSpec spec{c.layout, c.form, c.alignment, test::sample_kallsyms(196, c.percpu, c.long_names)};
      spec.self_symbols = c.self_symbols;
      Bytes rodata = test::KallsymsEncoder(spec).rodata();
      std::string name = fmt::format("synthetic-{}.rodata", c.name);
      check_decodes(name, rodata);
      put("image_kallsyms", name, rodata);
    }
    // Every 4-byte position reads as num_syms 8195 followed by a long names stream: quadratic without the
    // decoder's search budget (over a minute under ASan), an error in milliseconds with it.
    Bytes bomb = test::names_walk_bomb(16);
    if (analysis::decode_kallsyms_tables(ByteView(bomb.data(), bomb.size()), test::kRodataAddress, test::kTextAddress, "bomb"))
      throw std::runtime_error("names-walk-bomb.rodata decodes");
    put("image_kallsyms", "names-walk-bomb.rodata", bomb);

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
    for (const auto& [name, command] : std::vector<std::pair<std::string, std::string>>{{"gzip", "gzip -9 -n"},
                                                                                        {"xz", "xz --check=crc32"},
                                                                                        {"lzma", "lzma"},
                                                                                        {"zstd", "zstd -q"},
                                                                                        {"lz4", "lz4 -l -q"},
                                                                                        {"bzip2", "bzip2"}}) {
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
             std::string(1, '\0') +
                 "0x12345678\tiommu_alloc_resv_region\tvmlinux\tEXPORT_SYMBOL_GPL\t\n"
                 "0x00000000\tns_sym\tdrivers/x/y\tEXPORT_SYMBOL\tNS\n");
    put_text("kbuild", "banner.txt",
             std::string(1, '\1') +
                 "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
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
