// The bad-input catalogue: the real relax-rmrr binary, given one broken or unsuitable input at a time,
// must exit with the documented code (README: 2 malformed input, 3 something missing, 4 refused), say what to
// do about it, and write nothing to --output. Every input is built here, synthetically; the control case shows
// that the same inputs without the defect get past the analysis and source stages, so each refusal below is
// caused by its own defect.
#include "analysis/kernel.h"
#include "analysis_fixtures.h"
#include "host/dmar.h"
#include "iommu_fixtures.h"

#include <gtest/gtest.h>

#include <cstring>

namespace fs = std::filesystem;
using namespace rr;

namespace {

const std::string kRelease = "6.1.0-99-test";

void write(const fs::path& p, std::string_view text) {
  fs::create_directories(p.parent_path());
  ASSERT_TRUE(write_file_text(p, text).ok()) << p;
}
void write_bytes(const fs::path& p, const Bytes& b) { write(p, std::string_view(reinterpret_cast<const char*>(b.data()), b.size())); }

std::string kallsyms_text() {
  std::string s;
  auto line = [&](uint64_t a, char t, const char* n) { s += fmt::format("{:016x} {} {}\n", a + 0x1000000, t, n); };
  line(0xffffffff81000000ull, 'T', "_text");
  line(0xffffffff81000100ull, 't', "intel_iommu_attach_device");
  line(0xffffffff81000200ull, 't', "intel_iommu_get_resv_regions");
  line(0xffffffff81000300ull, 't', "intel_iommu_attach_device.cold");
  line(0xffffffff81000380ull, 'T', "device_to_iommu");
  line(0xffffffff81000390ull, 'T', "iommu_alloc_resv_region");
  line(0xffffffff82a00010ull, 'd', "dmar_rmrr_units");
  line(0xffffffff82a00040ull, 'D', "dmar_global_lock");
  return s;
}

bool empty_dir(const fs::path& d) {
  std::error_code ec;
  return fs::is_directory(d, ec) && fs::directory_iterator(d, ec) == fs::directory_iterator();
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    vmlinux_ = test::build_vmlinux(test::build_btf({}), false);
    image_ = test::build_bzimage(test::compress_with("gzip -n", vmlinux_), 3, kRelease + " (tester@example) #1 SMP");
    write_bytes(path("vmlinuz"), image_);
    write(path("kallsyms"), kallsyms_text());
    write(path("config"), "CONFIG_LIVEPATCH=y\nCONFIG_INTEL_IOMMU=y\nCONFIG_DEBUG_INFO_BTF=y\n");
    // Headers of the target: Makefile, Module.symvers, its release, its compiler (this machine's gcc).
    fs::path kb = path("kbuild");
    write(kb / "Makefile", "# kbuild\n");
    write(kb / "Module.symvers", "0x1\tiommu_alloc_resv_region\tvmlinux\tEXPORT_SYMBOL_GPL\t\n");
    write(kb / "include/generated/utsrelease.h", fmt::format("#define UTS_RELEASE \"{}\"\n", kRelease));
    auto cc = analysis::local_compiler("gcc");
    ASSERT_TRUE(cc.has_value()) << "gcc is needed (tests/setup/install-deps.sh)";
    write(kb / "include/generated/compile.h", fmt::format("#define LINUX_COMPILER \"{}, GNU ld 2.40\"\n", cc->text));
    write(path("src/drivers/iommu/intel/iommu.c"), std::string(test::kHostPreamble) + std::string(test::kModernDriver));
    write(path("src/drivers/iommu/intel/Makefile"), "obj-$(CONFIG_INTEL_IOMMU) += iommu.o\n");
    fs::create_directories(path("out"));
  }

  fs::path path(const std::string& rel) const { return dir_.path() / rel; }
  fs::path output() const { return path("out/relax_rmrr.ko"); }

  // `relax-rmrr build` on the synthetic kernel, with `replace` naming the inputs swapped for bad ones.
  test::CommandResult build(const std::map<std::string, fs::path>& replace = {}, bool quiet = true) const {
    std::map<std::string, fs::path> in{{"--image", path("vmlinuz")},
                                       {"--kallsyms", path("kallsyms")},
                                       {"--config", path("config")},
                                       {"--kbuild", path("kbuild")},
                                       {"--source", path("src")}};
    for (const auto& [k, v] : replace) in[k] = v;
    std::string args;
    for (const auto& [k, v] : in) args += fmt::format(" {} {}", k, v.string());
    return test::run_command(fmt::format("{} build{} --keep-tmp {}{} -o {}", RELAX_RMRR_BINARY, quiet ? " -q" : "", path("work").string(),
                                         args, output().string()));
  }

  // The documented exit code, the words that tell the user what to do, and nothing written.
  void expect_refusal(const test::CommandResult& r, ExitCode code, std::vector<std::string> words) const {
    EXPECT_EQ(r.exit_code, static_cast<int>(code)) << r.output;
    EXPECT_NE(r.output.find("relax-rmrr: error: "), std::string::npos) << r.output;
    for (const auto& w : words) EXPECT_NE(r.output.find(w), std::string::npos) << "'" << w << "' in:\n" << r.output;
    EXPECT_FALSE(fs::exists(output())) << r.output;
    EXPECT_TRUE(empty_dir(path("out"))) << "something was written next to --output";
  }

  test::TempDir dir_;
  Bytes vmlinux_, image_;
};

// The control: the same inputs without a defect pass the analysis and the source stages and stop only when the
// fake kbuild tree cannot compile; nothing is written then either.
TEST_F(BadInput, ControlReachesTheCompileStage) {
  auto r = build({}, false);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("compiling original and patched objects"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(output()));
  EXPECT_TRUE(empty_dir(path("out")));
}

Bytes fixture(const std::string& name) {
  auto b = read_file_bytes(fs::path(RELAX_RMRR_FIXTURES) / "dmar" / name);
  if (!b) throw std::runtime_error(b.error().message);
  return *b;
}

// A DMAR table cut short: exit 2, the offset and "truncated", nothing on stdout.
TEST_F(BadInput, TruncatedDmar) {
  Bytes t = fixture("hp-proliant-dl360-g7.dat");
  ASSERT_GT(t.size(), 200u);
  t.resize(200);
  write_bytes(path("dmar.dat"), t);
  auto r = test::run_command(fmt::format("({} dmar {} 2>/dev/null)", RELAX_RMRR_BINARY, path("dmar.dat").string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "") << "stdout must stay empty on an error";
  auto e = test::run_command(fmt::format("{} dmar {}", RELAX_RMRR_BINARY, path("dmar.dat").string()));
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_NE(e.output.find("truncated"), std::string::npos) << e.output;
  EXPECT_NE(e.output.find("/sys/firmware/acpi/tables/DMAR"), std::string::npos) << "what to do: " << e.output;
}

// A DMAR table whose checksum is right but whose structures are not: a structure length that runs past the
// table. Exit 2 naming the offset of the structure, nothing on stdout.
TEST_F(BadInput, GarbledDmar) {
  Bytes t = fixture("hp-proliant-dl360-g7.dat");
  ASSERT_GT(t.size(), 52u);
  // The first remapping structure starts at 48: type (2 bytes), length (2 bytes).
  t[50] = 0xff;
  t[51] = 0x7f;
  t[9] = 0;
  t[9] = static_cast<uint8_t>(0x100 - dmar::checksum_of(ByteView(t.data(), t.size())));
  ASSERT_EQ(dmar::checksum_of(ByteView(t.data(), t.size())), 0);
  write_bytes(path("dmar.dat"), t);
  auto r = test::run_command(fmt::format("({} dmar {} 2>/dev/null)", RELAX_RMRR_BINARY, path("dmar.dat").string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "");
  auto e = test::run_command(fmt::format("{} dmar {}", RELAX_RMRR_BINARY, path("dmar.dat").string()));
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_NE(e.output.find("offset 0x30"), std::string::npos) << e.output;
  EXPECT_NE(e.output.find("/sys/firmware/acpi/tables/DMAR"), std::string::npos) << "what to do: " << e.output;
}

// An ELF image whose section header table lies past the end of the file.
TEST_F(BadInput, ElfWithBadSectionHeaders) {
  Bytes elf = vmlinux_;
  uint64_t shoff = elf.size() + 4096;
  std::memcpy(&elf[0x28], &shoff, sizeof shoff);  // e_shoff of an ELF64 header
  write_bytes(path("bad.elf"), elf);
  expect_refusal(build({{"--image", path("bad.elf")}}), ExitCode::bad_input, {"bad.elf", "section header", "--image"});
}

// A bzImage whose gzip payload is damaged in the middle.
TEST_F(BadInput, BzImageWithCorruptPayload) {
  Bytes img = image_;
  size_t payload = 4 * 512 + 0x180;  // build_bzimage: (setup_sects + 1) * 512 + payload_offset
  ASSERT_GT(img.size(), payload + 600);
  for (size_t i = payload + 200; i < payload + 400; ++i) img[i] ^= 0x5a;
  write_bytes(path("corrupt-vmlinuz"), img);
  expect_refusal(build({{"--image", path("corrupt-vmlinuz")}}), ExitCode::bad_input, {"corrupt-vmlinuz", "gzip", "--image"});
}

// A kallsyms "dump" that is no such thing.
TEST_F(BadInput, KallsymsOfGarbage) {
  write(path("garbage"),
        "\x7f"
        "ELF\x02\x01 this is not kallsyms\n\x01\x02\x03 at all\n");
  expect_refusal(build({{"--kallsyms", path("garbage")}}), ExitCode::bad_input, {"garbage", "line 1", "/proc/kallsyms"});
}

// A source tree that has drivers/iommu but not the intel driver.
TEST_F(BadInput, SourceTreeWithoutIntelIommu) {
  write(path("partial/drivers/iommu/intel/dmar.c"), "/* no iommu.c here */\n");
  write(path("partial/drivers/iommu/Makefile"), "obj-y += intel/\n");
  expect_refusal(build({{"--source", path("partial")}}), ExitCode::bad_input, {"drivers/iommu", "intel-iommu", "source complete"});
}

// Headers (a kbuild tree) of another kernel than the target.
TEST_F(BadInput, HeadersOfAnotherKernel) {
  write(path("kbuild/include/generated/utsrelease.h"), "#define UTS_RELEASE \"6.1.0-98-other\"\n");
  expect_refusal(build(), ExitCode::missing, {"6.1.0-98-other", "linux-headers-" + kRelease, "--kbuild"});
}

// A kbuild tree without Module.symvers.
TEST_F(BadInput, HeadersWithoutModuleSymvers) {
  fs::remove(path("kbuild/Module.symvers"));
  expect_refusal(build(), ExitCode::missing, {"Module.symvers", "apt-get install --reinstall linux-headers-" + kRelease});
}

// A target kernel built without livepatch support.
TEST_F(BadInput, ConfigWithoutLivepatch) {
  write(path("config"), "# CONFIG_LIVEPATCH is not set\nCONFIG_INTEL_IOMMU=y\nCONFIG_DEBUG_INFO_BTF=y\n");
  expect_refusal(build(), ExitCode::missing, {"CONFIG_LIVEPATCH", "CONFIG_LIVEPATCH=y", "relax-rmrr patch"});
}

// A kernel built with Clang LTO.
TEST_F(BadInput, LtoKernel) {
  write(path("config"), "CONFIG_LIVEPATCH=y\nCONFIG_INTEL_IOMMU=y\nCONFIG_LTO_CLANG=y\nCONFIG_LTO_CLANG_THIN=y\n");
  expect_refusal(build(), ExitCode::refused, {"CONFIG_LTO_CLANG=y", "without LTO", "relax-rmrr patch"});
}

}  // namespace
