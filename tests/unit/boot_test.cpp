// The packaged boot flow against the fake kernel (lifecycle_fake_kernel.h): nothing loads before the administrator
// agreed, the module for the running kernel is found where DKMS or `install` put it (compressed too), a missing
// module is explained with what the DKMS hook recorded, and no outcome is an error (the boot must go on).
#include "lifecycle/boot.h"
#include "lifecycle_fake_kernel.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace rr {
namespace {

struct BootTest : ::testing::Test {
  test::FakeKernel k;
  lifecycle::Env env = k.env();
  lifecycle::LoadOptions opts;
  const std::string release = "6.1.0-56-amd64";
  void SetUp() override { opts.wait.timeout = 2000ms; }
  fs::path module_dir(const std::string& sub) { return k.root() / "lib/modules" / release / sub; }
};

TEST_F(BootTest, NothingLoadsWithoutTheAgreement) {
  fs::create_directories(module_dir("updates/dkms"));
  test::make_fake_module(module_dir("updates/dkms"), "relax_rmrr.ko", test::livepatch_modinfo());
  auto r = lifecycle::boot(env, "relax_rmrr", opts);
  EXPECT_EQ(r.action, "no-consent");
  EXPECT_NE(r.message.find("dpkg-reconfigure relax-rmrr"), std::string::npos) << r.message;
  EXPECT_EQ(k.get("sys/kernel/livepatch/relax_rmrr/enabled"), "<missing>");
}

TEST_F(BootTest, LoadsTheDkmsModuleOfTheRunningKernelOnceAgreed) {
  ASSERT_TRUE(lifecycle::write_consent(k.root()).ok());
  EXPECT_TRUE(lifecycle::consent_given(k.root()));
  fs::create_directories(module_dir("updates/dkms"));
  test::make_fake_module(module_dir("updates/dkms"), "relax_rmrr.ko", test::livepatch_modinfo());
  auto r = lifecycle::boot(env, "relax_rmrr", opts);
  EXPECT_EQ(r.action, "loaded") << r.message;
  EXPECT_EQ(r.module, (module_dir("updates/dkms") / "relax_rmrr.ko").string());
  EXPECT_EQ(k.get("sys/kernel/livepatch/relax_rmrr/enabled"), "1");
  // A second run (the unit restarted) finds it in force.
  EXPECT_EQ(lifecycle::boot(env, "relax_rmrr", opts).action, "already-loaded");
}

TEST_F(BootTest, MissingModuleIsExplainedWithTheDkmsRecord) {
  ASSERT_TRUE(lifecycle::write_consent(k.root()).ok());
  k.put("var/lib/relax-rmrr/dkms/" + release + ".status",
        "status=failed\nreason=no kernel source: linux-source-6.1 is not installed\nhint=apt-get install linux-source-6.1=6.1.192-2\n");
  auto r = lifecycle::boot(env, "relax_rmrr", opts);
  EXPECT_EQ(r.action, "no-module");
  ASSERT_EQ(r.notes.size(), 2u);
  EXPECT_NE(r.notes[0].find("linux-source-6.1 is not installed"), std::string::npos);
  EXPECT_EQ(r.notes[1], "to fix: apt-get install linux-source-6.1=6.1.192-2");
}

TEST_F(BootTest, AModuleForAnotherKernelFailsWithoutAnError) {
  ASSERT_TRUE(lifecycle::write_consent(k.root()).ok());
  fs::create_directories(module_dir("updates"));
  test::make_fake_module(module_dir("updates"), "relax_rmrr.ko", test::livepatch_modinfo("relax_rmrr", "6.1.0-99-amd64"));
  auto r = lifecycle::boot(env, "relax_rmrr", opts);
  EXPECT_EQ(r.action, "failed");
  EXPECT_NE(r.message.find("could not load"), std::string::npos) << r.message;
}

TEST_F(BootTest, AgreementFileIsReadStrictlyAndWithdrawn) {
  k.put("etc/relax-rmrr/consent", "no\n");
  EXPECT_FALSE(lifecycle::consent_given(k.root()));
  k.put("etc/relax-rmrr/consent", "# comment\nyes\n");
  EXPECT_TRUE(lifecycle::consent_given(k.root()));
  ASSERT_TRUE(lifecycle::withdraw_consent(k.root()).ok());
  EXPECT_FALSE(lifecycle::consent_given(k.root()));
}

TEST(BootModules, CandidatesInOrderWithCompressionAndNoEscape) {
  auto c = lifecycle::module_candidates("/r", "6.12.1-amd64", "relax_rmrr");
  ASSERT_EQ(c.size(), 12u);
  EXPECT_EQ(c.front(), fs::path("/r/lib/modules/6.12.1-amd64/updates/relax_rmrr.ko"));
  EXPECT_EQ(c.back(), fs::path("/r/lib/modules/6.12.1-amd64/updates/dkms/relax_rmrr.ko.gz"));
  EXPECT_TRUE(lifecycle::module_candidates("/r", "../../etc", "relax_rmrr").empty());
  EXPECT_FALSE(lifecycle::read_dkms_record("/r", "../x").has_value());
}

TEST(BootDkms, RecordsWithAnUnknownStatusAreIgnored) {
  test::TempDir d;
  fs::create_directories(lifecycle::dkms_status_dir(d.path()));
  ASSERT_TRUE(write_file_text(lifecycle::dkms_status_dir(d.path()) / "6.1.0-1-amd64.status", "status=installed\n").ok());
  ASSERT_TRUE(write_file_text(lifecycle::dkms_status_dir(d.path()) / "6.1.0-2-amd64.status", "status=exploded\n").ok());
  auto all = lifecycle::read_dkms_records(d.path());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].release, "6.1.0-1-amd64");
}

}  // namespace
}  // namespace rr
