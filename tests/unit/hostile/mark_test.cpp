// Every livepatch relax-rmrr builds carries a mark (the read-only parameter relax_rmrr_version): doctor, status,
// disable and unload find it under any name, such as relax_rmrr_2 for an upgrade (host/livepatch_sysfs.h).
#include "common/json.h"
#include "hostile/hostile_util.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace rr::test {
namespace {

TEST(LivepatchMark, StatusFindsTheMarkedLivepatchUnderAnotherName) {
  TempDir root;
  fake_livepatch(root.path(), "relax_rmrr_2");
  auto r = tool(fmt::format("status --root '{}' --json", root.path().string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"name\": \"relax_rmrr_2\""), std::string::npos) << r.output;
}

TEST(LivepatchMark, DisableActsOnTheMarkedLivepatchAndLeavesOthersAlone) {
  TempDir root;
  fake_livepatch(root.path(), "relax_rmrr_2");
  fake_livepatch(root.path(), "someone_elses_fix", "1", false);
  auto r = tool(fmt::format("disable --root '{}'", root.path().string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Disabled relax_rmrr_2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(root.path() / "sys/kernel/livepatch/relax_rmrr_2"));
  EXPECT_TRUE(fs::exists(root.path() / "sys/kernel/livepatch/someone_elses_fix"));
}

TEST(LivepatchMark, DoctorCountsTheMarkedLivepatchAsOurs) {
  TempDir root;
  fake_livepatch(root.path(), "relax_rmrr_2");
  fake_livepatch(root.path(), "unmarked", "1", false);
  fs::create_directories(root.path() / "sys/bus/pci/devices");
  auto r =
      tool(fmt::format("doctor --root '{}' --dmar '{}/dmar/hp-proliant-dl360-g7.dat' --json", root.path().string(), RELAX_RMRR_FIXTURES));
  auto j = Json::parse(r.output.substr(r.output.find('{')));
  ASSERT_TRUE(j) << r.output;
  int ours = 0;
  for (const auto& lp : (*j)["host"]["livepatches"].as_array())
    if (lp["relax_rmrr"].as_bool()) {
      ++ours;
      EXPECT_EQ(lp["name"].as_string(), "relax_rmrr_2");
    }
  EXPECT_EQ(ours, 1) << r.output;
}

TEST(LivepatchMark, ExplicitNameStillWins) {
  TempDir root;
  fake_livepatch(root.path(), "relax_rmrr_2");
  auto r = tool(fmt::format("status --root '{}' --name relax_rmrr --json", root.path().string()));
  EXPECT_NE(r.output.find("\"name\": \"relax_rmrr\""), std::string::npos) << r.output;
  EXPECT_EQ(r.exit_code, 1) << "relax_rmrr itself is not loaded: " << r.output;
}

}  // namespace
}  // namespace rr::test
