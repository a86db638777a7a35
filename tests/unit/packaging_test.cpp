// Rendered templates (unit, .deb control files, DKMS), install/uninstall into a temporary root, the .deb
// dpkg-deb builds, and the preinst refusal run with a fake uname.
#include "lifecycle/install.h"
#include "lifecycle_fake_kernel.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace rr {
namespace {

using test::livepatch_modinfo;
using test::make_fake_module;

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST(Unit, RenderedUnitOrdersBeforeColdplugAndModulesLoad) {
  auto u = lifecycle::render_unit(
      {.module_name = "relax_rmrr", .module_path = "/lib/modules/%v/updates/relax_rmrr.ko", .only_release = "", .tool_version = "0.1.0"});
  ASSERT_TRUE(u.ok()) << u.error().message;
  const std::string& t = *u;
  EXPECT_TRUE(contains(t, "DefaultDependencies=no"));
  EXPECT_TRUE(contains(t, "Before=shutdown.target sysinit.target systemd-udev-trigger.service systemd-modules-load.service"));
  EXPECT_TRUE(contains(t, "Before=libvirtd.service virtqemud.service pve-guests.service"));
  EXPECT_TRUE(contains(t, "\nConditionPathExists=/lib/modules/%v/updates/relax_rmrr.ko\n"));
  // modprobe with the persisted selection (empty without the file: every device); $$ is systemd's escape for $.
  EXPECT_TRUE(
      contains(t, "ExecStart=/bin/sh -c 'exec /sbin/modprobe relax_rmrr devices=\"$$(cat /etc/relax-rmrr/devices 2>/dev/null)\"'\n"));
  EXPECT_TRUE(contains(t, "/sys/kernel/livepatch/relax_rmrr/transition"));
  EXPECT_TRUE(contains(t, "WantedBy=sysinit.target"));
  EXPECT_FALSE(contains(t, "ConditionKernelVersion"));
  EXPECT_FALSE(contains(t, "@MODULE")) << "a placeholder was left";
  auto pinned = lifecycle::render_unit({.module_name = "relax_rmrr",
                                        .module_path = "/lib/modules/6.1.0-56-amd64/updates/relax_rmrr.ko",
                                        .only_release = "6.1.0-56-amd64",
                                        .tool_version = "0.1.0"});
  ASSERT_TRUE(pinned.ok());
  EXPECT_TRUE(contains(*pinned, "\nConditionKernelVersion=6.1.0-56-amd64\nConditionPathExists="));
  EXPECT_FALSE(lifecycle::render_unit({.module_name = "a b", .module_path = "/x", .only_release = "", .tool_version = ""}).ok());
}

TEST(Unit, SystemdAcceptsTheRenderedUnit) {
  if (!test::run_command("command -v systemd-analyze").output.size()) GTEST_SKIP() << "systemd-analyze not installed";
  test::TempDir d;
  auto u = lifecycle::render_unit(
      {.module_name = "relax_rmrr", .module_path = "/lib/modules/%v/updates/relax_rmrr.ko", .only_release = "", .tool_version = "0.1.0"});
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(write_file_text(d.path() / "relax-rmrr.service", *u).ok());
  auto r =
      test::run_command(fmt::format("SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no {}/relax-rmrr.service", d.path().string()));
  // Ignore complaints about other units of this (container) host; ours must not be named in an error.
  for (const auto& line : split_lines(r.output))
    if (contains(line, "relax-rmrr.service")) ADD_FAILURE() << line;
}

TEST(Install, WritesModuleUnitAndWantsLinkThenUninstallRemovesThem) {
  test::TempDir root, files;
  auto ko = make_fake_module(files.path(), "relax_rmrr.ko", livepatch_modinfo());
  fs::create_directories(root.path() / "lib/modules/6.1.0-56-amd64/kernel");
  lifecycle::InstallRequest req{
      .root = root.path(), .module = ko, .subdir = "updates", .release = "", .depmod = true, .enable = true, .tool_version = "0.1.0"};
  if (test::run_command("command -v depmod").output.empty()) req.depmod = false;
  auto r = lifecycle::install(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->release, "6.1.0-56-amd64");
  fs::path mod = root.path() / "lib/modules/6.1.0-56-amd64/updates/relax_rmrr.ko";
  EXPECT_TRUE(fs::is_regular_file(mod));
  EXPECT_EQ(read_file_bytes(mod)->size(), read_file_bytes(ko)->size());
  auto unit = read_file_text(root.path() / "etc/systemd/system/relax-rmrr.service");
  ASSERT_TRUE(unit.ok());
  EXPECT_TRUE(contains(*unit, "ConditionPathExists=/lib/modules/%v/updates/relax_rmrr.ko"));
  fs::path link = root.path() / "etc/systemd/system/sysinit.target.wants/relax-rmrr.service";
  ASSERT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), "/etc/systemd/system/relax-rmrr.service");
  if (req.depmod) {
    auto dep = read_file_text(root.path() / "lib/modules/6.1.0-56-amd64/modules.dep");
    ASSERT_TRUE(dep.ok()) << "depmod -b wrote no modules.dep";
    EXPECT_TRUE(contains(*dep, "updates/relax_rmrr.ko:")) << *dep;
  }
  // A module for another kernel than asked: refused.
  auto wrong = lifecycle::install({.root = root.path(),
                                   .module = ko,
                                   .subdir = "updates",
                                   .release = "6.1.0-55-amd64",
                                   .depmod = false,
                                   .enable = true,
                                   .tool_version = ""});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ExitCode::refused);
  auto u = lifecycle::uninstall({.root = root.path(), .module_name = "relax_rmrr", .release = "", .depmod = req.depmod});
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->written.size(), 3u);
  EXPECT_FALSE(fs::exists(mod));
  EXPECT_FALSE(fs::exists(link, *std::make_unique<std::error_code>()));
  EXPECT_FALSE(fs::exists(root.path() / "etc/systemd/system/relax-rmrr.service"));
}

struct Deb : ::testing::Test {
  test::TempDir files;
  fs::path ko;
  std::string build = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2025-11-01)";
  void SetUp() override { ko = make_fake_module(files.path(), "relax_rmrr.ko", livepatch_modinfo()); }
  lifecycle::DebRequest request() {
    lifecycle::DebRequest r;
    r.module = ko;
    r.output_dir = files.path() / "out";
    r.kernel_build = build;
    r.tool_version = "0.1.0";
    return r;
  }
  // Runs the rendered preinst with a fake `uname -r` and /proc/version.
  test::CommandResult preinst(const std::string& uname_r, const std::string& proc_version, const std::string& env = "") {
    auto d = lifecycle::render_deb(request());
    if (!d.ok()) std::abort();
    fs::path bin = files.path() / "fakebin";
    fs::create_directories(bin);
    (void)write_file_text(bin / "uname", fmt::format("#!/bin/sh\n[ \"$1\" = -r ] && echo '{}' && exit 0\nexit 1\n", uname_r));
    fs::permissions(bin / "uname", fs::perms::owner_all);
    (void)write_file_text(files.path() / "preinst", d->files.at("preinst"));
    (void)write_file_text(files.path() / "version", proc_version + "\n");
    return test::run_command(fmt::format("env PATH={}:/usr/bin:/bin RELAX_RMRR_PROC_VERSION={} {} sh {} install", bin.string(),
                                         (files.path() / "version").string(), env, (files.path() / "preinst").string()));
  }
};

TEST_F(Deb, ControlFilesNameTheKernelBuild) {
  auto d = lifecycle::render_deb(request());
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->package, "relax-rmrr-livepatch-6.1.0-56-amd64");
  EXPECT_EQ(d->version, "0.1.0");
  EXPECT_EQ(d->unit, "relax-rmrr-6.1.0-56-amd64.service");
  const auto& control = d->files.at("control");
  EXPECT_TRUE(contains(control, "Package: relax-rmrr-livepatch-6.1.0-56-amd64\n"));
  EXPECT_TRUE(contains(control, "Depends: kmod, linux-image-6.1.0-56-amd64 | linux-image-6.1.0-56-amd64-unsigned\n"));
  EXPECT_TRUE(contains(control, build));
  EXPECT_TRUE(contains(d->files.at("preinst"), "BUILD='" + build + "'"));
  EXPECT_TRUE(contains(d->files.at("postinst"), "systemctl enable 'relax-rmrr-6.1.0-56-amd64.service'"));
  EXPECT_TRUE(contains(d->files.at(d->unit), "ConditionKernelVersion=6.1.0-56-amd64"));
  for (const auto& [name, text] : d->files) EXPECT_FALSE(contains(text, "@RELEASE@") || contains(text, "@UNIT@")) << name;
  for (const char* s : {"preinst", "postinst", "prerm", "postrm"}) {
    (void)write_file_text(files.path() / s, d->files.at(s));
    auto r = test::run_command(fmt::format("sh -n {}", (files.path() / s).string()));
    EXPECT_EQ(r.exit_code, 0) << s << ": " << r.output;
  }
}

TEST_F(Deb, PreinstRefusesAnotherKernelAndAnotherBuild) {
  std::string good = "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) " + build;
  auto ok = preinst("6.1.0-56-amd64", good);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  auto other = preinst("6.12.95+deb12-amd64", good);
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_TRUE(contains(other.output, "refusing to install")) << other.output;
  EXPECT_TRUE(contains(other.output, "6.12.95+deb12-amd64"));
  auto rebuilt = preinst("6.1.0-56-amd64", "Linux version 6.1.0-56-amd64 (x) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2025-12-01)");
  EXPECT_EQ(rebuilt.exit_code, 1) << rebuilt.output;
  EXPECT_TRUE(contains(rebuilt.output, "another build")) << rebuilt.output;
  auto staged = preinst("6.12.95+deb12-amd64", good, "RELAX_RMRR_ALLOW_OTHER_KERNEL=1");
  EXPECT_EQ(staged.exit_code, 0) << staged.output;
}

TEST_F(Deb, DpkgDebBuildsThePackage) {
  if (test::run_command("command -v dpkg-deb").output.empty()) GTEST_SKIP() << "dpkg-deb not installed";
  auto deb = lifecycle::build_deb(request());
  ASSERT_TRUE(deb.ok()) << deb.error().message;
  EXPECT_EQ(deb->filename(), "relax-rmrr-livepatch-6.1.0-56-amd64_0.1.0_amd64.deb");
  auto info = test::run_command("dpkg-deb -I " + deb->string());
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "Package: relax-rmrr-livepatch-6.1.0-56-amd64"));
  EXPECT_TRUE(contains(info.output, "Depends: kmod, linux-image-6.1.0-56-amd64"));
  EXPECT_TRUE(contains(info.output, "preinst"));
  auto list = test::run_command("dpkg-deb -c " + deb->string());
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_TRUE(contains(list.output, "root/root") && contains(list.output, "./lib/modules/6.1.0-56-amd64/updates/relax_rmrr.ko"))
      << list.output;
  EXPECT_TRUE(contains(list.output, "./lib/systemd/system/relax-rmrr-6.1.0-56-amd64.service"));
  // The module inside is the file given, byte for byte.
  test::TempDir x;
  ASSERT_EQ(test::run_command(fmt::format("dpkg-deb -x {} {}", deb->string(), x.path().string())).exit_code, 0);
  EXPECT_EQ(*read_file_bytes(x.path() / "lib/modules/6.1.0-56-amd64/updates/relax_rmrr.ko"), *read_file_bytes(ko));
}

TEST(Dkms, TreeHasTheRequiredSettingsAndAValidBuildScript) {
  test::TempDir d;
  auto dir = lifecycle::write_dkms_tree(
      {.output_dir = d.path() / "relax-rmrr-0.1.0", .version = "", .module_name = "relax_rmrr", .tool_version = "0.1.0"});
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  auto conf = read_file_text(*dir / "dkms.conf");
  ASSERT_TRUE(conf.ok());
  for (const char* line : {"PACKAGE_NAME=\"relax-rmrr\"\n", "PACKAGE_VERSION=\"0.1.0\"\n", "BUILT_MODULE_NAME[0]=\"relax_rmrr\"\n",
                           "STRIP[0]=\"no\"\n", "AUTOINSTALL=\"yes\"\n", "BUILD_EXCLUSIVE_CONFIG=\"CONFIG_LIVEPATCH CONFIG_INTEL_IOMMU\"\n",
                           "MAKE[0]=\"bash ./relax-rmrr-dkms-build ${kernelver} ${kernel_source_dir}\"\n"})
    EXPECT_TRUE(contains(*conf, line)) << line;
  auto syntax = test::run_command("bash -n " + (*dir / "relax-rmrr-dkms-build").string());
  EXPECT_EQ(syntax.exit_code, 0) << syntax.output;
  // Without an image for a kernel that is not installed it fails and names the package to install.
  auto r = test::run_command(
      fmt::format("cd {} && RELAX_RMRR_ETC={} RELAX_RMRR_BIN=/bin/true bash ./relax-rmrr-dkms-build 9.9.9-test /nonexistent", dir->string(),
                  d.path().string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "no kernel image for 9.9.9-test")) << r.output;
  EXPECT_TRUE(contains(r.output, "linux-image-9.9.9-test")) << r.output;
  // With only the image (a kernel installed, never run), the generator gets the image and no symbol option: it
  // reads the symbols from the image's kallsyms tables.
  ASSERT_TRUE(write_file_text(d.path() / "vmlinuz-9.9.9-test", "image").ok());
  fs::path fake = d.path() / "fake-relax-rmrr";
  ASSERT_TRUE(write_file_text(fake, "#!/bin/sh\necho \"$@\" > \"$PWD/args.txt\"\necho module > \"$PWD/relax_rmrr.ko\"\n").ok());
  fs::permissions(fake, fs::perms::owner_all);
  auto ok = test::run_command(fmt::format("cd {} && RELAX_RMRR_ETC={} RELAX_RMRR_BIN={} bash ./relax-rmrr-dkms-build 9.9.9-test /kbuild",
                                          dir->string(), d.path().string(), fake.string()));
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(contains(ok.output, "symbols: the kallsyms tables of " + (d.path() / "vmlinuz-9.9.9-test").string())) << ok.output;
  auto args = read_file_text(*dir / "args.txt");
  ASSERT_TRUE(args.ok());
  EXPECT_TRUE(contains(*args, "--image " + (d.path() / "vmlinuz-9.9.9-test").string())) << *args;
  EXPECT_FALSE(contains(*args, "--kallsyms")) << *args;
  EXPECT_FALSE(contains(*args, "--system-map")) << *args;
  EXPECT_FALSE(
      lifecycle::write_dkms_tree({.output_dir = d.path() / "x", .version = "1 2", .module_name = "relax_rmrr", .tool_version = ""}).ok());
}

}  // namespace
}  // namespace rr
