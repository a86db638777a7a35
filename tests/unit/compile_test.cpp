// The compile stage without a kernel: .cmd parsing, the target compiler, and the errors a broken
// kbuild tree gives. The real compile is in tests/kernel (label `kernel`).
#include "compile/compile.h"
#include "common/file.h"
#include "compile/command_cache.h"
#include "source/transform.h"
#include "test_util.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace rr;

namespace {

TEST(KbuildCmd, SplitsCompilerFromObjtool) {
  std::string text =
      "cmd_/w/original/iommu.o := gcc-12 -Wp,-MMD,/w/original/.iommu.o.d -nostdinc -DKBUILD_BASENAME='\"iommu\"' "
      "-DX='\"a;b\"' -c -o /w/original/iommu.o /w/original/iommu.c   ; ./tools/objtool/objtool --orc /w/original/iommu.o\n"
      "\nsource_/w/original/iommu.o := /w/original/iommu.c\n";
  auto k = compile::parse_cmd_file(text, "t.cmd");
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->compiler,
            "gcc-12 -Wp,-MMD,/w/original/.iommu.o.d -nostdinc -DKBUILD_BASENAME='\"iommu\"' -DX='\"a;b\"' -c -o "
            "/w/original/iommu.o /w/original/iommu.c");
  EXPECT_TRUE(k->full.ends_with("objtool --orc /w/original/iommu.o"));
  EXPECT_FALSE(compile::parse_cmd_file("source_x.o := x.c\n", "x.cmd").ok());
  // Linux 6.3 renamed the variable.
  auto saved = compile::parse_cmd_file("savedcmd_/w/x.o := gcc -c -o /w/x.o /w/x.c; ./tools/objtool/objtool /w/x.o\n", "x.cmd");
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->compiler, "gcc -c -o /w/x.o /w/x.c");
}

TEST(TargetCompiler, FromConfigVersionText) {
  test::TempDir k;
  fs::create_directories(k.path() / "include/config");
  // A compiler that surely exists here, named as the kernel would name it.
  ASSERT_TRUE(write_file_text(k.path() / "include/config/auto.conf", "CONFIG_X=y\nCONFIG_CC_VERSION_TEXT=\"sh (Fake) 1.0\"\n").ok());
  auto tc = compile::target_compiler(k.path());
  ASSERT_TRUE(tc.ok());
  EXPECT_EQ(tc->version_text, "sh (Fake) 1.0");
  EXPECT_EQ(tc->program, "sh");
  EXPECT_TRUE(tc->found);

  ASSERT_TRUE(write_file_text(k.path() / "include/config/auto.conf", "CONFIG_CC_VERSION_TEXT=\"gcc-99 (Nowhere 99.1.0) 99.1.0\"\n").ok());
  tc = compile::target_compiler(k.path());
  ASSERT_TRUE(tc.ok());
  EXPECT_EQ(tc->program, "gcc-99");
  EXPECT_FALSE(tc->found);

  test::TempDir none;  // before 5.8 nothing records it: kbuild's default compiler then
  tc = compile::target_compiler(none.path());
  ASSERT_TRUE(tc.ok());
  EXPECT_TRUE(tc->program.empty());
}

TEST(CompileVariant, NoKbuildTreeIsMissingWithAHeadersHint) {
  test::TempDir d;
  compile::CompileOptions o;
  o.kbuild = d.path() / "no-such-build";
  o.work_dir = d.path() / "work";
  o.source_relative = "drivers/iommu/intel/iommu.c";
  auto r = compile::compile_pair(o, "int a;\n", "int b;\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::missing);
  EXPECT_NE(r.error().message.find("is not a kernel build tree"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().hint.find("linux-headers"), std::string::npos);
}

TEST(CompileVariant, MissingTargetCompilerIsNamed) {
  test::TempDir d;
  fs::create_directories(d.path() / "kbuild/include/config");
  ASSERT_TRUE(write_file_text(d.path() / "kbuild/Makefile", "all:\n").ok());
  ASSERT_TRUE(write_file_text(d.path() / "kbuild/include/config/auto.conf", "CONFIG_CC_VERSION_TEXT=\"gcc-99 (Nowhere) 99.1.0\"\n").ok());
  compile::CompileOptions o;
  o.kbuild = d.path() / "kbuild";
  o.work_dir = d.path() / "work";
  o.source_relative = "drivers/iommu/intel/iommu.c";
  auto r = compile::compile_pair(o, "int a;\n", "int b;\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::missing);
  EXPECT_NE(r.error().message.find("gcc-99"), std::string::npos) << r.error().message;
}

// A stand-in kbuild Makefile: "compiles" by copying, writes a .cmd like kbuild, or fails like gcc.
// fail: the compiler fails with `error_line` (default: a missing header).
void fake_kbuild(const fs::path& dir, bool fail,
                 const std::string& error_line = "$(M)/iommu.c:12:10: fatal error: linux/nothing.h: No such file or directory") {
  fs::create_directories(dir);
  std::string mk =
      fail ? "%.o:\n\t@echo '" + error_line + "' >&2; exit 1\n"
           : "%.o:\n\t@cp $(M)/$*.c $(M)/$@\n\t@echo 'cmd_$(M)/$@ := $(CC) -c -o $(M)/$@ $(M)/$*.c ; true' > $(M)/$(@D)/.$(@F).cmd\n";
  ASSERT_TRUE(write_file_text(dir / "Makefile", mk).ok());
}

TEST(CompilePair, RunsBothVariantsAndReadsTheCmdFile) {
  test::TempDir d;
  fake_kbuild(d.path() / "kbuild", false);
  compile::CompileOptions o;
  o.kbuild = d.path() / "kbuild";
  o.work_dir = d.path() / "work";
  o.source_relative = "drivers/iommu/intel/iommu.c";
  o.include_dirs = {"/src/drivers/iommu/intel", "/src/drivers/iommu"};
  o.cc = "cc-test";
  auto r = compile::compile_pair(o, "original\n", "patched\n");
  ASSERT_TRUE(r.ok()) << r.error().message << "\n" << r.error().hint;
  EXPECT_EQ(r->cc, "cc-test");
  EXPECT_EQ(r->original.object, d.path() / "work/original/iommu.o");
  EXPECT_EQ(r->patched.object, d.path() / "work/patched/iommu.o");
  EXPECT_EQ(*read_file_text(r->original.object), "original\n");
  EXPECT_EQ(*read_file_text(r->patched.object), "patched\n");
  EXPECT_EQ(r->original.compiler_command,
            fmt::format("cc-test -c -o {0}/original/iommu.o {0}/original/iommu.c", (d.path() / "work").string()));
  // Both variants in one make: kbuild's start-up once.
  EXPECT_EQ(r->original.make_argv,
            (std::vector<std::string>{"make", "-C", (d.path() / "kbuild").string(), "M=" + (d.path() / "work").string(), "-j2",
                                      "CC=cc-test", "original/iommu.o", "patched/iommu.o"}));
  EXPECT_EQ(r->patched.make_argv, r->original.make_argv);
  auto kb = read_file_text(d.path() / "work/patched/Kbuild");
  ASSERT_TRUE(kb.ok());
  EXPECT_NE(kb->find("obj-y := iommu.o\n"), std::string::npos) << *kb;
  EXPECT_NE(kb->find("ccflags-y := -I/src/drivers/iommu/intel -I/src/drivers/iommu -ffunction-sections -fdata-sections "
                     "-fmacro-prefix-map=" +
                     (d.path() / "work/patched").string() + "/=drivers/iommu/intel/\n"),
            std::string::npos)
      << *kb;
  EXPECT_GT(r->seconds, 0.0);
  Json j = compile::to_json(*r);
  EXPECT_EQ(j["patched"]["object"].as_string(), (d.path() / "work/patched/iommu.o").string());
  EXPECT_EQ(j["cc"].as_string(), "cc-test");

  o.as_module = true;
  o.source_relative = "drivers/iommu/intel-iommu.c";
  o.work_dir = d.path() / "work-old";
  r = compile::compile_pair(o, "a\n", "b\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->patched.object, d.path() / "work-old/patched/intel-iommu.o");
  EXPECT_EQ(r->patched.make_argv.back(), "patched/intel-iommu.o");
  // One variant alone (as_module, not parallel): make in its own directory.
  o.parallel = false;
  o.work_dir = d.path() / "work-alone";
  r = compile::compile_pair(o, "a\n", "b\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->original.make_argv,
            (std::vector<std::string>{"make", "-C", (d.path() / "kbuild").string(), "M=" + (d.path() / "work-alone/original").string(),
                                      "CC=cc-test", "intel-iommu.o"}));
  kb = read_file_text(d.path() / "work-old/original/Kbuild");
  EXPECT_NE(kb->find("obj-m := intel-iommu.o\n"), std::string::npos) << *kb;
  EXPECT_NE(kb->find("=drivers/iommu/\n"), std::string::npos) << "__FILE__ maps to the old in-tree directory: " << *kb;
}

// compile_pair through a fake kbuild whose compiler fails with `error_line` (empty: the default, a missing header).
Result<compile::CompileResult> failing_compile(const test::TempDir& d, const std::string& error_line = "") {
  if (error_line.empty()) fake_kbuild(d.path() / "kbuild", true);
  else fake_kbuild(d.path() / "kbuild", true, error_line);
  compile::CompileOptions o;
  o.kbuild = d.path() / "kbuild";
  o.work_dir = d.path() / "work";
  o.source_relative = "drivers/iommu/intel/iommu.c";
  o.cc = "-";
  return compile::compile_pair(o, "x\n", "y\n");
}

TEST(CompilePair, CompilerErrorShowsLastLinesAndHint) {
  test::TempDir d;
  auto r = failing_compile(d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::missing);
  EXPECT_NE(r.error().message.find("fatal error: linux/nothing.h: No such file or directory"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().hint.find("linux-headers-$(uname -r)"), std::string::npos) << r.error().hint;
}

// C errors in the kernel's own driver against the target's headers: the source is another kernel's. Refused.
TEST(CompilePair, DriverThatDoesNotCompileAgainstTheHeadersIsRefused) {
  test::TempDir d;
  auto r = failing_compile(d, "$(M)/iommu.c:2585:23: error: storage size of iommu_syscore is not known");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::refused);
  EXPECT_NE(r.error().message.find("storage size of iommu_syscore"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().hint.find("not the target kernel's"), std::string::npos) << r.error().hint;
}

TEST(CompilePair, PathsMakeCannotTakeAreRefused) {
  test::TempDir d;
  fake_kbuild(d.path() / "kbuild", false);
  compile::CompileOptions o;
  o.kbuild = d.path() / "kbuild";
  o.work_dir = d.path() / "work dir";
  o.source_relative = "drivers/iommu/intel/iommu.c";
  o.cc = "-";
  auto r = compile::compile_pair(o, "x\n", "y\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("characters make cannot take"), std::string::npos) << r.error().message;
}

}  // namespace

namespace {

TEST(KbuildVersion, FollowsIncludeLikeDebianHeaders) {
  test::TempDir d;
  fs::create_directories(d.path() / "common");
  fs::create_directories(d.path() / "flavour");
  ASSERT_TRUE(write_file_text(d.path() / "common/Makefile", "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION =\n").ok());
  ASSERT_TRUE(write_file_text(d.path() / "flavour/Makefile", "include " + (d.path() / "common/Makefile").string() + "\n").ok());
  auto v = compile::kbuild_version(d.path() / "flavour");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->str(), "6.1.192");
  EXPECT_FALSE(compile::kbuild_version(d.path() / "none").has_value());
}

TEST(CompileSource, RefusesASourceOfAnotherVersion) {
  test::TempDir d;
  fake_kbuild(d.path() / "kbuild", false);
  {
    auto mk = read_file_text(d.path() / "kbuild/Makefile");
    ASSERT_TRUE(write_file_text(d.path() / "kbuild/Makefile", "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 95\n" + *mk).ok());
  }
  fs::create_directories(d.path() / "src/drivers/iommu/intel");
  std::string driver = "static bool device_rmrr_is_relaxable(struct device *dev)\n{\n\treturn false;\n}\n";
  ASSERT_TRUE(write_file_text(d.path() / "src/drivers/iommu/intel/iommu.c", driver).ok());
  ASSERT_TRUE(write_file_text(d.path() / "src/Makefile", "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n").ok());
  auto tree = source::open_directory(d.path() / "src");
  ASSERT_TRUE(tree.ok()) << tree.error().message;
  auto tr = source::relax_transform(driver, tree->iommu_c_relative);
  ASSERT_TRUE(tr.ok());
  compile::CompileOptions o;
  o.kbuild = d.path() / "kbuild";
  o.work_dir = d.path() / "work";
  o.cc = "-";
  auto r = compile::compile_source(*tree, *tr, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::refused);
  EXPECT_NE(r.error().message.find("is Linux 6.1.192, but the kbuild tree"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("is Linux 6.12.95"), std::string::npos) << r.error().message;
  o.allow_version_mismatch = true;
  r = compile::compile_source(*tree, *tr, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto patched = read_file_text(r->patched.object);  // the fake kbuild copies the source
  ASSERT_TRUE(patched.ok());
  EXPECT_NE(patched->find("return true;"), std::string::npos);
  EXPECT_EQ(*read_file_text(r->original.object), driver);
}

}  // namespace

// kbuild's compile command remembered per kbuild tree (compile/command_cache.h).
namespace {

// A fake kbuild whose recorded command really runs (it copies the source, like the other fake) and which logs
// every make run to <kbuild>/make.log, so a test can tell make from the recorded command.
void replayable_kbuild(const fs::path& dir) {
  fs::create_directories(dir / "include/config");
  // The .cmd kbuild would write, '$' escaped for make as "$$" (the recorded command writes a file named '$marker').
  ASSERT_TRUE(write_file_text(dir / "cmd.template",
                              "cmd_@DIR@/iommu.o := ! grep -q BROKEN @DIR@/iommu.c && cp @DIR@/iommu.c @DIR@/iommu.o; "
                              "echo done > @DIR@/'$$marker'\n")
                  .ok());
  std::string mk =
      "%.o:\n"
      "\t@echo $(M) >> " +
      (dir / "make.log").string() +
      "\n"
      "\t@if grep -q BROKEN $(M)/$*.c; then echo '$(M)/$*.c:2585:23: error: storage size of iommu_syscore is not known' >&2; exit 1; fi\n"
      "\t@cp $(M)/$*.c $(M)/$@\n"
      "\t@sed 's#@DIR@#$(M)/$(@D)#g' " +
      (dir / "cmd.template").string() + " > $(M)/$(@D)/.$(@F).cmd\n";
  ASSERT_TRUE(write_file_text(dir / "Makefile", mk).ok());
  ASSERT_TRUE(write_file_text(dir / "include/config/auto.conf", "CONFIG_A=y\n").ok());
}

size_t make_runs(const fs::path& kbuild) {
  auto log = read_file_text(kbuild / "make.log");
  return log ? split_lines(*log).size() : 0;
}

compile::CompileOptions cached_options(const test::TempDir& d, const std::string& work) {
  compile::CompileOptions o;
  o.kbuild = d.path() / "kbuild";
  o.work_dir = d.path() / work;
  o.source_relative = "drivers/iommu/intel/iommu.c";
  o.cc = "-";
  o.command_cache_dir = d.path() / "cache";
  return o;
}

TEST(CommandCache, UnescapesWhatKbuildEscapedForMake) {
  EXPECT_EQ(compile::unescape_make("awk '!x[$$0]++' \\# not a comment"), "awk '!x[$0]++' # not a comment");
  EXPECT_EQ(compile::unescape_make("plain $ and \\ stay"), "plain $ and \\ stay");
}

TEST(CommandCache, TemplateNamesTheVariantDirectoryOnly) {
  auto t = compile::to_template("gcc -Wp,-MMD,/w/x/original/.a.o.d -o /w/x/original/a.o /w/x/original/a.c", "/w/x/original", "/w/x",
                                compile::CommandDir::kbuild);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->templ, "gcc -Wp,-MMD,@RELAX_RMRR_VARIANT_DIR@/.a.o.d -o @RELAX_RMRR_VARIANT_DIR@/a.o @RELAX_RMRR_VARIANT_DIR@/a.c");
  EXPECT_EQ(compile::from_template(t->templ, "/v/patched"), "gcc -Wp,-MMD,/v/patched/.a.o.d -o /v/patched/a.o /v/patched/a.c");
  // Not a function of the directory alone: it names the work directory elsewhere, or not the directory at all.
  EXPECT_FALSE(
      compile::to_template("gcc -I/w/x/inc -o /w/x/original/a.o", "/w/x/original", "/w/x", compile::CommandDir::kbuild).has_value());
  EXPECT_FALSE(compile::to_template("gcc -o a.o a.c", "/w/x/original", "/w/x", compile::CommandDir::kbuild).has_value());
}

// kbuild 6.13+ runs the compiler in the make's M= directory with relative names: the entry says where to run it.
TEST(CommandCache, RelativeCommandsRunWhereMakeRanThem) {
  EXPECT_EQ(compile::command_cwd(compile::CommandDir::kbuild, "/k", "/w/original"), fs::path("/k"));
  EXPECT_EQ(compile::command_cwd(compile::CommandDir::variant, "/k", "/w/original"), fs::path("/w/original"));
  EXPECT_EQ(compile::command_cwd(compile::CommandDir::work, "/k", "/w/original"), fs::path("/w"));
  auto paths = compile::command_paths("gcc -fmacro-prefix-map=/w/original/=x/ -c -o original/a.o original/a.c", "/w/original/a.o",
                                      "/w/original/a.c", "/k");
  ASSERT_TRUE(paths.has_value());
  EXPECT_EQ(paths->cwd, fs::path("/w"));
  paths = compile::command_paths("gcc -c -o ./a.o ./a.c", "/w/original/a.o", "/w/original/a.c", "/k");
  ASSERT_TRUE(paths.has_value());
  EXPECT_EQ(paths->cwd, fs::path("/w/original"));
  EXPECT_EQ(paths->object, "./a.o");
  paths = compile::command_paths("gcc -c -o /w/original/a.o /w/original/a.c", "/w/original/a.o", "/w/original/a.c", "/k");
  ASSERT_TRUE(paths.has_value());
  EXPECT_EQ(paths->cwd, fs::path("/k"));

  // A fake kbuild of the 6.13+ kind: the recorded command names the object relative to M, and is replayed there.
  test::TempDir d;
  fs::create_directories(d.path() / "kbuild");
  std::string mk =
      "%.o:\n"
      "\t@echo $(M) >> " +
      (d.path() / "kbuild/make.log").string() +
      "\n"
      "\t@cd $(M) && cp $*.c $@\n"
      "\t@echo 'cmd_$@ := cp -f $*.c $@ # -fmacro-prefix-map=$(M)/$(@D)/=x/' > $(M)/$(@D)/.$(@F).cmd\n";
  ASSERT_TRUE(write_file_text(d.path() / "kbuild/Makefile", mk).ok());
  auto first = compile::compile_pair(cached_options(d, "w1"), "a1\n", "b1\n");
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = compile::compile_pair(cached_options(d, "w2"), "a2\n", "b2\n");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE(second->original.replayed);
  EXPECT_EQ(*read_file_text(d.path() / "w2/original/iommu.o"), "a2\n");
  EXPECT_EQ(*read_file_text(d.path() / "w2/patched/iommu.o"), "b2\n");
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 2u);
}

TEST(CommandCache, SecondCompileRunsTheRecordedCommandWithoutMake) {
  test::TempDir d;
  replayable_kbuild(d.path() / "kbuild");
  auto first = compile::compile_pair(cached_options(d, "work1"), "original 1\n", "patched 1\n");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->original.replayed);
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 2u);

  auto second = compile::compile_pair(cached_options(d, "work2"), "original 2\n", "patched 2\n");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE(second->original.replayed);
  EXPECT_TRUE(second->patched.replayed);
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 2u) << "make ran although the command was remembered";
  // The recorded command ran for the new directory, '$$' as '$' (kbuild's escaping undone).
  EXPECT_EQ(*read_file_text(d.path() / "work2/original/iommu.o"), "original 2\n");
  EXPECT_EQ(*read_file_text(d.path() / "work2/patched/iommu.o"), "patched 2\n");
  EXPECT_TRUE(fs::exists(d.path() / "work2/patched/$marker"));
  EXPECT_EQ(second->original.compiler_command,
            fmt::format("! grep -q BROKEN {0}/iommu.c && cp {0}/iommu.c {0}/iommu.o", (d.path() / "work2/original").string()));
  EXPECT_EQ(compile::to_json(*second)["original"]["kbuild"].as_string(), "recorded command");
}

TEST(CommandCache, AChangedKbuildTreeOrCompilerRunsMakeAgain) {
  test::TempDir d;
  replayable_kbuild(d.path() / "kbuild");
  ASSERT_TRUE(compile::compile_pair(cached_options(d, "w1"), "a\n", "b\n").ok());
  ASSERT_EQ(make_runs(d.path() / "kbuild"), 2u);
  // The configuration is rewritten (a new headers package): the key changes, make runs.
  ASSERT_TRUE(write_file_text(d.path() / "kbuild/include/config/auto.conf", "CONFIG_A=y\nCONFIG_B=y\n").ok());
  auto r = compile::compile_pair(cached_options(d, "w2"), "a\n", "b\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->original.replayed);
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 4u);
  // Another CC is another command.
  auto o = cached_options(d, "w3");
  o.cc = "cc";
  r = compile::compile_pair(o, "a\n", "b\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->patched.replayed);
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 6u);
  // Without a cache directory make always runs.
  o = cached_options(d, "w4");
  o.command_cache_dir.clear();
  r = compile::compile_pair(o, "a\n", "b\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 8u);
}

TEST(CommandCache, ARecordedCommandThatFailsFallsBackToMakeAndIsRecordedAgain) {
  test::TempDir d;
  replayable_kbuild(d.path() / "kbuild");
  ASSERT_TRUE(compile::compile_pair(cached_options(d, "w1"), "a\n", "b\n").ok());
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(d.path() / "cache")) {
    ++entries;
    ASSERT_TRUE(write_file_text(e.path(), "# relax-rmrr kbuild command, v2\ncwd kbuild\nfalse @RELAX_RMRR_VARIANT_DIR@\n").ok());
  }
  EXPECT_EQ(entries, 2u);  // one per variant
  auto r = compile::compile_pair(cached_options(d, "w2"), "a2\n", "b2\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->original.replayed);
  EXPECT_EQ(*read_file_text(d.path() / "w2/original/iommu.o"), "a2\n");
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 4u);
  r = compile::compile_pair(cached_options(d, "w3"), "a3\n", "b3\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->original.replayed) << "make's command was recorded again";
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 4u);
}

// A command someone else could have written is not run: the entry (or its directory) writable by others.
TEST(CommandCache, EntriesOthersCanWriteAreNotRun) {
  test::TempDir d;
  replayable_kbuild(d.path() / "kbuild");
  ASSERT_TRUE(compile::compile_pair(cached_options(d, "w1"), "a\n", "b\n").ok());
  for (const auto& e : fs::directory_iterator(d.path() / "cache"))
    fs::permissions(e.path(), fs::perms::group_write | fs::perms::others_write, fs::perm_options::add);
  auto r = compile::compile_pair(cached_options(d, "w2"), "a\n", "b\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->original.replayed);
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 4u);
  // make recorded them again, as this user's own files: trusted again, unless the directory is writable by all.
  r = compile::compile_pair(cached_options(d, "w3"), "a\n", "b\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->original.replayed);
  fs::permissions(d.path() / "cache", fs::perms::others_write, fs::perm_options::add);
  r = compile::compile_pair(cached_options(d, "w4"), "a\n", "b\n");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->original.replayed);
}

// A compile error is diagnosed as before when the command was remembered: the recorded command fails, make runs
// it again and its output is what the user sees.
TEST(CommandCache, ACompileErrorIsStillDiagnosedByMake) {
  test::TempDir d;
  replayable_kbuild(d.path() / "kbuild");
  ASSERT_TRUE(compile::compile_pair(cached_options(d, "w1"), "a\n", "b\n").ok());
  auto r = compile::compile_pair(cached_options(d, "w2"), "a\n", "BROKEN\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::refused);
  EXPECT_NE(r.error().message.find("storage size of iommu_syscore"), std::string::npos) << r.error().message;
  EXPECT_EQ(make_runs(d.path() / "kbuild"), 3u) << "the original replayed, the patched one went to make";
}

}  // namespace
