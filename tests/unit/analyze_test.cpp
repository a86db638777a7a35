// The aggregate analysis: era and patch targets from symbols + BTF, on fake root trees and explicit inputs, and
// the `relax-rmrr analyze` command over them.
#include "analysis/kernel.h"
#include "analysis/kernel_facts.h"
#include "analysis_fixtures.h"
#include "kallsyms_fixtures.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace rr;
using namespace rr::analysis;

namespace {

const std::string kRelease = "6.1.0-99-test";

// A kallsyms like Debian 6.1's around the intel driver, at a KASLR slide of `slide`.
std::string kallsyms_text(uint64_t slide, bool duplicate_resv = false, bool with_relaxable = false) {
  auto line = [&](uint64_t a, char t, const char* n) { return fmt::format("{:016x} {} {}\n", a + slide, t, n); };
  std::string s;
  s += line(0xffffffff81000000ull, 'T', "_text");
  s += line(0xffffffff81000100ull, 't', "intel_iommu_attach_device");
  if (with_relaxable) s += line(0xffffffff81000140ull, 't', "device_rmrr_is_relaxable");
  s += line(0xffffffff81000180ull, 't', "dup_helper");
  s += line(0xffffffff81000200ull, 't', "intel_iommu_get_resv_regions");
  if (duplicate_resv) s += line(0xffffffff81000250ull, 't', "intel_iommu_get_resv_regions");
  s += line(0xffffffff81000300ull, 't', "intel_iommu_attach_device.cold");
  s += line(0xffffffff81000380ull, 'T', "device_to_iommu");
  s += line(0xffffffff81000390ull, 'T', "iommu_alloc_resv_region");
  s += line(0xffffffff82a00010ull, 'd', "dmar_rmrr_units");
  s += line(0xffffffff82a00040ull, 'D', "dmar_global_lock");
  s += fmt::format("{:016x} t vfio_helper\t[vfio]\n", 0xffffffffc0001000ull);
  return s;
}

void write(const fs::path& p, std::string_view text) {
  fs::create_directories(p.parent_path());
  ASSERT_TRUE(write_file_text(p, text).ok()) << p;
}
void write_bytes(const fs::path& p, const Bytes& b) { write(p, std::string_view(reinterpret_cast<const char*>(b.data()), b.size())); }

struct FakeHost {
  test::TempDir dir;
  fs::path root() const { return dir.path(); }
  AnalyzeInputs inputs() const {
    AnalyzeInputs in;
    in.root = root();
    in.running_release = kRelease;
    return in;
  }
};

// A running 6.1-like kernel: /proc/kallsyms, BTF, ftrace list, config, headers with Module.symvers.
void populate_running(const FakeHost& h, bool require_direct,
                      const std::string& filter_functions =
                          "intel_iommu_attach_device\nintel_iommu_get_resv_regions\n"
                          "device_to_iommu\nvfio_helper [vfio]\n") {
  fs::path r = h.root();
  write(r / "proc/kallsyms", kallsyms_text(0x1e00000));
  write_bytes(r / "sys/kernel/btf/vmlinux", test::build_btf({.dev_iommu = true, .require_direct = require_direct}));
  write(r / "sys/kernel/tracing/available_filter_functions", filter_functions);
  write(r / ("boot/config-" + kRelease), "CONFIG_LIVEPATCH=y\nCONFIG_INTEL_IOMMU=y\nCONFIG_DEBUG_INFO_BTF=y\n");
  fs::path kb = r / "lib/modules" / kRelease / "build";
  write(kb / "Makefile", "# kbuild\n");
  write(kb / "Module.symvers", "0x1\tiommu_alloc_resv_region\tvmlinux\tEXPORT_SYMBOL_GPL\t\n");
  write(kb / "include/generated/utsrelease.h", fmt::format("#define UTS_RELEASE \"{}\"\n", kRelease));
  // The kernel was built by this machine's gcc, whatever its version.
  auto local = local_compiler("gcc");
  ASSERT_TRUE(local.has_value());
  write(kb / "include/generated/compile.h", fmt::format("#define LINUX_COMPILER \"{}, GNU ld 2.40\"\n", local->text));
}

const PatchTarget* target(const KernelFacts& f, std::string_view name) {
  for (const auto& t : f.targets)
    if (t.name == name) return &t;
  return nullptr;
}
const ReferencedSymbol* reference(const KernelFacts& f, std::string_view name) {
  for (const auto& r : f.references)
    if (r.name == name) return &r;
  return nullptr;
}
bool missing_mentions(const KernelFacts& f, std::string_view text) {
  for (const auto& m : f.missing)
    if (m.what.find(text) != std::string::npos || m.how.find(text) != std::string::npos) return true;
  return false;
}

TEST(KernelAnalysis, RunningAttachCheckKernel) {
  FakeHost h;
  populate_running(h, false);
  auto f = analyze(h.inputs());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_TRUE(f->running);
  EXPECT_EQ(f->release, kRelease);
  EXPECT_EQ(f->era, Era::attach_check) << f->era_reason;
  EXPECT_TRUE(f->feasible);
  EXPECT_TRUE(f->ready);
  EXPECT_EQ(f->symbols_kind, "kallsyms");
  EXPECT_EQ(f->symbol_count, 10u);

  const PatchTarget* a = target(*f, "intel_iommu_attach_device");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->required);
  EXPECT_TRUE(a->present);
  EXPECT_TRUE(a->function);
  EXPECT_EQ(a->type, 't');
  EXPECT_EQ(a->address, 0xffffffff81000100ull + 0x1e00000);
  EXPECT_EQ(a->sympos, 0u);
  EXPECT_EQ(a->variants, std::vector<std::string>{"intel_iommu_attach_device.cold"});
  EXPECT_EQ(a->traceable, true);
  EXPECT_EQ(a->in_btf, true);
  EXPECT_TRUE(a->patchable);
  const PatchTarget* r = target(*f, "intel_iommu_get_resv_regions");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->required);
  EXPECT_TRUE(r->patchable);
  const PatchTarget* relax = target(*f, "device_rmrr_is_relaxable");
  ASSERT_NE(relax, nullptr);
  EXPECT_FALSE(relax->present);
  EXPECT_FALSE(relax->required);
  EXPECT_FALSE(relax->patchable);
  EXPECT_NE(relax->note.find("inlined"), std::string::npos);

  const ReferencedSymbol* units = reference(*f, "dmar_rmrr_units");
  ASSERT_NE(units, nullptr);
  EXPECT_TRUE(units->present);
  EXPECT_EQ(units->type, 'd');
  EXPECT_EQ(units->exported, false);
  EXPECT_EQ(reference(*f, "iommu_alloc_resv_region")->exported, true);

  ASSERT_TRUE(f->btf.has_value());
  EXPECT_FALSE(f->btf->require_direct.has_value());
  EXPECT_TRUE(f->kbuild_present);
  EXPECT_TRUE(f->symvers_present);
  EXPECT_EQ(f->compiler_match, CompilerMatch::exact);
  EXPECT_EQ(f->kernel_compiler_from, "kbuild include/generated/compile.h");
  for (const auto& m : f->missing) EXPECT_FALSE(m.blocking) << m.what;

  // JSON carries the same facts.
  Json j = to_json(*f);
  EXPECT_EQ(j["era"].as_string(), "attach-check");
  EXPECT_EQ(j["targets"][0]["name"].as_string(), "intel_iommu_attach_device");
  EXPECT_EQ(j["targets"][0]["sympos"].as_uint(), 0u);
  EXPECT_EQ(j["targets"][0]["variants"][0].as_string(), "intel_iommu_attach_device.cold");
  EXPECT_TRUE(j["feasible"].as_bool());
  EXPECT_EQ(j["references"][0]["needs_klp_relocation"].as_bool(), true);
  EXPECT_TRUE(j["btf"]["require_direct"].is_null());
}

TEST(KernelAnalysis, RequireDirectEraComesFromBtf) {
  FakeHost h;
  populate_running(h, true);
  auto f = analyze(h.inputs());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->era, Era::require_direct) << f->era_reason;
  ASSERT_TRUE(f->btf->require_direct.has_value());
  EXPECT_EQ(f->btf->require_direct->bit_offset, 162u);
  EXPECT_FALSE(target(*f, "intel_iommu_attach_device")->required);
  EXPECT_TRUE(target(*f, "intel_iommu_get_resv_regions")->required);
  EXPECT_TRUE(f->feasible);
  EXPECT_EQ(to_json(*f)["btf"]["require_direct"]["bit_offset"].as_uint(), 162u);
}

TEST(KernelAnalysis, UntraceableTargetIsNotPatchable) {
  FakeHost h;
  populate_running(h, false, "intel_iommu_attach_device\nintel_iommu_get_resv_regions [somemodule]\n");
  auto f = analyze(h.inputs());
  ASSERT_TRUE(f.ok()) << f.error().message;
  const PatchTarget* r = target(*f, "intel_iommu_get_resv_regions");
  EXPECT_EQ(r->traceable, false);  // only a module's function of that name is listed
  EXPECT_FALSE(r->patchable);
  EXPECT_NE(r->note.find("available_filter_functions"), std::string::npos);
  EXPECT_FALSE(f->feasible);
}

TEST(KernelAnalysis, DuplicateNamesGetSympos) {
  FakeHost h;
  populate_running(h, false);
  write(h.root() / "proc/kallsyms", kallsyms_text(0, true, true));
  auto f = analyze(h.inputs());
  ASSERT_TRUE(f.ok()) << f.error().message;
  const PatchTarget* r = target(*f, "intel_iommu_get_resv_regions");
  EXPECT_EQ(r->count, 2u);
  EXPECT_EQ(r->sympos, 1u);
  EXPECT_EQ(r->address, 0xffffffff81000200ull);
  const PatchTarget* relax = target(*f, "device_rmrr_is_relaxable");
  EXPECT_TRUE(relax->present);
  EXPECT_EQ(relax->traceable, false);  // present but not in the fake ftrace list
}

TEST(KernelAnalysis, BtfOfAnotherKernelIsCaught) {
  FakeHost h;
  populate_running(h, true);
  // A BTF without the intel driver (e.g. the build host's) next to symbols that have it.
  write_bytes(h.root() / "sys/kernel/btf/vmlinux", test::build_btf({.require_direct = true, .attach_func = false, .resv_func = false}));
  auto f = analyze(h.inputs());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->era, Era::unknown);
  EXPECT_NE(f->era_reason.find("same kernel"), std::string::npos) << f->era_reason;
  EXPECT_FALSE(f->feasible);
  EXPECT_TRUE(missing_mentions(*f, "BTF that matches the symbols"));
  // One of the two missing from BTF is not enough to call it a mismatch.
  write_bytes(h.root() / "sys/kernel/btf/vmlinux", test::build_btf({.require_direct = true, .attach_func = false}));
  auto g = analyze(h.inputs());
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->era, Era::require_direct);
  EXPECT_TRUE(g->feasible);
}

TEST(KernelAnalysis, MissingPiecesSayHowToGetThem) {
  FakeHost h;
  fs::path r = h.root();
  write(r / "proc/kallsyms", kallsyms_text(0));
  // No BTF, no headers, no tracefs, no config.
  auto f = analyze(h.inputs());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->era, Era::unknown);
  EXPECT_NE(f->era_reason.find("BTF"), std::string::npos);
  EXPECT_FALSE(f->feasible);
  EXPECT_TRUE(missing_mentions(*f, "apt-get install linux-headers-" + kRelease));
  EXPECT_TRUE(missing_mentions(*f, "BTF"));
  EXPECT_TRUE(missing_mentions(*f, "tracefs"));
  EXPECT_TRUE(missing_mentions(*f, "kernel configuration"));
  // Config via /proc/config.gz when /boot has none.
  write(r / "proc/config", "CONFIG_LIVEPATCH=y\nCONFIG_INTEL_IOMMU=y\n");
  ASSERT_EQ(test::run_command(fmt::format("gzip -n {}", (r / "proc/config").string())).exit_code, 0);
  auto g = analyze(h.inputs());
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->config_from, (r / "proc/config.gz").string());
  EXPECT_FALSE(missing_mentions(*g, "kernel configuration"));
}

TEST(KernelAnalysis, LivepatchOffIsBlocking) {
  FakeHost h;
  populate_running(h, false);
  write(h.root() / ("boot/config-" + kRelease), "# CONFIG_LIVEPATCH is not set\nCONFIG_INTEL_IOMMU=y\n");
  auto f = analyze(h.inputs());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->era, Era::attach_check);
  EXPECT_FALSE(f->feasible);
  EXPECT_TRUE(missing_mentions(*f, "CONFIG_LIVEPATCH"));
}

// What build refuses before compiling makes analyze say "not ready" too: the two must agree.
TEST(KernelAnalysis, WhatBuildRefusesIsNotReady) {
  FakeHost h;
  populate_running(h, false);
  fs::remove(h.root() / "lib/modules" / kRelease / "build/Module.symvers");
  auto f = analyze(h.inputs());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_TRUE(f->feasible);
  EXPECT_FALSE(f->ready);
  EXPECT_TRUE(missing_mentions(*f, "Module.symvers"));

  populate_running(h, false);
  write(h.root() / ("boot/config-" + kRelease), "CONFIG_LIVEPATCH=y\nCONFIG_INTEL_IOMMU=y\nCONFIG_LTO_CLANG_THIN=y\n");
  f = analyze(h.inputs());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_FALSE(f->ready);
  EXPECT_TRUE(missing_mentions(*f, "Clang LTO"));
}

TEST(KernelAnalysis, OtherKernelFromImageAndKallsymsDump) {
  FakeHost h;
  fs::path r = h.root();
  Bytes btf = test::build_btf({.require_direct = false});
  Bytes image = test::build_bzimage(test::compress_with("xz --check=crc32", test::build_vmlinux(btf, false)), 3,
                                    kRelease + " (tester@example) #1 SMP");
  write_bytes(r / "vmlinuz", image);
  write(r / "kallsyms", kallsyms_text(0x2400000));
  AnalyzeInputs in = h.inputs();
  in.running_release = "9.9.9-elsewhere";
  in.image = r / "vmlinuz";
  in.kallsyms = r / "kallsyms";
  auto f = analyze(in);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_FALSE(f->running);
  EXPECT_EQ(f->release, kRelease);
  EXPECT_EQ(f->release_from, "image");
  EXPECT_EQ(f->compression, "xz");
  EXPECT_FALSE(f->image_has_symtab);
  ASSERT_TRUE(f->kaslr_offset.has_value());
  EXPECT_EQ(*f->kaslr_offset, 0x2400000);
  EXPECT_EQ(f->era, Era::attach_check) << f->era_reason;
  ASSERT_TRUE(f->btf.has_value());
  EXPECT_NE(f->btf->origin.find(".BTF"), std::string::npos);
  ASSERT_TRUE(f->kernel_compiler.has_value());
  EXPECT_EQ(f->kernel_compiler->command, "gcc-12");
  EXPECT_EQ(f->kernel_compiler_from, "image banner");
  // Not running: ftrace cannot be asked; patchable rests on the symbols.
  EXPECT_FALSE(target(*f, "intel_iommu_attach_device")->traceable.has_value());
  EXPECT_TRUE(target(*f, "intel_iommu_attach_device")->patchable);
  EXPECT_TRUE(missing_mentions(*f, "linux-headers-" + kRelease));
  EXPECT_FALSE(f->ready);  // the headers are missing
}

// A kernel that is installed and has never run: nothing but its image. The symbols come from the image's own
// kallsyms tables, with the same sympos and targets a dump of that kernel would give.
TEST(KernelAnalysis, InstalledKernelTakesItsSymbolsFromTheImage) {
  FakeHost h;
  fs::path r = h.root();
  std::vector<test::KallsymsSymbol> syms = test::sample_kallsyms(300);
  syms.push_back({test::kTextAddress + 0x700000, 't', "intel_iommu_get_resv_regions"});
  syms.push_back({test::kTextAddress + 0x700100, 't', "dup_helper"});
  syms.push_back({test::kTextAddress + 0x700200, 't', "intel_iommu_attach_device"});
  syms.push_back({test::kTextAddress + 0x700300, 't', "dup_helper"});
  syms.push_back({test::kTextAddress + 0x7ff000, 't', "intel_iommu_attach_device.cold"});
  std::stable_sort(syms.begin(), syms.end(), [](auto& a, auto& b) { return a.address < b.address; });
  std::string banner = "Linux version " + kRelease + " (tester@example) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld 2.40) #1 SMP";
  test::KallsymsEncoder enc({analysis::KallsymsLayout::offsets_first_seqs, analysis::KallsymsAddressForm::absolute_percpu, 8, syms, false,
                             banner + std::string(8, '\0')});
  std::vector<test::SectionSpec> secs = {
      {".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, test::kTextAddress, Bytes(0x100, 0xcc)},
      {".rodata", SHT_PROGBITS, SHF_ALLOC, test::kRodataAddress, enc.rodata()},
      {".BTF", SHT_PROGBITS, SHF_ALLOC, 0xffffffff83000000ull, test::build_btf({.require_direct = false})},
  };
  write_bytes(r / "vmlinuz", test::build_bzimage(test::compress_with("xz --check=crc32", test::build_elf(secs, {})), 3,
                                                 kRelease + " (tester@example) #1 SMP"));
  AnalyzeInputs in = h.inputs();
  in.running_release = "9.9.9-elsewhere";
  in.image = r / "vmlinuz";
  auto k = load_kernel(in);
  ASSERT_TRUE(k.ok()) << k.error().message;
  ASSERT_TRUE(k->symbols.has_value());
  EXPECT_EQ(k->symbols->source(), analysis::SymbolSource::image);
  EXPECT_EQ(k->symbols->size(), syms.size());
  auto f = analyze(in);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->symbols_kind, "image kallsyms");
  EXPECT_NE(f->symbols_from.find("offsets-first-seqs layout"), std::string::npos) << f->symbols_from;
  EXPECT_EQ(f->era, Era::attach_check) << f->era_reason;
  ASSERT_NE(target(*f, "intel_iommu_attach_device"), nullptr);
  EXPECT_TRUE(target(*f, "intel_iommu_attach_device")->patchable);
  EXPECT_EQ(target(*f, "intel_iommu_attach_device")->sympos, 0u);
  EXPECT_EQ(target(*f, "intel_iommu_attach_device")->variants, std::vector<std::string>{"intel_iommu_attach_device.cold"});
  // Same-name symbols get klp's sympos from the decoded order.
  auto dups = k->symbols->find_vmlinux("dup_helper");
  ASSERT_EQ(dups.size(), 2u);
  EXPECT_EQ(k->symbols->sympos(*dups[1]), 2u);
  EXPECT_FALSE(missing_mentions(*f, "kernel symbols"));
}

// An image whose tables do not decode is no symbol source: the symbols are missing, with the reason and what to do.
TEST(KernelAnalysis, ImageWithoutTablesLeavesTheSymbolsMissing) {
  FakeHost h;
  fs::path r = h.root();
  write_bytes(r / "vmlinuz", test::build_bzimage(test::compress_with("xz --check=crc32", test::build_vmlinux({}, false)), 3,
                                                 kRelease + " (tester@example) #1 SMP"));
  AnalyzeInputs in = h.inputs();
  in.running_release = "9.9.9-elsewhere";
  in.image = r / "vmlinuz";
  auto f = analyze(in);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_TRUE(missing_mentions(*f, "no kallsyms tables"));
  EXPECT_FALSE(f->feasible);
}

// Debian's split 7.x image packages install the image, config and System.map in the modules directory, not /boot.
TEST(KernelAnalysis, FindsImageAndConfigInTheModulesDirectory) {
  FakeHost h;
  populate_running(h, false);
  fs::path r = h.root();
  fs::remove(r / ("boot/config-" + kRelease));
  fs::path mods = r / "usr/lib/modules" / kRelease;
  Bytes image = test::build_bzimage(test::compress_with("xz --check=crc32", test::build_vmlinux(test::build_btf({}), false)), 3,
                                    kRelease + " (tester@example) #1 SMP");
  write_bytes(mods / "vmlinuz", image);
  write(mods / "config", "CONFIG_LIVEPATCH=y\nCONFIG_INTEL_IOMMU=y\nCONFIG_DEBUG_INFO_BTF=y\n");
  auto f = analyze(h.inputs());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->image_path, (mods / "vmlinuz").string());
  EXPECT_EQ(f->config_from, (mods / "config").string());
  EXPECT_FALSE(missing_mentions(*f, "kernel image"));
  // /boot wins when both exist (what the boot loader uses).
  write_bytes(r / ("boot/vmlinuz-" + kRelease), image);
  auto g = analyze(h.inputs());
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->image_path, (r / ("boot/vmlinuz-" + kRelease)).string());
}

// What `build` compiles with while load_kernel() runs on another thread: the same release, kbuild tree and
// config, the release read from the bzImage's setup header without decompressing the payload.
TEST(KernelAnalysis, BuildInputsAgreeWithTheFullAnalysis) {
  FakeHost h;
  populate_running(h, false);
  fs::path r = h.root();
  Bytes image = test::build_bzimage(test::compress_with("gzip -n", test::build_vmlinux(test::build_btf({}), false)), 3,
                                    kRelease + " (tester@example) #1 SMP");
  write_bytes(r / "vmlinuz", image);
  AnalyzeInputs in = h.inputs();
  in.running_release = "9.9.9-elsewhere";
  in.image = r / "vmlinuz";
  in.kallsyms = r / "proc/kallsyms";
  auto pre = load_build_inputs(in);
  ASSERT_TRUE(pre.ok()) << pre.error().message;
  ASSERT_TRUE(pre->has_value());
  const LoadedKernel& b = **pre;
  auto full = load_kernel(in);
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(b.release, kRelease);
  EXPECT_EQ(b.release, full->release);
  EXPECT_EQ(b.release_from, "image");
  ASSERT_TRUE(b.kbuild.has_value());
  ASSERT_TRUE(full->kbuild.has_value());
  EXPECT_EQ(b.kbuild->dir, full->kbuild->dir);
  EXPECT_TRUE(b.kbuild->has_symvers);
  ASSERT_TRUE(b.config.has_value());
  EXPECT_EQ(b.config->origin(), full->config->origin());
  EXPECT_FALSE(b.image || b.symbols || b.btf || b.symvers);  // all of that is load_kernel()'s
  EXPECT_TRUE(check_build_prerequisites(b).ok());

  // A corrupt payload behind a sound setup header: the release is still known; the error is load_kernel()'s.
  Bytes corrupt = image;
  size_t payload = 4 * 512 + 0x180;  // build_bzimage: (setup_sects + 1) * 512 + payload_offset
  ASSERT_GT(corrupt.size(), payload + 400);
  for (size_t i = payload + 200; i < payload + 400; ++i) corrupt[i] ^= 0x5a;
  write_bytes(r / "corrupt-vmlinuz", corrupt);
  in.image = r / "corrupt-vmlinuz";
  auto pre_corrupt = load_build_inputs(in);
  ASSERT_TRUE(pre_corrupt.ok() && pre_corrupt->has_value());
  EXPECT_EQ((**pre_corrupt).release, kRelease);
  EXPECT_FALSE(load_kernel(in).ok());

  // A plain vmlinux ELF tells its release only through its banner: load_kernel()'s to find.
  write_bytes(r / "vmlinux", test::build_vmlinux(test::build_btf({}), true));
  in.image.reset();
  in.vmlinux = r / "vmlinux";
  auto pre_elf = load_build_inputs(in);
  ASSERT_TRUE(pre_elf.ok());
  EXPECT_FALSE(pre_elf->has_value());
}

TEST(KernelAnalysis, VmlinuxWithSymtabIsEnough) {
  FakeHost h;
  fs::path r = h.root();
  write_bytes(r / "vmlinux", test::build_vmlinux(test::build_btf({.require_direct = true}), true));
  AnalyzeInputs in = h.inputs();
  in.vmlinux = r / "vmlinux";
  auto f = analyze(in);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->symbols_kind, "ELF symtab");
  EXPECT_EQ(f->release, "6.1.0-99-test");  // from the banner
  EXPECT_EQ(f->era, Era::require_direct);
  EXPECT_EQ(target(*f, "intel_iommu_attach_device")->variants.size(), 1u);
  EXPECT_FALSE(f->kaslr_offset.has_value());
}

TEST(KernelAnalysis, LoadedKernelKeepsTheInputsForLaterStages) {
  FakeHost h;
  fs::path r = h.root();
  // An unstripped vmlinux as the image plus a kallsyms dump of a boot slid by 0x3000000.
  write_bytes(r / "vmlinux", test::build_vmlinux(test::build_btf({}), true));
  write(r / "kallsyms", kallsyms_text(0x3000000));
  AnalyzeInputs in = h.inputs();
  in.image = r / "vmlinux";
  in.kallsyms = r / "kallsyms";
  auto k = load_kernel(in);
  ASSERT_TRUE(k.ok()) << k.error().message;
  ASSERT_TRUE(k->image.has_value());
  ASSERT_TRUE(k->symbols.has_value());
  ASSERT_TRUE(k->btf.has_value());
  EXPECT_EQ(k->symbols->source(), SymbolSource::kallsyms);  // the dump, not the image's symtab
  auto slide = kaslr_offset(*k->symbols, *k->image);
  ASSERT_TRUE(slide.has_value());
  EXPECT_EQ(*slide, 0x3000000);
  // A kallsyms address maps back into the image's bytes.
  const Symbol* attach = k->symbols->first("intel_iommu_attach_device");
  ASSERT_NE(attach, nullptr);
  auto code = k->image->bytes_at(attach->address - static_cast<uint64_t>(*slide), 8);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(code->data()[0], 0xcc);
  KernelFacts f = summarize(*k);
  EXPECT_EQ(f.kaslr_offset, 0x3000000);
  EXPECT_TRUE(f.image_has_symtab);
  EXPECT_EQ(f.compression, "none");
}

TEST(KernelAnalysis, ImageOfAnotherReleaseIsBlocking) {
  FakeHost h;
  fs::path r = h.root();
  write_bytes(r / "vmlinuz", test::build_bzimage(test::compress_with("gzip -n", test::build_vmlinux(test::build_btf({}), false)), 3,
                                                 "6.1.0-1-other (x@y) #1 SMP"));
  write(r / "kallsyms", kallsyms_text(0));
  AnalyzeInputs in = h.inputs();
  in.release = kRelease;
  in.image = r / "vmlinuz";
  in.kallsyms = r / "kallsyms";
  auto f = analyze(in);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->release, kRelease);
  EXPECT_TRUE(missing_mentions(*f, "is release 6.1.0-1-other"));
  EXPECT_FALSE(f->feasible);
}

TEST(KernelAnalysis, DummySystemMapOfAnotherKernelIsNamed) {
  FakeHost h;
  fs::path r = h.root();
  write(r / ("boot/System.map-" + kRelease), "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n");
  AnalyzeInputs in = h.inputs();
  in.release = kRelease;
  in.running_release = "9.9.9-elsewhere";
  auto f = analyze(in);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_FALSE(f->running);
  EXPECT_TRUE(missing_mentions(*f, "placeholder"));
  EXPECT_TRUE(missing_mentions(*f, "--kallsyms"));
  EXPECT_FALSE(f->feasible);
  // Named explicitly, the same file is an error.
  in.system_map = r / ("boot/System.map-" + kRelease);
  auto g = analyze(in);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, ExitCode::missing);
}

TEST(KernelAnalysis, NamedInputsMustBeReadable) {
  FakeHost h;
  AnalyzeInputs in = h.inputs();
  in.kallsyms = h.root() / "nope";
  auto a = analyze(in);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, ExitCode::missing);
  write(h.root() / "bad", "this is not kallsyms\n");
  in.kallsyms = h.root() / "bad";
  auto b = analyze(in);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, ExitCode::bad_input);
  in = h.inputs();
  write(h.root() / "img", "not an image at all");
  in.image = h.root() / "img";
  auto c = analyze(in);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ExitCode::bad_input);
  in = h.inputs();
  in.btf = h.root() / "img";
  EXPECT_FALSE(analyze(in).ok());
  in = h.inputs();
  in.kbuild = h.root() / "no-such-dir";
  auto d = analyze(in);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, ExitCode::missing);
}

TEST(DecideEra, FromSymbolsAndBtfNeverTheVersion) {
  auto syms = parse_kallsyms("ffffffff81000000 T _text\nffffffff81000100 t intel_iommu_attach_device\n");
  auto no_driver = parse_kallsyms("ffffffff81000000 T _text\n");
  ASSERT_TRUE(syms.ok() && no_driver.ok());
  BtfFacts old_btf;
  old_btf.has_dev_iommu = true;
  BtfFacts new_btf = old_btf;
  new_btf.require_direct = BtfMember{"require_direct", 546, 1, 0};
  std::string why;
  EXPECT_EQ(decide_era(&*syms, &old_btf, why), Era::attach_check);
  EXPECT_EQ(decide_era(&*syms, &new_btf, why), Era::require_direct);
  EXPECT_EQ(decide_era(nullptr, &new_btf, why), Era::require_direct);
  EXPECT_EQ(decide_era(&*syms, nullptr, why), Era::unknown);
  EXPECT_NE(why.find("BTF"), std::string::npos);
  EXPECT_EQ(decide_era(&*no_driver, &old_btf, why), Era::unknown);
  EXPECT_NE(why.find("CONFIG_INTEL_IOMMU"), std::string::npos);
  EXPECT_EQ(decide_era(nullptr, nullptr, why), Era::unknown);
  // A data symbol of that name does not count.
  auto data = parse_kallsyms("ffffffff81000000 T _text\nffffffff82000100 d intel_iommu_attach_device\n");
  EXPECT_EQ(decide_era(&*data, &old_btf, why), Era::unknown);
  // BTF's FUNC counts when there are no symbols.
  BtfFacts with_func = old_btf;
  with_func.functions.emplace_back("intel_iommu_attach_device", BtfFunction{"intel_iommu_attach_device", false, {}});
  EXPECT_EQ(decide_era(nullptr, &with_func, why), Era::attach_check);
}

TEST(FilterFunctions, VmlinuxNamesOnly) {
  auto s = parse_filter_functions("a\nb [mod]\nc\n\nd\t[x]\n");
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(s.count("a"));
  EXPECT_TRUE(s.count("c"));
  EXPECT_FALSE(s.count("b"));
}

// The command itself: --json parses back, exit codes follow the documented contract.
TEST(AnalyzeCommand, JsonAndExitCodes) {
  test::TempDir dir;
  fs::path r = dir.path();
  Bytes image = test::build_bzimage(test::compress_with("gzip -n", test::build_vmlinux(test::build_btf({}), false)), 3,
                                    kRelease + " (tester@example) #1 SMP");
  write_bytes(r / "vmlinuz", image);
  write(r / "kallsyms", kallsyms_text(0x1000000));
  write(r / "config", "CONFIG_LIVEPATCH=y\nCONFIG_INTEL_IOMMU=y\n");
  std::string bin = RELAX_RMRR_BINARY;
  auto res = test::run_command(fmt::format("{} analyze --image {} --kallsyms {} --config {} --json 2>/dev/null", bin,
                                           (r / "vmlinuz").string(), (r / "kallsyms").string(), (r / "config").string()));
  EXPECT_EQ(res.exit_code, 0) << res.output;
  auto j = Json::parse(res.output);
  ASSERT_TRUE(j.ok()) << j.error().message << "\n" << res.output;
  EXPECT_EQ((*j)["release"].as_string(), kRelease);
  EXPECT_EQ((*j)["era"].as_string(), "attach-check");
  EXPECT_EQ((*j)["image"]["compression"].as_string(), "gzip");
  EXPECT_EQ((*j)["image"]["kaslr_offset"].as_int(), 0x1000000);
  EXPECT_EQ((*j)["targets"][1]["name"].as_string(), "intel_iommu_get_resv_regions");
  EXPECT_TRUE((*j)["targets"][1]["patchable"].as_bool());
  EXPECT_EQ((*j)["config"]["CONFIG_LIVEPATCH"].as_string(), "y");

  auto human =
      test::run_command(fmt::format("{} analyze --image {} --kallsyms {}", bin, (r / "vmlinuz").string(), (r / "kallsyms").string()));
  EXPECT_NE(human.output.find("era: attach-check"), std::string::npos) << human.output;
  EXPECT_NE(human.output.find("intel_iommu_attach_device.cold"), std::string::npos) << human.output;

  // Not feasible (LIVEPATCH off) is exit 1; missing and malformed inputs are 3 and 2.
  write(r / "config-off", "# CONFIG_LIVEPATCH is not set\nCONFIG_INTEL_IOMMU=y\n");
  auto off = test::run_command(fmt::format("{} analyze --image {} --kallsyms {} --config {}", bin, (r / "vmlinuz").string(),
                                           (r / "kallsyms").string(), (r / "config-off").string()));
  EXPECT_EQ(off.exit_code, 1) << off.output;
  auto gone = test::run_command(fmt::format("{} analyze --kallsyms {}", bin, (r / "nope").string()));
  EXPECT_EQ(gone.exit_code, 3) << gone.output;
  EXPECT_NE(gone.output.find("error:"), std::string::npos);
  auto bad = test::run_command(fmt::format("{} analyze --image {}", bin, (r / "config").string()));
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  auto both = test::run_command(fmt::format("{} analyze --kallsyms a --system-map b", bin));
  EXPECT_EQ(both.exit_code, 2) << both.output;
}

}  // namespace

namespace {

// The default target is whatever kernel runs the tests: the report must be well-formed JSON for it, whatever
// its answer (0 targetable, 1 not).
TEST(AnalyzeCommand, RunningKernelGivesAnAnswer) {
  auto res = test::run_command(fmt::format("{} analyze --json 2>/dev/null", RELAX_RMRR_BINARY));
  EXPECT_TRUE(res.exit_code == 0 || res.exit_code == 1) << res.exit_code << "\n" << res.output;
  auto j = Json::parse(res.output);
  ASSERT_TRUE(j.ok()) << j.error().message << "\n" << res.output;
  EXPECT_TRUE((*j)["running"].as_bool());
  EXPECT_EQ((*j)["feasible"].as_bool(), res.exit_code == 0);
  EXPECT_EQ((*j)["targets"].size(), 5u);
}

}  // namespace
