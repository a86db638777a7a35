// host/livepatch_sysfs.h: a patch directory read while the kernel removes it (the end of every disable) is
// "gone", never an error; a directory that stays but cannot be read still is one.
#include "host/livepatch_sysfs.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>

namespace fs = std::filesystem;

namespace rr::test {
namespace {

void write(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

TEST(LivepatchSysfs, ADirectoryRemovedWhileReadIsGone) {
  TempDir sys;
  // The state of the kernel between the reader finding NAME in the listing and opening NAME/enabled.
  auto state = host::read_livepatch_state(sys.path(), sys.path() / "kernel/livepatch/relax_rmrr");
  ASSERT_TRUE(state.ok()) << state.error().message;
  EXPECT_FALSE(state.value().has_value());
}

TEST(LivepatchSysfs, ADirectoryThatStaysWithoutItsStateIsAnError) {
  TempDir sys;
  fs::create_directories(sys.path() / "kernel/livepatch/relax_rmrr");
  auto state = host::read_livepatch_state(sys.path(), sys.path() / "kernel/livepatch/relax_rmrr");
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.error().message.find("enabled"), std::string::npos) << state.error().message;

  write(sys.path() / "kernel/livepatch/relax_rmrr/enabled", "1\n");
  state = host::read_livepatch_state(sys.path(), sys.path() / "kernel/livepatch/relax_rmrr");
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.error().message.find("transition"), std::string::npos) << state.error().message;
}

TEST(LivepatchSysfs, ACompleteDirectoryIsRead) {
  TempDir sys;
  write(sys.path() / "kernel/livepatch/relax_rmrr/enabled", "1\n");
  write(sys.path() / "kernel/livepatch/relax_rmrr/transition", "0\n");
  write(sys.path() / "module/relax_rmrr/parameters/relax_rmrr_version", "0.2.0\n");
  auto all = host::list_livepatches(sys.path());
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all.value().size(), 1u);
  EXPECT_TRUE(all.value()[0].enabled);
  EXPECT_FALSE(all.value()[0].in_transition);
  EXPECT_TRUE(all.value()[0].marked);
}

}  // namespace
}  // namespace rr::test
