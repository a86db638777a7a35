// `relax-rmrr patch` on synthetic kernel trees and tarballs: it writes a patch that applies, picks the layout
// and era, and on bad input exits non-zero with a message and writes nothing.
#include "common/file.h"
#include "iommu_fixtures.h"
#include "source/kernel_patch.h"
#include "test_util.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace rr;

namespace {

// A minimal kernel tree: the top Makefile (the version) and the driver at the layout's path.
void make_tree(const fs::path& root, std::string_view driver, unsigned major, unsigned minor, bool old_layout = false) {
  fs::create_directories(root / "drivers/iommu/intel");
  ASSERT_TRUE(
      write_file_text(root / "Makefile", fmt::format("VERSION = {}\nPATCHLEVEL = {}\nSUBLEVEL = 7\nEXTRAVERSION =\n", major, minor)).ok());
  ASSERT_TRUE(write_file_text(root / (old_layout ? "drivers/iommu/intel-iommu.c" : "drivers/iommu/intel/iommu.c"), driver).ok());
}

struct Run {
  int exit_code;
  std::string output;
};

// Runs the binary with a private source cache; stderr merged into output.
Run relax_rmrr(const test::TempDir& d, const std::string& args) {
  auto r = test::run_command(
      fmt::format("cd {} && RELAX_RMRR_CACHE={}/cache {} {}", d.path().string(), d.path().string(), RELAX_RMRR_BINARY, args));
  return {r.exit_code, r.output};
}

bool applies(const fs::path& root, const fs::path& patch) {
  return test::run_command(fmt::format("cd {} && patch -p1 -F0 --batch < {}", root.string(), patch.string())).exit_code == 0;
}

TEST(PatchCli, FullPatchForAModernTreeAppliesAndNamesTheEra) {
  test::TempDir d;
  make_tree(d.path() / "linux", test::kModernDriver, 6, 1);
  auto r = relax_rmrr(d, "patch --format full --source linux -o relax.patch");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("era 5.8-6.5"), std::string::npos) << r.output;
  auto text = read_file_text(d.path() / "relax.patch");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("--- a/drivers/iommu/intel/iommu.c\n+++ b/drivers/iommu/intel/iommu.c\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("+static bool intel_iommu_relax_rmrr;"), std::string::npos);
  EXPECT_NE(text->find("of Linux 6.1.7"), std::string::npos) << "the description names the source";
  EXPECT_TRUE(applies(d.path() / "linux", d.path() / "relax.patch"));
  // The patched tree has the option now: a second run refuses, and leaves the old file as it was.
  auto again = relax_rmrr(d, "patch --format full --source linux -o again.patch");
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("already"), std::string::npos) << again.output;
  EXPECT_FALSE(fs::exists(d.path() / "again.patch"));
}

TEST(PatchCli, OldLayoutAndTarballInput) {
  test::TempDir d;
  make_tree(d.path() / "linux-5.4", test::kOldDriver, 5, 4, /*old_layout=*/true);
  ASSERT_EQ(test::run_command(fmt::format("cd {} && tar -czf src.tar.gz linux-5.4", d.path().string())).exit_code, 0);
  auto r = relax_rmrr(d, "patch --format full --source src.tar.gz --output old.patch --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = Json::parse(r.output);
  ASSERT_TRUE(j.ok()) << r.output;
  EXPECT_EQ((*j)["era"].as_string(), "5.3-5.7");
  EXPECT_EQ((*j)["path"].as_string(), "drivers/iommu/intel-iommu.c");
  EXPECT_EQ((*j)["format"].as_string(), "full");
  EXPECT_TRUE((*j)["checked"].as_bool());
  EXPECT_TRUE(applies(d.path() / "linux-5.4", d.path() / "old.patch"));
}

TEST(PatchCli, KpatchPatchIsTheLivepatchEditAndKeepsLines) {
  test::TempDir d;
  make_tree(d.path() / "linux", test::kModernDriver, 6, 12);
  auto r = relax_rmrr(d, "patch --format kpatch --source linux -o k.patch");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 6.6 on: the user is told about require_direct on devices probed before the live patch.
  EXPECT_NE(r.output.find("require_direct"), std::string::npos) << r.output;
  auto text = read_file_text(d.path() / "k.patch");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("+\treturn true;"), std::string::npos);
  EXPECT_EQ(test::changed_lines(*text).find("__init"), std::string::npos) << "no __init code in a kpatch patch";
  EXPECT_EQ(test::changed_lines(*text).find("+static"), std::string::npos) << "no new data in a kpatch patch";
  EXPECT_NE(test::changed_lines(*text).find("-\tif (!dev_is_pci(dev))"), std::string::npos) << *text;
  size_t before = split_lines(test::kModernDriver).size();
  ASSERT_TRUE(applies(d.path() / "linux", d.path() / "k.patch"));
  EXPECT_EQ(split_lines(*read_file_text(d.path() / "linux/drivers/iommu/intel/iommu.c")).size(), before);
  // stdout by default
  make_tree(d.path() / "linux2", test::kModernDriver, 6, 1);
  auto s = test::run_command(
      fmt::format("cd {} && {{ {} patch --format kpatch --source linux2 2>/dev/null; }}", d.path().string(), RELAX_RMRR_BINARY));
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_NE(s.output.find("--- a/drivers/iommu/intel/iommu.c"), std::string::npos) << s.output;
}

TEST(PatchCli, EraComesFromTheIommuCoreWhenItIsThere) {
  // A 5.14-based distribution kernel with require_direct backported is of the 6.6+ era; a 6.8 tree whose
  // core lacks it is not.
  test::TempDir d;
  make_tree(d.path() / "backport", test::kModernDriver, 5, 14);
  ASSERT_TRUE(write_file_text(d.path() / "backport/drivers/iommu/iommu.c", "\tif (dev->iommu->require_direct)\n").ok());
  auto r = relax_rmrr(d, "patch --format kpatch --source backport -o b.patch --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"era\": \"6.6+\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("require_direct when it probes"), std::string::npos) << "the note is given" << r.output;
  make_tree(d.path() / "plain", test::kModernDriver, 6, 8);
  ASSERT_TRUE(write_file_text(d.path() / "plain/drivers/iommu/iommu.c", "/* no such flag */\n").ok());
  auto p = relax_rmrr(d, "patch --format kpatch --source plain -o p.patch --json");
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_NE(p.output.find("\"era\": \"5.8-6.5\""), std::string::npos) << p.output;
}

TEST(PatchCli, BadInputFailsAndWritesNothing) {
  test::TempDir d;
  fs::create_directories(d.path() / "empty/drivers/iommu");
  ASSERT_TRUE(write_file_text(d.path() / "empty/Makefile", "VERSION = 6\nPATCHLEVEL = 1\n").ok());
  fs::create_directories(d.path() / "other");
  ASSERT_TRUE(write_file_text(d.path() / "other/README", "not a kernel\n").ok());
  ASSERT_EQ(test::run_command(fmt::format("cd {} && tar -cJf other.tar.xz other", d.path().string())).exit_code, 0);
  ASSERT_TRUE(write_file_text(d.path() / "junk.tar.xz", "this is no tarball\n").ok());
  std::string odd(test::kModernDriver);
  for (size_t at = odd.find("!strncmp(str"); at != std::string::npos; at = odd.find("!strncmp(str")) odd.replace(at, 12, "!memcmp(str");
  make_tree(d.path() / "odd", odd, 6, 1);

  struct Case {
    std::string args, message;
  } cases[] = {
      {"--source empty", "has no intel-iommu driver"},  {"--source other.tar.xz", "not a Linux source tarball"},
      {"--source junk.tar.xz", "is not a tar archive"}, {"--source does-not-exist", "does not exist"},
      {"--source odd", "no `if (!strncmp(str"},         {"--format both --source odd", "--format"},
  };
  for (const auto& c : cases) {
    fs::remove(d.path() / "out.patch");
    auto r = relax_rmrr(d, "patch " + c.args + (c.args.find("--format") == std::string::npos ? " --format full" : "") + " -o out.patch");
    EXPECT_NE(r.exit_code, 0) << c.args << ": " << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << ": " << r.output;
    EXPECT_FALSE(fs::exists(d.path() / "out.patch")) << c.args << " wrote a file";
  }
}

TEST(PatchCli, DryRunCheckRefusesAPatchThatDoesNotFit) {
  test::TempDir d;
  make_tree(d.path() / "linux", test::kModernDriver, 6, 1);
  // Context that is not in the file: patch -F0 refuses.
  std::string other = "--- a/drivers/iommu/intel/iommu.c\n+++ b/drivers/iommu/intel/iommu.c\n@@ -1,3 +1,4 @@\n+x\n nothing\n like\n this\n";
  auto s = source::check_patch_applies(d.path() / "linux", other);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("does not apply"), std::string::npos) << s.error().message;
  auto fine =
      source::make_kernel_patch(*source::open_directory(d.path() / "linux"), test::kModernDriver, source::PatchFormat::full, "test");
  ASSERT_TRUE(fine.ok()) << fine.error().message;
  EXPECT_TRUE(source::check_patch_applies(d.path() / "linux", fine->text).ok());
}

}  // namespace
