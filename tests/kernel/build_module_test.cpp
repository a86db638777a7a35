// `relax-rmrr build` end to end against the real Debian 6.1 kernel files (ctest label `kernel`): the module it
// writes, what it replaces, signing, and refusals that must leave no module behind.
#include "../unit/test_util.h"
#include "common/json.h"
#include "kernel_env.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace rr;

namespace {

class BuildModule : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = test::read_kernel_env();
    for (const char* k : {"RELEASE", "VMLINUZ", "CONFIG", "KBUILD", "KALLSYMS", "SOURCE_TARBALL"})
      ASSERT_FALSE(env_[k].empty()) << k << " unknown: " << test::kernel_env_setup_hint("debian-6.1");
  }
  std::string base_args() {
    return fmt::format("--kernel-release {} --kallsyms {} --image {} --config {} --kbuild {}", env_["RELEASE"], env_["KALLSYMS"],
                       env_["VMLINUZ"], env_["CONFIG"], env_["KBUILD"]);
  }
  test::CommandResult build(const std::string& extra, bool stderr_too = false) {
    return test::run_command(
        fmt::format("{} build -q --json {} {} {}", RELAX_RMRR_BINARY, base_args(), extra, stderr_too ? "" : "2>/dev/null"));
  }
  test::KernelEnv env_;
  test::TempDir dir_;
};

}  // namespace

TEST_F(BuildModule, ReplacesExactlyTheTwoDriverFunctionsOnDebian61) {
  fs::path ko = dir_.path() / "relax_rmrr.ko";
  auto r = build(fmt::format("--source {} -o {}", env_["SOURCE_TARBALL"], ko.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = Json::parse(r.output);
  ASSERT_TRUE(j.ok()) << r.output;
  std::set<std::string> replaced;
  for (const auto& f : (*j)["plan"]["replace"].as_array()) {
    replaced.insert(f["name"].as_string());
    EXPECT_EQ(f["sympos"].as_uint(), 0u);
  }
  EXPECT_EQ(replaced, (std::set<std::string>{"intel_iommu_attach_device", "intel_iommu_get_resv_regions"}));
  EXPECT_EQ((*j)["klp"]["carried_functions"].size(), 0u);
  // The verify step's report travels in the summary: every replaced function was compared and matched.
  EXPECT_TRUE((*j)["built"].as_bool());
  EXPECT_FALSE((*j)["forced"].as_bool());
  EXPECT_TRUE((*j)["verify"]["ok"].as_bool()) << r.output;
  std::set<std::string> compared;
  for (const auto& f : (*j)["verify"]["functions"].as_array()) compared.insert(f["name"].as_string());
  for (const auto& name : replaced) EXPECT_TRUE(compared.count(name)) << name << " not verified: " << r.output;
  EXPECT_GT((*j)["conversion"]["klp_relocations"].as_uint(), 0u);
  // kbuild's module make started alongside the compiles and waited at its gate (klp/module.h): no fallback.
  EXPECT_TRUE((*j)["module_link"]["early"].as_bool()) << r.output;
  EXPECT_TRUE((*j)["module_link"]["fallback"].is_null()) << r.output;
  // ORC, mcount and return-thunk entries travel with the functions: without ORC the patch transition stalls.
  for (const char* s : {".orc_unwind_ip", ".orc_unwind", "__mcount_loc", ".return_sites"})
    EXPECT_GT((*j)["klp"]["special_entries"][s].as_uint(), 0u) << s;
  ASSERT_TRUE(fs::exists(ko));
  auto info = test::run_command("modinfo -F livepatch " + ko.string());
  EXPECT_EQ(trim(info.output), "Y");
  auto vermagic = test::run_command("modinfo -F vermagic " + ko.string());
  EXPECT_EQ(vermagic.output.rfind(env_["RELEASE"] + " ", 0), 0u) << vermagic.output;
  auto sections = test::run_command("readelf -SW " + ko.string());
  EXPECT_NE(sections.output.find(".klp.rela.vmlinux..text.intel_iommu_attach_device"), std::string::npos);
}

// A kernel that is installed and has never run: the image, config, headers and source alone. The symbols come from
// the image's kallsyms tables, and the module is the one a build from the boot's /proc/kallsyms dump writes: the
// same plan (functions, sympos, references), the same klp object and relocations, the same verify verdict.
TEST_F(BuildModule, ImageAloneBuildsTheSameModuleAsTheBootDump) {
  auto build_with = [&](const std::string& symbols, const fs::path& ko) {
    return test::run_command(fmt::format("{} build -q --json --image {} --config {} --kbuild {} {} --source {} -o {} 2>/dev/null",
                                         RELAX_RMRR_BINARY, env_["VMLINUZ"], env_["CONFIG"], env_["KBUILD"], symbols,
                                         env_["SOURCE_TARBALL"], ko.string()));
  };
  auto from_image = build_with("", dir_.path() / "image.ko");
  ASSERT_EQ(from_image.exit_code, 0) << from_image.output;
  auto from_dump = build_with("--kallsyms " + env_["KALLSYMS"], dir_.path() / "dump.ko");
  ASSERT_EQ(from_dump.exit_code, 0) << from_dump.output;
  auto a = Json::parse(from_image.output);
  auto b = Json::parse(from_dump.output);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)["symbols"]["kind"].as_string(), "image kallsyms");
  EXPECT_EQ((*b)["symbols"]["kind"].as_string(), "kallsyms");
  for (const char* key : {"era", "changed", "plan", "klp", "ibt", "conversion", "forced"})
    EXPECT_EQ((*a)[key].dump(), (*b)[key].dump()) << key;
  EXPECT_TRUE((*a)["verify"]["ok"].as_bool());
  EXPECT_EQ((*a)["verify"]["functions"].dump(), (*b)["verify"]["functions"].dump());
  // The two .ko files differ only in the debug info's build paths: the same sections, symbols and relocations.
  auto layout = [](const fs::path& ko) {
    return test::run_command(fmt::format("readelf -SsrW {} | grep -v -e '\\.debug' -e '^File:'", ko.string())).output;
  };
  EXPECT_EQ(layout(dir_.path() / "image.ko"), layout(dir_.path() / "dump.ko"));
}

TEST_F(BuildModule, SignsWithTheGivenKeyAfterTheKlpConversion) {
  fs::path key = dir_.path() / "key.pem", cert = dir_.path() / "cert.pem", ko = dir_.path() / "signed.ko";
  auto gen =
      test::run_command(fmt::format("openssl req -new -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=relax-rmrr-test "
                                    "-keyout {} -outform PEM -out {}",
                                    key.string(), cert.string()));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  auto r = build(
      fmt::format("--source {} -o {} --sign-key {} --sign-cert {}", env_["SOURCE_TARBALL"], ko.string(), key.string(), cert.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = Json::parse(r.output);
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE((*j)["signed"].as_bool());
  auto bytes = read_file_bytes(ko);
  ASSERT_TRUE(bytes.ok());
  std::string tail(bytes->end() - 28, bytes->end());
  EXPECT_EQ(tail, "~Module signature appended~\n");
  auto signer = test::run_command("modinfo -F signer " + ko.string());
  EXPECT_EQ(trim(signer.output), "relax-rmrr-test");
}

TEST_F(BuildModule, WrongOrMissingSourceIsRefusedAndWritesNothing) {
  fs::path ko = dir_.path() / "never.ko";
  fs::create_directories(dir_.path() / "empty/drivers/iommu");
  auto r = build(fmt::format("--source {} -o {}", (dir_.path() / "empty").string(), ko.string()), true);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("iommu"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(ko));

  auto missing = build(fmt::format("--source {} -o {}", (dir_.path() / "nowhere.tar.xz").string(), ko.string()), true);
  EXPECT_EQ(missing.exit_code, 3) << missing.output;
  EXPECT_FALSE(fs::exists(ko));
}

TEST_F(BuildModule, HeadersOfAnotherKernelAreRefused) {
  fs::path ko = dir_.path() / "never.ko";
  fs::path fake = dir_.path() / "fake-kbuild";
  fs::create_directories(fake);
  auto r = test::run_command(
      fmt::format("{} build -q --kernel-release {} --kallsyms {} --image {} --config {} --kbuild {} --source {} -o {}", RELAX_RMRR_BINARY,
                  env_["RELEASE"], env_["KALLSYMS"], env_["VMLINUZ"], env_["CONFIG"], fake.string(), env_["SOURCE_TARBALL"], ko.string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("kbuild"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(ko));
}
