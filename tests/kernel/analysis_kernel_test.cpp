// The analysis on the real Debian 6.1 kernel (ctest label `kernel`): its vmlinuz, config, headers and a
// /proc/kallsyms dump taken by booting it in QEMU. Missing inputs FAIL: they are a setup step, not optional.
//
// Inputs: kernel.env from tests/setup/kernel.sh debian-6.1 (VMLINUZ, CONFIG, KBUILD, KALLSYMS, KALLSYMS_TEXT,
// RELEASE), found at $RELAX_RMRR_KERNEL_ENV, else $RELAX_RMRR_KERNEL_DIR/kernel.env, else
// ${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/debian-6.1/kernel.env. Each value can be overridden by an
// environment variable: RELAX_RMRR_VMLINUZ, RELAX_RMRR_KCONFIG, RELAX_RMRR_KBUILD, RELAX_RMRR_KALLSYMS.
//
// Expected facts are derived from independent sources where one exists (the config's CONFIG_KERNEL_* for the
// compression, the kbuild tree for the compiler, section sizes for the BTF entry sizes, Module.symvers for
// exports); the rest are facts of this kernel, read from its image and BTF.
#include "../unit/test_util.h"
#include "analysis/kernel.h"
#include "analysis/kernel_facts.h"
#include "common/file.h"

#include <elf.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kernel_env.h"

#include <cstdlib>
#include <map>

namespace fs = std::filesystem;
using namespace rr;
using namespace rr::analysis;

namespace {

constexpr const char* kSetup =
    "run `tests/setup/kernel.sh debian-6.1` (it writes kernel.env with VMLINUZ, CONFIG, "
    "KBUILD, KALLSYMS), or set RELAX_RMRR_KERNEL_ENV / RELAX_RMRR_KERNEL_DIR";

struct KernelInputs {
  fs::path env_file;
  std::map<std::string, std::string> values;
  std::string problem;  // non-empty: why the inputs are unusable

  std::string get(const std::string& key) const {
    auto it = values.find(key);
    return it == values.end() ? "" : it->second;
  }
};

const KernelInputs& inputs() {
  static const KernelInputs in = [] {
    KernelInputs k;
    test::KernelEnv e = test::read_kernel_env();
    k.env_file = e.file;
    k.values = e.values;
    std::vector<std::string> absent;
    for (const char* key : {"VMLINUZ", "CONFIG", "KBUILD", "KALLSYMS"}) {
      std::string v = k.get(key);
      std::error_code ec;
      if (v.empty() || !fs::exists(v, ec)) absent.push_back(fmt::format("{}={}", key, v.empty() ? "(unset)" : v));
    }
    if (!absent.empty())
      k.problem =
          fmt::format("kernel inputs missing ({}; kernel.env looked up at {}): {}", fmt::join(absent, ", "), k.env_file.string(), kSetup);
    return k;
  }();
  return in;
}

#define REQUIRE_INPUTS()                                       \
  do {                                                         \
    if (!inputs().problem.empty()) FAIL() << inputs().problem; \
  } while (0)

// Loaded once: decompressing the image takes about a second.
struct Loaded {
  std::optional<elf::ElfFile> image;
  Compression compression = Compression::none;
  std::optional<SetupHeader> setup;
  std::optional<SymbolTable> kallsyms;
  std::optional<KernelConfig> config;
  std::string error;
};

const Loaded& loaded() {
  static const Loaded l = [] {
    Loaded x;
    if (!inputs().problem.empty()) return x;
    auto img = read_kernel_image(inputs().get("VMLINUZ"));
    if (!img) {
      x.error = img.error().message;
      return x;
    }
    x.compression = img->compression;
    x.setup = img->setup;
    auto elf = elf::ElfFile::from_bytes(std::move(img->elf), inputs().get("VMLINUZ"));
    if (!elf) {
      x.error = elf.error().message;
      return x;
    }
    x.image = std::move(elf).value();
    auto ks = read_kallsyms(inputs().get("KALLSYMS"));
    if (!ks) {
      x.error = ks.error().message;
      return x;
    }
    x.kallsyms = std::move(ks).value();
    auto c = read_kconfig(inputs().get("CONFIG"));
    if (!c) {
      x.error = c.error().message;
      return x;
    }
    x.config = std::move(c).value();
    return x;
  }();
  return l;
}

#define REQUIRE_LOADED()                                   \
  do {                                                     \
    REQUIRE_INPUTS();                                      \
    ASSERT_TRUE(loaded().error.empty()) << loaded().error; \
  } while (0)

TEST(RealKernel, ImageDecompressesWithTheConfiguredCompression) {
  REQUIRE_LOADED();
  const auto& c = *loaded().config;
  std::map<std::string, Compression> by_option{{"KERNEL_GZIP", Compression::gzip}, {"KERNEL_XZ", Compression::xz},
                                               {"KERNEL_LZMA", Compression::lzma}, {"KERNEL_ZSTD", Compression::zstd},
                                               {"KERNEL_LZ4", Compression::lz4},   {"KERNEL_BZIP2", Compression::bzip2}};
  std::optional<Compression> configured;
  for (const auto& [opt, comp] : by_option)
    if (c.enabled(opt)) configured = comp;
  ASSERT_TRUE(configured.has_value()) << "the config names no CONFIG_KERNEL_* compression";
  EXPECT_EQ(loaded().compression, *configured);
  const elf::ElfFile& img = *loaded().image;
  EXPECT_EQ(img.machine(), EM_X86_64);
  EXPECT_EQ(img.file_type(), ET_EXEC);
  EXPECT_FALSE(img.has_symtab()) << "vmlinux inside vmlinuz is stripped";
  ASSERT_NE(img.section(".text"), nullptr);
  ASSERT_NE(img.section(".BTF"), nullptr);
  // The release: the setup header and the banner agree with each other and with kernel.env.
  ASSERT_TRUE(loaded().setup.has_value());
  auto banner = find_banner(img.bytes());
  ASSERT_TRUE(banner.has_value());
  EXPECT_EQ(split_ws(loaded().setup->kernel_version).at(0), banner->release);
  if (!inputs().get("RELEASE").empty()) {
    EXPECT_EQ(banner->release, inputs().get("RELEASE"));
  }
}

TEST(RealKernel, CompilerAgreesAcrossBannerKbuildAndConfig) {
  REQUIRE_LOADED();
  auto banner = find_banner(loaded().image->bytes());
  ASSERT_TRUE(banner.has_value());
  auto from_banner = parse_compiler_text(banner->compiler);
  ASSERT_TRUE(from_banner.has_value()) << banner->compiler;
  auto tree = inspect_kbuild(inputs().get("KBUILD"));
  ASSERT_TRUE(tree.ok()) << tree.error().message;
  ASSERT_TRUE(tree->compiler.has_value());
  auto from_kbuild = parse_compiler_text(*tree->compiler);
  auto cc_text = loaded().config->string("CC_VERSION_TEXT");
  ASSERT_TRUE(cc_text.has_value());
  auto from_config = parse_compiler_text(*cc_text);
  ASSERT_TRUE(from_kbuild && from_config);
  EXPECT_EQ(from_banner->text, from_kbuild->text);
  EXPECT_EQ(from_banner->text, from_config->text);
  EXPECT_EQ(from_banner->family, "gcc");
}

TEST(RealKernel, BtfFactsOfThe61Era) {
  REQUIRE_LOADED();
  auto btf = Btf::from_elf(*loaded().image);
  ASSERT_TRUE(btf.ok()) << btf.error().message;
  EXPECT_GT(btf->type_count(), 10000u);
  auto facts = collect_btf_facts(*btf, {"intel_iommu_attach_device", "intel_iommu_get_resv_regions"});
  EXPECT_TRUE(facts.has_dev_iommu);
  EXPECT_FALSE(facts.require_direct.has_value()) << "6.1 predates require_direct (v6.6)";
  EXPECT_TRUE(facts.functions[0].second.has_value());
  EXPECT_TRUE(facts.functions[1].second.has_value());
  EXPECT_TRUE(btf->member("dev_iommu", "fwspec").has_value());
}

TEST(RealKernel, BtfEntrySizesDivideTheirSections) {
  REQUIRE_LOADED();
  auto btf = Btf::from_elf(*loaded().image);
  ASSERT_TRUE(btf.ok()) << btf.error().message;
  const elf::ElfFile& img = *loaded().image;
  // Each special section is an array of its entry struct: its size must be a multiple of the BTF size.
  for (auto [section, type] : {std::pair{"__bug_table", "bug_entry"},
                               {"__ex_table", "exception_table_entry"},
                               {".altinstructions", "alt_instr"},
                               {".orc_unwind", "orc_entry"}}) {
    const elf::ElfSection* s = img.section(section);
    ASSERT_NE(s, nullptr) << section;
    auto size = btf->struct_size(type);
    ASSERT_TRUE(size.has_value()) << type;
    ASSERT_GT(*size, 0u);
    EXPECT_EQ(s->size % *size, 0u) << section << " of " << s->size << " bytes, " << type << " of " << *size;
  }
  // .orc_unwind_ip holds one s32 per orc_entry.
  auto orc = btf->struct_size("orc_entry");
  ASSERT_TRUE(orc.has_value());
  EXPECT_EQ(img.section(".orc_unwind")->size / *orc, img.section(".orc_unwind_ip")->size / 4);
}

TEST(RealKernel, KallsymsDumpHasTheDesignFacts) {
  REQUIRE_LOADED();
  const SymbolTable& t = *loaded().kallsyms;
  EXPECT_TRUE(t.addresses_known()) << "the dump must be taken as root";
  EXPECT_GT(t.size(), 50000u);
  auto one = [&](const char* name) -> const Symbol* {
    auto v = t.find_vmlinux(name);
    return v.size() == 1 ? v[0] : nullptr;
  };
  const Symbol* attach = one("intel_iommu_attach_device");
  ASSERT_NE(attach, nullptr);
  EXPECT_EQ(attach->type, 't');
  EXPECT_EQ(t.sympos(*attach), 0u);
  auto cold = t.variants("intel_iommu_attach_device");
  ASSERT_EQ(cold.size(), 1u);
  EXPECT_EQ(cold[0]->name, "intel_iommu_attach_device.cold");
  const Symbol* resv = one("intel_iommu_get_resv_regions");
  ASSERT_NE(resv, nullptr);
  EXPECT_EQ(resv->type, 't');
  const Symbol* units = one("dmar_rmrr_units");
  ASSERT_NE(units, nullptr);
  EXPECT_EQ(units->type, 'd');
  for (const char* inlined : {"device_rmrr_is_relaxable", "device_is_rmrr_locked", "device_has_rmrr"})
    EXPECT_FALSE(t.contains(inlined)) << inlined;
}

TEST(RealKernel, KaslrOffsetMapsKallsymsOntoTheImage) {
  REQUIRE_LOADED();
  const SymbolTable& t = *loaded().kallsyms;
  const elf::ElfFile& img = *loaded().image;
  auto offset = kaslr_offset(t, img);
  ASSERT_TRUE(offset.has_value());
  if (!inputs().get("KALLSYMS_TEXT").empty()) {
    auto text = parse_uint(inputs().get("KALLSYMS_TEXT"), 16);
    ASSERT_TRUE(text.has_value()) << inputs().get("KALLSYMS_TEXT");
    EXPECT_EQ(static_cast<uint64_t>(*offset), *text - img.section(".text")->address);
  }
  // Every text symbol between _text and _etext lands inside the image's .text once the slide is removed.
  const Symbol* etext = t.first("_etext");
  ASSERT_NE(etext, nullptr);
  const elf::ElfSection* text = img.section(".text");
  size_t checked = 0;
  for (const Symbol& s : t.symbols()) {
    if (!s.in_vmlinux() || (s.type != 't' && s.type != 'T')) continue;
    if (s.address < t.first("_text")->address || s.address >= etext->address) continue;
    uint64_t link = s.address - static_cast<uint64_t>(*offset);
    ASSERT_GE(link, text->address) << s.name;
    ASSERT_LT(link, text->address + text->size) << s.name;
    ++checked;
  }
  EXPECT_GT(checked, 10000u);
  const Symbol* attach = t.first("intel_iommu_attach_device");
  ASSERT_NE(attach, nullptr);
  EXPECT_TRUE(img.bytes_at(attach->address - static_cast<uint64_t>(*offset), 16).has_value());
}

TEST(RealKernel, AnalyzeSaysAttachCheckAndTheTwoTargets) {
  REQUIRE_INPUTS();
  AnalyzeInputs in;
  in.image = inputs().get("VMLINUZ");
  in.kallsyms = inputs().get("KALLSYMS");
  in.config = inputs().get("CONFIG");
  in.kbuild = inputs().get("KBUILD");
  auto f = analyze(in);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_FALSE(f->running);
  EXPECT_EQ(f->era, Era::attach_check) << f->era_reason;
  for (const auto& t : f->targets) {
    if (t.name == "intel_iommu_attach_device" || t.name == "intel_iommu_get_resv_regions") {
      EXPECT_TRUE(t.required) << t.name;
      EXPECT_TRUE(t.patchable) << t.name << ": " << t.note;
      EXPECT_EQ(t.sympos, 0u) << t.name;
      EXPECT_EQ(t.in_btf, true) << t.name;
    } else {
      EXPECT_FALSE(t.present) << t.name;
    }
  }
  auto symvers = read_module_symvers(fs::path(inputs().get("KBUILD")) / "Module.symvers");
  ASSERT_TRUE(symvers.ok()) << symvers.error().message;
  for (const auto& r : f->references) {
    if (!r.present) continue;
    ASSERT_TRUE(r.exported.has_value()) << r.name;
    EXPECT_EQ(*r.exported, symvers->exported(r.name)) << r.name;
  }
  for (const auto& r : f->references) {
    if (r.name == "dmar_rmrr_units") {
      EXPECT_EQ(r.exported, false);
    }
  }
  EXPECT_EQ(f->config_from, inputs().get("CONFIG"));
  EXPECT_TRUE(f->kernel_compiler.has_value());
  // With image, symbols, config and headers given, nothing blocking may be missing but the compiler.
  for (const auto& m : f->missing) {
    if (m.blocking) {
      EXPECT_NE(m.what.find("compiler"), std::string::npos) << m.what;
    }
  }
  EXPECT_TRUE(f->feasible);
  if (f->compiler_match == CompilerMatch::exact) {
    EXPECT_TRUE(f->ready);
  }
}

TEST(RealKernel, AnalyzeCommandJson) {
  REQUIRE_INPUTS();
  auto r =
      test::run_command(fmt::format("{} analyze --image {} --kallsyms {} --config {} --kbuild {} --json 2>/dev/null", RELAX_RMRR_BINARY,
                                    inputs().get("VMLINUZ"), inputs().get("KALLSYMS"), inputs().get("CONFIG"), inputs().get("KBUILD")));
  auto j = Json::parse(r.output);
  ASSERT_TRUE(j.ok()) << j.error().message << "\n" << r.output;
  EXPECT_EQ((*j)["era"].as_string(), "attach-check");
  EXPECT_EQ((*j)["targets"][0]["name"].as_string(), "intel_iommu_attach_device");
  EXPECT_EQ((*j)["targets"][0]["variants"][0].as_string(), "intel_iommu_attach_device.cold");
  EXPECT_EQ(r.exit_code, (*j)["feasible"].as_bool() ? 0 : 1);
}

}  // namespace
