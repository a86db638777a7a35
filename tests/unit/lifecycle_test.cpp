// The lifecycle logic (load, enable, disable, unload, wait, status) against a fake kernel tree that follows
// kernel/livepatch's rules (lifecycle_fake_kernel.h), and the CLI on a --root tree.
#include "lifecycle/lifecycle.h"
#include "lifecycle_fake_kernel.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace rr {
namespace {

using test::FakeKernel;
using test::livepatch_modinfo;
using test::make_fake_module;

struct LifecycleTest : ::testing::Test {
  FakeKernel k;
  test::TempDir files;
  lifecycle::Env env = k.env();
  lifecycle::LoadOptions opts;
  fs::path ko;
  void SetUp() override {
    ko = make_fake_module(files.path(), "relax_rmrr.ko", livepatch_modinfo());
    opts.wait.timeout = 2000ms;
    opts.wait.progress_every = 500ms;
  }
};

TEST_F(LifecycleTest, ModuleFileFieldsAndBuildId) {
  auto m = lifecycle::read_module_file(ko);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->name, "relax_rmrr");
  EXPECT_TRUE(m->is_livepatch);
  EXPECT_EQ(m->vermagic_release, "6.1.0-56-amd64");
  EXPECT_EQ(m->field("relax_rmrr_version"), "0.1.0");
  EXPECT_EQ(m->build_id, "110102030405060708090a0b0c0d0e0f10111213");
  EXPECT_FALSE(m->is_signed);
  auto s = make_fake_module(files.path(), "signed.ko", livepatch_modinfo(), "0x22", true);
  auto ms = lifecycle::read_module_file(s);
  ASSERT_TRUE(ms.ok()) << ms.error().message;
  EXPECT_TRUE(ms->is_signed);
}

TEST_F(LifecycleTest, BadFilesAreErrorsNotCrashes) {
  auto missing = lifecycle::load(env, files.path() / "nope.ko", opts);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ExitCode::missing);
  ASSERT_TRUE(write_file_text(files.path() / "garbage.ko",
                              "\x7f"
                              "ELF but not really")
                  .ok());
  auto garbage = lifecycle::load(env, files.path() / "garbage.ko", opts);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ExitCode::bad_input);
  auto info = livepatch_modinfo();
  info.erase("livepatch");
  auto plain = make_fake_module(files.path(), "plain.ko", info);
  auto r = lifecycle::load(env, plain, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::bad_input);
  EXPECT_NE(r.error().message.find("not a livepatch"), std::string::npos);
  EXPECT_EQ(k.loads, 0);
}

TEST_F(LifecycleTest, LoadWaitsForTheTransitionAndRecordsTheFile) {
  k.transition_ticks = 8;
  auto r = lifecycle::load(env, ko, opts);
  ASSERT_TRUE(r.ok()) << r.error().message << "\n" << r.error().hint;
  EXPECT_EQ(r->action, "loaded");
  EXPECT_TRUE(r->transition.done);
  EXPECT_FALSE(r->transition.gone);
  EXPECT_EQ(k.get("sys/kernel/livepatch/relax_rmrr/enabled"), "1");
  EXPECT_EQ(k.get("sys/kernel/livepatch/relax_rmrr/transition"), "0");
  EXPECT_GE(k.ticks, 8);
  EXPECT_EQ(k.get("run/relax-rmrr/relax_rmrr.path"), fs::absolute(ko).string());
  ASSERT_FALSE(k.progress.empty());  // 8 polls of 100 ms pass the 500 ms progress interval
  EXPECT_NE(k.progress.front().find("not switched yet"), std::string::npos) << k.progress.front();
}

TEST_F(LifecycleTest, LoadingTheSameBuildTwiceIsANoOp) {
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  auto again = lifecycle::load(env, ko, opts);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->action, "already-loaded");
  EXPECT_EQ(k.loads, 1);
}

TEST_F(LifecycleTest, AnotherBuildUnderTheSameNameIsRefusedWithTheWayOut) {
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  auto other = make_fake_module(files.path(), "other.ko", livepatch_modinfo(), "0x99");
  auto r = lifecycle::load(env, other, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::refused);
  EXPECT_NE(r.error().hint.find("--name"), std::string::npos) << r.error().hint;
  EXPECT_EQ(k.loads, 1);
}

TEST_F(LifecycleTest, ADifferentNameReplacesAtomicallyAndTheOldModuleGoes) {
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  auto v2 = make_fake_module(files.path(), "relax_rmrr_2.ko", livepatch_modinfo("relax_rmrr_2"), "0x33");
  auto r = lifecycle::load(env, v2, opts);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->replaced.size(), 1u);
  EXPECT_EQ(r->replaced[0], "relax_rmrr");
  EXPECT_FALSE(k.has("sys/kernel/livepatch/relax_rmrr"));
  EXPECT_FALSE(k.has("sys/module/relax_rmrr"));
  EXPECT_EQ(k.get("sys/kernel/livepatch/relax_rmrr_2/enabled"), "1");
}

TEST_F(LifecycleTest, UnsignedModuleRefusedUnderLockdownOrEnforcedSignatures) {
  k.put("sys/kernel/security/lockdown", "none [integrity] confidentiality\n");
  auto r = lifecycle::load(env, ko, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::environment);
  EXPECT_NE(r.error().message.find("locked down (integrity)"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().hint.find("--sign-key"), std::string::npos);
  EXPECT_NE(r.error().hint.find("mokutil"), std::string::npos);
  k.put("sys/kernel/security/lockdown", "[none] integrity confidentiality\n");
  k.put("sys/module/module/parameters/sig_enforce", "Y\n");
  auto r2 = lifecycle::load(env, ko, opts);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, ExitCode::environment);
  EXPECT_NE(r2.error().message.find("sig_enforce"), std::string::npos);
  EXPECT_EQ(k.loads, 0);
  auto signed_ko = make_fake_module(files.path(), "signed.ko", livepatch_modinfo(), "0x11", true);
  auto r3 = lifecycle::load(env, signed_ko, opts);
  EXPECT_TRUE(r3.ok()) << r3.error().message;
}

TEST_F(LifecycleTest, ModuleForAnotherKernelIsRefused) {
  auto other = make_fake_module(files.path(), "old.ko", livepatch_modinfo("relax_rmrr", "6.1.0-55-amd64"));
  auto r = lifecycle::load(env, other, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::refused);
  EXPECT_NE(r.error().message.find("6.1.0-55-amd64"), std::string::npos);
}

TEST_F(LifecycleTest, StalledTransitionNamesTheBlockersAndExplainsForce) {
  k.add_task(4242, "qemu-system-x86", "[<0>] intel_iommu_attach_device+0x40/0x90\n[<0>] iommu_attach_group+0x20/0x50\n");
  k.block_with(4242);
  opts.wait.timeout = 1000ms;
  auto r = lifecycle::load(env, ko, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::failure);
  const std::string& h = r.error().hint;
  EXPECT_NE(h.find("pid 4242 (qemu-system-x86)"), std::string::npos) << h;
  EXPECT_NE(h.find("intel_iommu_attach_device"), std::string::npos) << h;
  EXPECT_NE(h.find("--signal"), std::string::npos);
  EXPECT_NE(h.find("never be removed"), std::string::npos);
  EXPECT_EQ(h.find("pid 1 "), std::string::npos) << "switched tasks are not blockers: " << h;
  auto st = lifecycle::read_status(env, "relax_rmrr", "");
  ASSERT_TRUE(st);
  ASSERT_EQ(st->blockers.size(), 1u);
  EXPECT_EQ(st->blockers[0].pid, 4242);
  EXPECT_FALSE(st->active());
}

TEST_F(LifecycleTest, DisableThenEnableReloadsTheFreedPatch) {
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  for (int cycle = 0; cycle < 5; ++cycle) {
    auto d = lifecycle::disable(env, "relax_rmrr", opts.wait);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(d->action, "disabled");
    EXPECT_TRUE(d->transition.gone);
    EXPECT_FALSE(k.has("sys/kernel/livepatch/relax_rmrr"));
    EXPECT_TRUE(k.has("sys/module/relax_rmrr/initstate"));
    auto again = lifecycle::disable(env, "relax_rmrr", opts.wait);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->action, "already-disabled");
    auto e = lifecycle::enable(env, "relax_rmrr", "", opts);  // from the recorded path
    ASSERT_TRUE(e.ok()) << e.error().message;
    EXPECT_EQ(e->action, "reloaded");
    EXPECT_EQ(k.get("sys/kernel/livepatch/relax_rmrr/enabled"), "1");
  }
  EXPECT_EQ(k.loads, 6);
}

TEST_F(LifecycleTest, EnableDuringADisableReversesIt) {
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  ASSERT_TRUE(k.write_attribute("relax_rmrr", "enabled", false).ok());  // someone else started a disable
  ASSERT_EQ(k.get("sys/kernel/livepatch/relax_rmrr/transition"), "1");
  auto e = lifecycle::enable(env, "relax_rmrr", "", opts);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->action, "reversed");
  EXPECT_EQ(k.get("sys/kernel/livepatch/relax_rmrr/enabled"), "1");
  EXPECT_EQ(k.get("sys/kernel/livepatch/relax_rmrr/transition"), "0");
  EXPECT_EQ(k.loads, 1);
}

TEST_F(LifecycleTest, EnableWithoutAnyFileSaysWhereItLooked) {
  auto e = lifecycle::enable(env, "relax_rmrr", "", opts);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ExitCode::missing);
  EXPECT_NE(e.error().message.find("lib/modules/6.1.0-56-amd64/updates/relax_rmrr.ko"), std::string::npos) << e.error().message;
  // the installed module is found
  k.put("lib/modules/6.1.0-56-amd64/updates/.keep", "");
  fs::copy_file(ko, k.root() / "lib/modules/6.1.0-56-amd64/updates/relax_rmrr.ko");
  auto e2 = lifecycle::enable(env, "relax_rmrr", "", opts);
  ASSERT_TRUE(e2.ok()) << e2.error().message;
  EXPECT_EQ(e2->action, "loaded");
}

TEST_F(LifecycleTest, UnloadDisablesFirstAndExplainsAForcedModule) {
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  auto u = lifecycle::unload(env, "relax_rmrr", opts.wait);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->action, "unloaded");
  EXPECT_FALSE(k.has("sys/module/relax_rmrr"));
  EXPECT_FALSE(k.has("run/relax-rmrr/relax_rmrr.path"));
  auto again = lifecycle::unload(env, "relax_rmrr", opts.wait);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->action, "not-loaded");

  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  k.forced = true;
  auto f = lifecycle::unload(env, "relax_rmrr", opts.wait);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, ExitCode::refused);
  EXPECT_NE(f.error().hint.find("force"), std::string::npos) << f.error().hint;
}

TEST_F(LifecycleTest, StatusReportsFileFieldsAndTheLoadedBuild) {
  auto before = lifecycle::read_status(env, "relax_rmrr", ko).value();
  EXPECT_FALSE(before.active());
  EXPECT_FALSE(before.module.has_value());
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  auto s = lifecycle::read_status(env, "relax_rmrr", "").value();
  EXPECT_TRUE(s.active());
  ASSERT_TRUE(s.file.has_value());
  EXPECT_TRUE(s.file_matches_kernel);
  ASSERT_TRUE(s.file_is_loaded.has_value());
  EXPECT_TRUE(*s.file_is_loaded);
  Json j = lifecycle::to_json(s);
  EXPECT_EQ(j["file"]["relax_rmrr_kernel"].as_string(), "6.1.0-56-amd64");
  EXPECT_EQ(j["file"]["relax_rmrr_version"].as_string(), "0.1.0");
  EXPECT_EQ(j["file"]["relax_rmrr_forced"].as_string(), "0");
  EXPECT_TRUE(j["livepatch"]["enabled"].as_bool());
  EXPECT_EQ(j["module"]["taint"].as_string(), "OEK");
  auto other = make_fake_module(files.path(), "other.ko", livepatch_modinfo(), "0x77");
  auto s2 = lifecycle::read_status(env, "relax_rmrr", other).value();
  ASSERT_TRUE(s2.file_is_loaded.has_value());
  EXPECT_FALSE(*s2.file_is_loaded);
}

// The CLI on a --root tree: simulated kernel calls, never the real kernel.
struct CliLifecycleTest : ::testing::Test {
  test::TempDir root, files;
  std::string bin = RELAX_RMRR_BINARY;
  fs::path ko;
  void SetUp() override {
    auto put = [&](const std::string& rel, const std::string& t) {
      fs::create_directories((root.path() / rel).parent_path());
      ASSERT_TRUE(write_file_text(root.path() / rel, t).ok());
    };
    put("proc/sys/kernel/osrelease", "6.1.0-56-amd64\n");
    put("sys/kernel/security/lockdown", "[none] integrity\n");
    fs::create_directories(root.path() / "sys/kernel/livepatch");
    ko = make_fake_module(files.path(), "relax_rmrr.ko", livepatch_modinfo());
  }
  test::CommandResult run(const std::string& args) {
    return test::run_command(fmt::format("{} {} --root {}", bin, args, root.path().string()));
  }
};

TEST_F(CliLifecycleTest, LoadStatusDisableEnableUnload) {
  auto st0 = run("status --json");
  EXPECT_EQ(st0.exit_code, 1) << st0.output;
  auto l = run("load " + ko.string());
  ASSERT_EQ(l.exit_code, 0) << l.output;
  EXPECT_NE(l.output.find("simulated"), std::string::npos);
  auto st = test::run_command(fmt::format("{} status --json --root {} 2>/dev/null", bin, root.path().string()));
  ASSERT_EQ(st.exit_code, 0) << st.output;
  auto j = Json::parse(st.output);
  ASSERT_TRUE(j.ok()) << st.output;
  EXPECT_TRUE((*j)["active"].as_bool());
  EXPECT_TRUE((*j)["file"]["is_the_loaded_module"].as_bool());
  EXPECT_EQ(run("disable").exit_code, 0);
  EXPECT_EQ(run("status").exit_code, 1);
  auto en = run("enable");
  EXPECT_EQ(en.exit_code, 0) << en.output;
  auto un = run("unload");
  EXPECT_EQ(un.exit_code, 0) << un.output;
  EXPECT_FALSE(fs::exists(root.path() / "sys/module/relax_rmrr"));
  EXPECT_EQ(run("wait").exit_code, 0);
}

TEST_F(CliLifecycleTest, LockdownIsExitFiveWithASigningHint) {
  ASSERT_TRUE(write_file_text(root.path() / "sys/kernel/security/lockdown", "none [confidentiality]\n").ok());
  auto l = run("load " + ko.string());
  EXPECT_EQ(l.exit_code, 5) << l.output;
  EXPECT_NE(l.output.find("relax-rmrr build --sign-key"), std::string::npos) << l.output;
  EXPECT_NE(l.output.find("mokutil"), std::string::npos);
  auto bad = run("load /nonexistent.ko");
  EXPECT_EQ(bad.exit_code, 3) << bad.output;
  auto force = run("wait --force");
  EXPECT_EQ(force.exit_code, 0) << "no transition: nothing to force: " << force.output;
}

}  // namespace
}  // namespace rr
