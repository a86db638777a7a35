// The `devices` selection through the lifecycle (lifecycle/selection.h) against the fake kernel: what every load
// gives the module, what is persisted, run-time changes, and the refusals that keep a module from relaxing more
// than the administrator chose.
#include "lifecycle/boot.h"
#include "lifecycle/install.h"
#include "lifecycle/lifecycle.h"
#include "lifecycle/selection.h"
#include "lifecycle_fake_kernel.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace rr {
namespace {

using test::FakeKernel;
using test::livepatch_modinfo;
using test::make_fake_module;

host::DeviceSelection devices(std::string_view text) { return host::parse_device_selection(text).value(); }

struct SelectionTest : ::testing::Test {
  FakeKernel k;
  test::TempDir files;
  lifecycle::Env env = k.env();
  lifecycle::LoadOptions opts;
  fs::path ko, old_ko;
  void SetUp() override {
    auto info = livepatch_modinfo();
    info["parm"] = "devices:PCI addresses whose RMRRs are relaxed";
    ko = make_fake_module(files.path(), "relax_rmrr.ko", info);
    old_ko = make_fake_module(files.path(), "old.ko", livepatch_modinfo(), "0x22");  // built before the parameter
    opts.wait.timeout = 2000ms;
  }
};

TEST_F(SelectionTest, LoadGivesTheSelectionToTheModule) {
  opts.devices = devices("03:00.0,0000:05:00.1");
  auto r = lifecycle::load(env, ko, opts);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(k.last_parameters, "devices=0000:03:00.0,0000:05:00.1");
  EXPECT_EQ(k.get("sys/module/relax_rmrr/parameters/devices"), "0000:03:00.0,0000:05:00.1");
  ASSERT_TRUE(r->devices);
  EXPECT_EQ(r->devices->addresses.size(), 2u);
  // Loading again with another list changes the running module's selection, without a reload.
  opts.devices = devices("03:00.0");
  auto again = lifecycle::load(env, ko, opts);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->action, "already-loaded");
  EXPECT_EQ(k.loads, 1);
  EXPECT_EQ(k.get("sys/module/relax_rmrr/parameters/devices"), "0000:03:00.0");
}

TEST_F(SelectionTest, AModuleWithoutTheParameterIsRefusedASelection) {
  opts.devices = devices("03:00.0");
  auto r = lifecycle::load(env, old_ko, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::refused);
  EXPECT_NE(r.error().message.find("would relax every RMRR device"), std::string::npos) << r.error().message;
  EXPECT_EQ(k.loads, 0) << "the kernel must never see it";
  opts.devices = host::DeviceSelection{};  // every device: what that module does anyway
  EXPECT_TRUE(lifecycle::load(env, old_ko, opts).ok());
  EXPECT_EQ(k.last_parameters, "");
}

TEST_F(SelectionTest, ThePersistedSelectionGoesWithEveryLoad) {
  ASSERT_TRUE(lifecycle::persist_selection(k.root(), devices("00:03.0")));
  EXPECT_EQ(k.get("etc/relax-rmrr/devices"), "0000:00:03.0");
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  EXPECT_EQ(k.last_parameters, "devices=0000:00:03.0");
  ASSERT_TRUE(lifecycle::disable(env, "relax_rmrr", opts.wait).ok());
  auto e = lifecycle::enable(env, "relax_rmrr", "", opts);  // reloads the freed patch
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(k.loads, 2);
  EXPECT_EQ(k.last_parameters, "devices=0000:00:03.0");
  // "every device" removes the file.
  ASSERT_TRUE(lifecycle::persist_selection(k.root(), host::DeviceSelection{}));
  EXPECT_FALSE(k.has("etc/relax-rmrr/devices"));
  EXPECT_TRUE(lifecycle::read_persisted_selection(k.root())->all());
  // A file that holds no list is an error, never read as "every device".
  k.put("etc/relax-rmrr/devices", "03:00\n");
  auto bad = lifecycle::read_persisted_selection(k.root());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ExitCode::bad_input);
}

TEST_F(SelectionTest, RunTimeChangesAreWrittenReadBackAndPersisted) {
  opts.devices = devices("00:03.0");
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  auto add = lifecycle::change_selection(env, "relax_rmrr", {lifecycle::SelectionChange::add, devices("00:04.0"), true});
  ASSERT_TRUE(add.ok()) << add.error().message;
  EXPECT_TRUE(add->module_loaded);
  EXPECT_EQ(k.get("sys/module/relax_rmrr/parameters/devices"), "0000:00:03.0,0000:00:04.0");
  EXPECT_EQ(k.get("etc/relax-rmrr/devices"), "0000:00:03.0,0000:00:04.0");

  auto remove = lifecycle::change_selection(env, "relax_rmrr", {lifecycle::SelectionChange::remove, devices("00:03.0"), false});
  ASSERT_TRUE(remove.ok()) << remove.error().message;
  EXPECT_EQ(k.get("sys/module/relax_rmrr/parameters/devices"), "0000:00:04.0");
  EXPECT_EQ(k.get("etc/relax-rmrr/devices"), "0000:00:03.0,0000:00:04.0") << "--no-persist keeps the file";

  // Removing the last device would relax every device: refused, nothing changed.
  auto empty = lifecycle::change_selection(env, "relax_rmrr", {lifecycle::SelectionChange::remove, devices("00:04.0"), true});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ExitCode::refused);
  EXPECT_EQ(k.get("sys/module/relax_rmrr/parameters/devices"), "0000:00:04.0");

  // set all, then add: "every device" has no list to add to.
  ASSERT_TRUE(lifecycle::change_selection(env, "relax_rmrr", {lifecycle::SelectionChange::set, {}, true}).ok());
  EXPECT_EQ(k.get("sys/module/relax_rmrr/parameters/devices"), "");
  EXPECT_FALSE(k.has("etc/relax-rmrr/devices"));
  auto to_all = lifecycle::change_selection(env, "relax_rmrr", {lifecycle::SelectionChange::add, devices("00:04.0"), true});
  ASSERT_FALSE(to_all.ok());
  EXPECT_EQ(to_all.error().code, ExitCode::refused);
}

TEST_F(SelectionTest, AValueTheModuleRefusesChangesNothing) {
  opts.devices = devices("00:03.0");
  ASSERT_TRUE(lifecycle::load(env, ko, opts).ok());
  // What the module's store refuses (here through the fake kernel's own parser) is an error; the old value stays.
  auto refused = lifecycle::apply_module_selection(env, "relax_rmrr", host::DeviceSelection{{"x"}, "00:zz.0"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(k.get("sys/module/relax_rmrr/parameters/devices"), "0000:00:03.0");
  // A module whose parameter reads back something else is not believed.
  k.put("sys/module/relax_rmrr/parameters/devices", "all of them\n");
  EXPECT_FALSE(lifecycle::read_module_selection(env, "relax_rmrr").ok());
}

TEST_F(SelectionTest, BootLoadsNoModuleThatWouldIgnoreTheSelection) {
  ASSERT_TRUE(lifecycle::write_consent(k.root()));
  ASSERT_TRUE(lifecycle::persist_selection(k.root(), devices("00:03.0")));
  fs::create_directories(k.root() / "lib/modules/6.1.0-56-amd64/updates");
  fs::copy_file(old_ko, k.root() / "lib/modules/6.1.0-56-amd64/updates/relax_rmrr.ko");
  auto r = lifecycle::boot(env, "relax_rmrr", opts);
  EXPECT_EQ(r.action, "failed");
  EXPECT_NE(r.message.find("no `devices` parameter"), std::string::npos) << r.message;
  EXPECT_EQ(k.loads, 0);

  fs::copy_file(ko, k.root() / "lib/modules/6.1.0-56-amd64/updates/relax_rmrr.ko", fs::copy_options::overwrite_existing);
  auto ok = lifecycle::boot(env, "relax_rmrr", opts);
  EXPECT_EQ(ok.action, "loaded") << ok.message;
  EXPECT_EQ(k.last_parameters, "devices=0000:00:03.0");
}

TEST_F(SelectionTest, InstallKeepsTheSelectionAndRefusesAModuleThatWouldIgnoreIt) {
  lifecycle::InstallRequest req;
  req.root = k.root();
  req.depmod = false;
  req.release = "6.1.0-56-amd64";
  req.devices = devices("00:03.0");
  req.module = old_ko;
  auto refused = lifecycle::install(req);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ExitCode::refused);
  EXPECT_FALSE(k.has("etc/relax-rmrr/devices"));
  EXPECT_FALSE(k.has("lib/modules/6.1.0-56-amd64/updates/relax_rmrr.ko")) << "nothing installed on a refusal";

  req.module = ko;
  auto r = lifecycle::install(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(k.get("etc/relax-rmrr/devices"), "0000:00:03.0");
  // The unit's modprobe reads that file: without --devices a later install keeps it, and checks the module again.
  req.devices.reset();
  req.module = old_ko;
  EXPECT_FALSE(lifecycle::install(req).ok());
}

// The commands on a --root tree: a bad list is a usage error before anything happens; the selection shows in
// load, devices and status, as text and JSON.
TEST_F(SelectionTest, TheCommandsOnASimulatedHost) {
  auto run = [&](const std::string& args) {
    return test::run_command(fmt::format("{{ {} {} --root {}; }} 2>/dev/null", RELAX_RMRR_BINARY, args, k.root().string()));
  };
  auto bad = run("load " + ko.string() + " --devices 00:03.0,00:20.0");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_FALSE(k.has("sys/module/relax_rmrr")) << "nothing loaded on a bad list";
  auto old = run("load " + old_ko.string() + " --devices 00:03.0");
  EXPECT_EQ(old.exit_code, 4) << old.output;
  EXPECT_FALSE(k.has("etc/relax-rmrr/devices")) << "a refused load keeps nothing";

  auto load = run("load " + ko.string() + " --devices 00:03.0 --json");
  ASSERT_EQ(load.exit_code, 0) << load.output;
  auto lj = Json::parse(load.output);
  ASSERT_TRUE(lj.ok()) << load.output;
  EXPECT_EQ((*lj)["devices"][0].as_string(), "0000:00:03.0");
  EXPECT_EQ(k.get("etc/relax-rmrr/devices"), "0000:00:03.0");

  EXPECT_EQ(run("devices add 00:04.0").exit_code, 0);
  EXPECT_EQ(run("devices remove 00:03.0 00:04.0").exit_code, 4) << "that would relax every device";
  EXPECT_EQ(run("devices add all").exit_code, 2);
  auto status = run("status --json");
  auto sj = Json::parse(status.output);
  ASSERT_TRUE(sj.ok()) << status.output;
  EXPECT_EQ((*sj)["devices"]["module"].size(), 2u);
  EXPECT_EQ((*sj)["devices"]["persisted"][1].as_string(), "0000:00:04.0");
  EXPECT_NE(run("status").output.find("devices      0000:00:03.0,0000:00:04.0"), std::string::npos);
  EXPECT_EQ(run("devices set all").exit_code, 0);
  EXPECT_EQ((*Json::parse(run("devices --json").output))["module"].as_string(), "all");
}

}  // namespace
}  // namespace rr
