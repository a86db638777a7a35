// The source and compile stages on the real Debian 6.1 kernel (ctest label `kernel`): the linux-source
// tarball and the installed headers. Missing inputs FAIL (they are a setup step, not an optional extra).
//
// Inputs, first found wins:
//   $RELAX_RMRR_KERNEL_ENV, else ${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/debian-6.1/kernel.env
//   (written by tests/setup/kernel.sh debian-6.1: KBUILD=, SOURCE_TARBALL=, RELEASE=),
//   else the environment variables RELAX_RMRR_KBUILD and RELAX_RMRR_SOURCE_TARBALL.
#include "../unit/test_util.h"
#include "common/file.h"
#include "common/subprocess.h"
#include "compile/compile.h"
#include "kernel_env.h"
#include "source/source.h"
#include "source/transform.h"

#include <gelf.h>
#include <libelf.h>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

namespace fs = std::filesystem;
using namespace rr;

namespace {

constexpr const char* kSetup =
    "run `tests/setup/kernel.sh debian-6.1` (it writes kernel.env), or set RELAX_RMRR_KBUILD and "
    "RELAX_RMRR_SOURCE_TARBALL";

struct Inputs {
  fs::path kbuild, tarball;
  std::string from;  // where they came from, for messages
};

Inputs inputs() {
  test::KernelEnv env = test::read_kernel_env();
  return {env.get("KBUILD"), env.get("SOURCE_TARBALL"),
          env.values.empty() ? "environment (no " + env.file.string() + ")" : env.file.string()};
}

// Section name -> bytes, for the .text.* sections of an object (libelf).
std::map<std::string, std::string> text_sections(const fs::path& object) {
  std::map<std::string, std::string> out;
  elf_version(EV_CURRENT);
  int fd = ::open(object.c_str(), O_RDONLY);
  if (fd < 0) return out;
  Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
  size_t shstrndx = 0;
  if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0) {
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS) continue;
      const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
      if (!name || !starts_with(name, ".text")) continue;
      Elf_Data* d = elf_getdata(scn, nullptr);
      out[name] = d && d->d_buf ? std::string(static_cast<const char*>(d->d_buf), d->d_size) : std::string();
    }
  }
  if (elf) elf_end(elf);
  ::close(fd);
  return out;
}

class Debian61 : public ::testing::Test {
 protected:
  void SetUp() override {
    in_ = inputs();
    // FAIL, not skip: these are the inputs the `kernel` label exists to test.
    ASSERT_FALSE(in_.tarball.empty()) << "no linux-source tarball known (looked in " << in_.from << "): " << kSetup;
    ASSERT_TRUE(fs::is_regular_file(in_.tarball)) << in_.tarball << " (from " << in_.from << ") is missing: " << kSetup;
    ASSERT_FALSE(in_.kbuild.empty()) << "no kbuild tree known (looked in " << in_.from << "): " << kSetup;
    ASSERT_TRUE(fs::is_regular_file(in_.kbuild / "Makefile"))
        << in_.kbuild << " (from " << in_.from << ") is not a kbuild tree: " << kSetup << " (it installs linux-headers)";
  }
  // The shared cache, as the product uses it: the first run extracts, later runs hit.
  source::LocateOptions locate_options() const { return source::LocateOptions{source::default_cache_dir()}; }
  // The 6.1 driver from the tarball, and the relax transform of it.
  struct Driver {
    source::SourceTree tree;
    std::string text;
    source::Transform transform;
  };
  void load_driver(Driver& d) {
    auto t = source::locate(in_.tarball, locate_options());
    ASSERT_TRUE(t.ok()) << t.error().message;
    auto text = read_file_text(t->iommu_c);
    ASSERT_TRUE(text.ok());
    auto tr = source::relax_transform(*text, t->iommu_c_relative);
    ASSERT_TRUE(tr.ok()) << tr.error().message;
    d = Driver{std::move(*t), std::move(*text), std::move(*tr)};
  }
  Inputs in_;
};

TEST_F(Debian61, SourceTarballLocatesTheIntelDriver) {
  auto t = source::locate(in_.tarball, locate_options());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->layout, source::Layout::intel_dir);
  ASSERT_TRUE(t->version.has_value());
  EXPECT_EQ(t->version->version, 6u);
  EXPECT_EQ(t->version->patchlevel, 1u);
  EXPECT_TRUE(fs::is_regular_file(t->root / "drivers/iommu/dma-iommu.h")) << "relative includes of the driver";
  EXPECT_TRUE(fs::is_regular_file(t->root / "drivers/iommu/intel/pasid.h"));
  fmt::print(stderr, "source {}: {} ({}), hash {:.2f}s, extract {:.2f}s\n", t->version->str(), t->root.string(),
             t->cache_hit ? "cache hit" : "extracted", t->hash_seconds, t->extract_seconds);
  auto again = source::locate(in_.tarball, locate_options());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->cache_hit);
  EXPECT_LT(again->hash_seconds + again->extract_seconds, 2.0) << "a cache hit must not extract again";
}

TEST_F(Debian61, TransformAndPatchAgreeOnTheRealDriver) {
  Driver drv;
  ASSERT_NO_FATAL_FAILURE(load_driver(drv));
  ASSERT_EQ(drv.transform.edits.size(), 1u);
  EXPECT_NE(drv.transform.edits[0].old_text.find("IS_USB_DEVICE(pdev) || IS_GFX_DEVICE(pdev)"), std::string::npos);
  auto patched = source::apply_edits(drv.text, drv.transform.edits);
  ASSERT_TRUE(patched.ok());
  auto diff = source::unified_diff(drv.text, drv.transform.edits, drv.tree.iommu_c_relative);
  ASSERT_TRUE(diff.ok());
  test::TempDir d;
  fs::create_directories(d.path() / "drivers/iommu/intel");
  fs::copy_file(drv.tree.iommu_c, d.path() / "drivers/iommu/intel/iommu.c");
  ASSERT_TRUE(write_file_text(d.path() / "relax.patch", *diff).ok());
  auto r = test::run_command(fmt::format("cd {} && patch -p1 -F0 < relax.patch", d.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(*read_file_text(d.path() / "drivers/iommu/intel/iommu.c"), *patched);
}

TEST_F(Debian61, OriginalAndPatchedCompileAndDifferWhereExpected) {
  Driver drv;
  ASSERT_NO_FATAL_FAILURE(load_driver(drv));

  test::TempDir work;
  compile::CompileOptions o;
  o.kbuild = in_.kbuild;
  o.work_dir = work.path();
  auto r = compile::compile_source(drv.tree, drv.transform, o);
  ASSERT_TRUE(r.ok()) << r.error().message << "\nhint: " << r.error().hint;
  fmt::print(stderr, "compiled both in {:.1f}s wall (original {:.1f}s, patched {:.1f}s), CC={}\n", r->seconds, r->original.seconds,
             r->patched.seconds, r->cc.empty() ? "(kbuild default)" : r->cc);
  EXPECT_EQ(r->patched.make_output.find("warning:"), std::string::npos) << "the transform must compile cleanly:\n"
                                                                        << r->patched.make_output;
  ASSERT_TRUE(fs::is_regular_file(r->original.object));
  ASSERT_TRUE(fs::is_regular_file(r->patched.object));
  EXPECT_NE(r->original.compiler_command.find("-ffunction-sections"), std::string::npos) << r->original.compiler_command;
  EXPECT_NE(r->original.compiler_command.find(" -c -o " + r->original.object.string()), std::string::npos) << r->original.compiler_command;
  EXPECT_EQ(r->original.compiler_command.find("-DMODULE"), std::string::npos) << "compiled like the built-in driver";
  // Both variants went through ONE make (kbuild's start-up once), each in its own directory.
  EXPECT_EQ(r->original.make_argv.back(), "patched/iommu.o") << proc::quote_argv(r->original.make_argv);
  EXPECT_NE(r->patched.compiler_command.find(" -c -o " + r->patched.object.string()), std::string::npos) << r->patched.compiler_command;
  if (!r->compiler.version_text.empty()) {
    ASSERT_TRUE(r->compiler.found) << r->compiler.version_text;
    EXPECT_TRUE(starts_with(r->original.compiler_command, r->compiler.program + " ")) << r->original.compiler_command;
  }

  auto a = text_sections(r->original.object);
  auto b = text_sections(r->patched.object);
  ASSERT_GT(a.size(), 100u) << "-ffunction-sections gives each function its own section";
  for (const char* fn : {".text.intel_iommu_attach_device", ".text.intel_iommu_get_resv_regions"}) {
    ASSERT_TRUE(a.count(fn) && b.count(fn)) << fn << " missing";
    EXPECT_NE(a[fn], b[fn]) << fn << " must change: it inlines device_rmrr_is_relaxable()";
  }
  // A function that has nothing to do with RMRRs is byte-identical (relocation targets are not in the bytes).
  ASSERT_TRUE(a.count(".text.intel_iommu_iova_to_phys"));
  EXPECT_EQ(a[".text.intel_iommu_iova_to_phys"], b[".text.intel_iommu_iova_to_phys"]);
  // Exactly the attach path (with its .cold part) and the reserved regions. __FILE__ is mapped
  // to the in-tree path, so WARN sites elsewhere differ at most in __bug_table line numbers, not in code.
  std::string names;
  for (const auto& [name, bytes] : a) {
    auto it = b.find(name);
    if (it == b.end() || it->second != bytes) names += " " + name;
  }
  for (const auto& [name, bytes] : b)
    if (!a.count(name)) names += " " + name + "(new)";
  fmt::print(stderr, "text sections differing by bytes:{}\n", names);
  EXPECT_EQ(names, " .text.intel_iommu_attach_device .text.intel_iommu_get_resv_regions .text.unlikely.intel_iommu_attach_device");
}

TEST_F(Debian61, ModuleObjectOptionCompilesToo) {
  auto t = source::locate(in_.tarball, locate_options());
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto text = read_file_text(t->iommu_c);
  ASSERT_TRUE(text.ok());
  test::TempDir work;
  compile::CompileOptions o;
  o.kbuild = in_.kbuild;
  o.work_dir = work.path();
  o.source_relative = t->iommu_c_relative;
  o.include_dirs = t->include_dirs;
  o.as_module = true;
  auto r = compile::compile_variant(o, "original", *text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(r->compiler_command.find("-DMODULE"), std::string::npos) << r->compiler_command;
  EXPECT_NE(r->kbuild_command.find("objtool"), std::string::npos);
}

// kbuild's command remembered (compile/command_cache.h): the second compile runs it without make and gives the same
// bytes make gives, in the same directory (the objects record their paths in DWARF, so only there).
TEST_F(Debian61, RecordedCommandGivesTheObjectMakeGives) {
  Driver drv;
  ASSERT_NO_FATAL_FAILURE(load_driver(drv));
  test::TempDir work, cache;
  compile::CompileOptions o;
  o.kbuild = in_.kbuild;
  o.work_dir = work.path();
  o.command_cache_dir = cache.path();
  auto by_make = compile::compile_source(drv.tree, drv.transform, o);
  ASSERT_TRUE(by_make.ok()) << by_make.error().message << "\nhint: " << by_make.error().hint;
  ASSERT_FALSE(by_make->original.replayed);
  auto made_original = read_file_bytes(by_make->original.object);
  auto made_patched = read_file_bytes(by_make->patched.object);
  ASSERT_TRUE(made_original.ok() && made_patched.ok());

  auto replayed = compile::compile_source(drv.tree, drv.transform, o);
  ASSERT_TRUE(replayed.ok()) << replayed.error().message;
  EXPECT_TRUE(replayed->original.replayed);
  EXPECT_TRUE(replayed->patched.replayed);
  EXPECT_EQ(replayed->original.compiler_command, by_make->original.compiler_command);
  EXPECT_NE(replayed->original.kbuild_command.find("objtool"), std::string::npos) << "objtool runs as under make";
  EXPECT_TRUE(*read_file_bytes(replayed->original.object) == *made_original) << "the original object differs from make's";
  EXPECT_TRUE(*read_file_bytes(replayed->patched.object) == *made_patched) << "the patched object differs from make's";
  fmt::print(stderr, "both variants: make {:.2f}s, recorded command {:.2f}s (wall, in parallel)\n", by_make->seconds, replayed->seconds);
}

}  // namespace
