// Hostile input, class 1: paths built from untrusted fields. A `../` in an option, a module's name= or its
// vermagic, or a symbolic link planted below a directory the tool manages, never makes it write or remove
// anything outside that directory (common/names.h, common/atomic_file.h).
#include "common/atomic_file.h"
#include "common/names.h"
#include "hostile/hostile_util.h"
#include "lifecycle/install.h"
#include "lifecycle_fake_kernel.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace rr::test {
namespace {

TEST(HostilePaths, UninstallNameWithDotDotDeletesNothingOutside) {
  TempDir root;
  put_file(root.path(), "victim.ko", "precious\n");
  fs::create_directories(root.path() / "lib/modules/6.1.0-56-amd64/updates");
  auto r = tool(fmt::format("uninstall --root '{}' --name ../../../../victim", root.path().string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(read_back(root.path() / "victim.ko"), "precious\n");
}

TEST(HostilePaths, UninstallReleaseWithDotDotIsRefused) {
  TempDir root;
  put_file(root.path(), "etc/relax_rmrr.ko", "precious\n");
  auto r = tool(fmt::format("uninstall --root '{}' --kernel-release ../../etc/x --name relax_rmrr", root.path().string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(read_back(root.path() / "etc/relax_rmrr.ko"), "precious\n");
}

TEST(HostilePaths, ModuleWhoseNameClimbsOutIsRefusedByInstall) {
  TempDir root, files;
  auto ko = make_fake_module(files.path(), "evil.ko", livepatch_modinfo("../../../../../evil"));
  auto r = tool(fmt::format("install --root '{}' '{}' --no-depmod", root.path().string(), ko.string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("the module's name"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(root.path() / "evil.ko"));
  EXPECT_FALSE(fs::exists(root.path() / "lib/evil.ko"));
}

TEST(HostilePaths, VermagicReleaseThatClimbsOutIsRefused) {
  TempDir root, files;
  auto ko = make_fake_module(files.path(), "relax_rmrr.ko", livepatch_modinfo("relax_rmrr", "../../../etc"));
  auto r = tool(fmt::format("install --root '{}' '{}' --no-depmod", root.path().string(), ko.string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(fs::exists(root.path() / "etc/updates"));
}

TEST(HostilePaths, InstallDoesNotWriteThroughAPlantedLink) {
  TempDir root, files, elsewhere;
  fs::create_directories(root.path() / "lib/modules/6.1.0-56-amd64");
  fs::create_directory_symlink(elsewhere.path(), root.path() / "lib/modules/6.1.0-56-amd64/updates");
  auto ko = make_fake_module(files.path(), "relax_rmrr.ko", livepatch_modinfo());
  auto r = tool(fmt::format("install --root '{}' '{}' --no-depmod", root.path().string(), ko.string()));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(elsewhere.path() / "relax_rmrr.ko")) << "written through the planted link";
}

TEST(HostilePaths, UninstallDoesNotRemoveThroughAPlantedLink) {
  TempDir root, elsewhere;
  put_file(elsewhere.path(), "relax_rmrr.ko", "not ours\n");
  fs::create_directories(root.path() / "lib/modules/6.1.0-56-amd64");
  fs::create_directory_symlink(elsewhere.path(), root.path() / "lib/modules/6.1.0-56-amd64/updates");
  auto r = tool(fmt::format("uninstall --root '{}' --no-depmod", root.path().string()));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_back(elsewhere.path() / "relax_rmrr.ko"), "not ours\n");
}

TEST(HostilePaths, PlainNamesRefuseEveryWayOut) {
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "a/b", "../x", std::string("a\0b", 3), "tab\there", "bell\x07", std::string(300, 'x')})
    EXPECT_FALSE(check_plain_name("name", bad)) << "accepted: " << bad;
  EXPECT_TRUE(check_plain_name("name", "6.1.0-56-amd64"));
  EXPECT_FALSE(check_module_name("name", "relax.rmrr"));
  EXPECT_FALSE(check_module_name("name", std::string(56, 'a')));
  EXPECT_TRUE(check_module_name("name", "relax_rmrr_2"));
  EXPECT_FALSE(check_kernel_release("release", "6.1 -evil"));
  EXPECT_FALSE(check_kernel_release("release", std::string(65, '1')));
}

TEST(HostilePaths, BeneathRefusesDotDotAndAbsolutePaths) {
  TempDir base;
  EXPECT_FALSE(write_file_beneath(base.path(), "../escaped", "x"));
  EXPECT_FALSE(write_file_beneath(base.path(), "/tmp/escaped", "x"));
  EXPECT_FALSE(remove_beneath(base.path(), "a/../../b"));
  EXPECT_FALSE(fs::exists(base.path().parent_path() / "escaped"));
}

}  // namespace
}  // namespace rr::test
