// Kernel config, Module.symvers, the kbuild tree and the compiler identification.
#include "analysis/kbuild.h"
#include "analysis/kconfig.h"
#include "test_util.h"

#include <gtest/gtest.h>

using namespace rr;
using namespace rr::analysis;

namespace {

const char* kConfig =
    "#\n# Automatically generated file; DO NOT EDIT.\n#\n"
    "CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0\"\n"
    "CONFIG_LIVEPATCH=y\n"
    "CONFIG_VFIO=m\n"
    "# CONFIG_MODULE_SIG_FORCE is not set\n"
    "CONFIG_NR_CPUS=8192\n"
    "CONFIG_X=\"a \\\"quoted\\\" word\"\n";

TEST(Kconfig, ParsesValues) {
  auto c = parse_kconfig(kConfig);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->enabled("LIVEPATCH"));
  EXPECT_TRUE(c->enabled("CONFIG_LIVEPATCH"));
  EXPECT_TRUE(c->modular("VFIO"));
  EXPECT_TRUE(c->builtin_or_module("VFIO"));
  EXPECT_FALSE(c->enabled("VFIO"));
  EXPECT_EQ(c->value("MODULE_SIG_FORCE"), "n");
  EXPECT_FALSE(c->value("NOT_THERE").has_value());
  EXPECT_EQ(c->value("NR_CPUS"), "8192");
  EXPECT_EQ(c->string("CC_VERSION_TEXT"), "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0");
  EXPECT_EQ(c->string("X"), "a \"quoted\" word");
  EXPECT_EQ(c->size(), 6u);
}

TEST(Kconfig, ReadsGzipLikeProcConfigGz) {
  test::TempDir dir;
  ASSERT_TRUE(write_file_text(dir.path() / "config", kConfig));
  auto r = test::run_command(fmt::format("gzip -n -c {0}/config > {0}/config.gz", dir.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto c = read_kconfig(dir.path() / "config.gz");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->enabled("LIVEPATCH"));
  // A truncated gzip is an error, not a partial config.
  auto gz = read_file_bytes(dir.path() / "config.gz");
  ASSERT_TRUE(gz.ok());
  std::string half(reinterpret_cast<const char*>(gz->data()), gz->size() / 2);
  ASSERT_TRUE(write_file_text(dir.path() / "half.gz", half));
  auto bad = read_kconfig(dir.path() / "half.gz");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("half.gz"), std::string::npos);
}

TEST(Kconfig, MalformedIsAnError) {
  auto a = parse_kconfig("CONFIG_A=y\nthis is not config\n", "cfg");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("cfg line 2"), std::string::npos);
  EXPECT_FALSE(parse_kconfig("# only comments\n").ok());
  EXPECT_FALSE(parse_kconfig("CONFIG_=y\n").ok());
  EXPECT_EQ(read_kconfig("/nonexistent/config").error().code, ExitCode::missing);
}

TEST(Compiler, ParsesIdentificationLines) {
  auto a = parse_compiler_text("gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->family, "gcc");
  EXPECT_EQ(a->version, "12.2.0");
  EXPECT_EQ(a->command, "gcc-12");
  EXPECT_EQ(a->text, "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0");
  auto b = parse_compiler_text("gcc version 10.2.1 20210110 (Debian 10.2.1-6)");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->version, "10.2.1");
  EXPECT_EQ(b->command, "gcc");
  auto c = parse_compiler_text("gcc (GCC) 13.2.1 20231011 (Red Hat 13.2.1-4)");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->version, "13.2.1");
  auto d = parse_compiler_text("Ubuntu clang version 18.1.3 (1ubuntu1), Ubuntu LLD 18.1.3");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->family, "clang");
  EXPECT_EQ(d->version, "18.1.3");
  EXPECT_FALSE(parse_compiler_text("icc 2021").has_value());
  EXPECT_FALSE(parse_compiler_text("").has_value());
  EXPECT_FALSE(parse_compiler_text("gcc (no version here)").has_value());
}

TEST(Compiler, Comparison) {
  auto k = parse_compiler_text("gcc-12 (Debian 12.2.0-14) 12.2.0");
  EXPECT_EQ(compare_compilers(k, parse_compiler_text("gcc (Debian 12.2.0-14) 12.2.0")), CompilerMatch::exact);
  EXPECT_EQ(compare_compilers(k, parse_compiler_text("gcc (Debian 12.3.0-1) 12.3.0")), CompilerMatch::same_major);
  EXPECT_EQ(compare_compilers(k, parse_compiler_text("gcc (Debian 14.2.0-19) 14.2.0")), CompilerMatch::different);
  EXPECT_EQ(compare_compilers(k, parse_compiler_text("clang version 12.2.0")), CompilerMatch::different);
  EXPECT_EQ(compare_compilers(k, std::nullopt), CompilerMatch::unknown);
}

TEST(Compiler, LocalGccAnswers) {
  auto local = local_compiler("gcc");
  ASSERT_TRUE(local.has_value()) << "gcc is a build dependency; it must run";
  EXPECT_EQ(local->family, "gcc");
  EXPECT_FALSE(local->version.empty());
  EXPECT_FALSE(local_compiler("no-such-compiler-xyz").has_value());
  EXPECT_FALSE(local_compiler("gcc; echo pwned").has_value());  // never a shell command line
}

TEST(Banner, ParsesLinuxVersionLines) {
  auto b = parse_banner(
      "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, "
      "GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2025-10-10)\n");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->release, "6.1.0-56-amd64");
  EXPECT_EQ(b->compiler, "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0");
  auto old = parse_banner(
      "Linux version 5.10.0-8-amd64 (debian-kernel@lists.debian.org) (gcc-10 (Debian 10.2.1-6) "
      "10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) #1 SMP Debian 5.10.46-4");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->compiler, "gcc-10 (Debian 10.2.1-6) 10.2.1 20210110");
  auto older = parse_banner("Linux version 4.19.0-6-amd64 (debian-kernel@lists.debian.org) (gcc version 8.3.0 (Debian 8.3.0-6)) #1 SMP");
  ASSERT_TRUE(older.has_value());
  EXPECT_EQ(parse_compiler_text(older->compiler)->version, "8.3.0");
  EXPECT_FALSE(parse_banner("Linux version %s (%s)").has_value());
  EXPECT_FALSE(parse_banner("Hello").has_value());
  // Found among other bytes; a printf format with the same prefix is skipped.
  std::string blob = std::string("xx\0Linux version %s\0junk\0", 26) + "Linux version 6.12.0 (a@b) (gcc (GCC) 14.2.0, GNU ld 2.43) #1\n" +
                     std::string(3, '\0');
  auto found = find_banner(ByteView(reinterpret_cast<const uint8_t*>(blob.data()), blob.size()));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->release, "6.12.0");
  EXPECT_EQ(found->compiler, "gcc (GCC) 14.2.0");
}

TEST(ModuleSymvers, ParsesBothLayouts) {
  auto s = parse_module_symvers(
      "0x4c9d28b0\tphys_base\tvmlinux\tEXPORT_SYMBOL\t\n"
      "0x039823de\tiommu_alloc_resv_region\tvmlinux\tEXPORT_SYMBOL_GPL\t\n"
      "0x12345678\tvfio_pin_pages\tdrivers/vfio/vfio\tEXPORT_SYMBOL_GPL\tIOMMUFD\n"
      "0x87654321\told_layout_sym\tMY_NS\tdrivers/x/y\tEXPORT_SYMBOL\n");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->size(), 4u);
  ASSERT_NE(s->find("iommu_alloc_resv_region"), nullptr);
  EXPECT_EQ(s->find("iommu_alloc_resv_region")->kind, "EXPORT_SYMBOL_GPL");
  EXPECT_EQ(s->find("vfio_pin_pages")->ns, "IOMMUFD");
  EXPECT_EQ(s->find("old_layout_sym")->module, "drivers/x/y");
  EXPECT_EQ(s->find("old_layout_sym")->ns, "MY_NS");
  EXPECT_FALSE(s->exported("dmar_rmrr_units"));
  auto bad = parse_module_symvers("0x1\tonly_two\n", "syms");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("syms line 1"), std::string::npos);
  EXPECT_FALSE(parse_module_symvers("nothex\ta\tb\tc\n").ok());
}

TEST(Kbuild, InspectsATree) {
  test::TempDir dir;
  auto d = dir.path();
  std::filesystem::create_directories(d / "include/generated");
  std::filesystem::create_directories(d / "include/config");
  ASSERT_TRUE(write_file_text(d / "Makefile", "include /somewhere/Makefile\n"));
  ASSERT_TRUE(write_file_text(d / "include/generated/utsrelease.h", "#define UTS_RELEASE \"6.1.0-56-amd64\"\n"));
  ASSERT_TRUE(write_file_text(d / "include/config/kernel.release", "6.1.192\n"));
  ASSERT_TRUE(write_file_text(d / "include/generated/compile.h",
                              "#define UTS_MACHINE\t\t\"x86_64\"\n#define LINUX_COMPILER\t\t\"gcc-12 (Debian 12.2.0-14) 12.2.0, "
                              "GNU ld (GNU Binutils for Debian) 2.40\"\n"));
  auto t = inspect_kbuild(d);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(t->has_makefile);
  EXPECT_FALSE(t->has_config);
  EXPECT_FALSE(t->has_symvers);
  EXPECT_EQ(t->release, "6.1.0-56-amd64");  // utsrelease.h wins over Debian's kernel.release
  EXPECT_EQ(t->compiler, "gcc-12 (Debian 12.2.0-14) 12.2.0");
  EXPECT_EQ(inspect_kbuild(d / "nope").error().code, ExitCode::missing);
  std::filesystem::remove(d / "Makefile");
  EXPECT_EQ(inspect_kbuild(d).error().code, ExitCode::missing);
  EXPECT_EQ(default_kbuild_dir("6.1.0-56-amd64"), std::filesystem::path("/lib/modules/6.1.0-56-amd64/build"));
}

}  // namespace
