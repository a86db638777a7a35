// Hostile input, class 3: false success. Output that cannot be written, sysfs values the kernel never writes,
// and a named input that cannot be read all end in a non-zero exit with a message, never in exit 0 or an abort
// (cli/output.h finish_output, host/livepatch_sysfs.h, common/file.h).
#include "hostile/hostile_util.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace rr::test {
namespace {

const std::string kDmar = std::string(RELAX_RMRR_FIXTURES) + "/dmar/hp-proliant-dl360-g7.dat";

TEST(HostileFalseSuccess, OutputToAFullDeviceFails) {
  for (const std::string& args :
       std::vector<std::string>{"--version", "--help", "dmar --json '" + kDmar + "'", "dmar '" + kDmar + "'", "completion bash"}) {
    auto r = run_command(fmt::format("{{ {} {} > /dev/full; }}", RELAX_RMRR_BINARY, args));
    EXPECT_EQ(r.exit_code, 1) << args << ": " << r.output;
    EXPECT_NE(r.output.find("cannot write the output"), std::string::npos) << args << ": " << r.output;
  }
}

TEST(HostileFalseSuccess, DoctorWithADmarFileThatCannotBeReadGivesNoVerdict) {
  TempDir root;
  fs::create_directories(root.path() / "sys");
  auto missing = tool(fmt::format("doctor --root '{}' --dmar '{}/no-such-table'", root.path().string(), root.path().string()));
  EXPECT_EQ(missing.exit_code, 3) << missing.output;
  auto directory = tool(fmt::format("doctor --root '{}' --dmar '{}'", root.path().string(), root.path().string()));
  EXPECT_EQ(directory.exit_code, 2) << directory.output;
}

TEST(HostileFalseSuccess, EnabledValueTheKernelNeverWritesIsNotReadAsDisabled) {
  TempDir root;
  fake_livepatch(root.path(), "relax_rmrr", "yes");
  auto disable = tool(fmt::format("disable --root '{}'", root.path().string()));
  EXPECT_EQ(disable.exit_code, 1) << disable.output;
  EXPECT_NE(disable.output.find("never writes"), std::string::npos) << disable.output;
  auto status = tool(fmt::format("status --root '{}' --json", root.path().string()));
  EXPECT_EQ(status.exit_code, 1) << status.output;
  EXPECT_NE(status.output.find("\"error\""), std::string::npos) << status.output;
  auto doctor = tool(fmt::format("doctor --root '{}' --dmar '{}'", root.path().string(), kDmar));
  EXPECT_EQ(doctor.exit_code, 1) << doctor.output;
  EXPECT_NE(doctor.output.find("never writes"), std::string::npos) << doctor.output;
}

TEST(HostileFalseSuccess, ModuleStateTheKernelNeverWritesIsAnError) {
  TempDir root;
  fake_livepatch(root.path(), "relax_rmrr");
  put_file(root.path(), "sys/module/relax_rmrr/initstate", "banana\n");
  auto unload = tool(fmt::format("unload --root '{}'", root.path().string()));
  EXPECT_EQ(unload.exit_code, 1) << unload.output;
  put_file(root.path(), "sys/module/relax_rmrr/initstate", "live\n");
  put_file(root.path(), "sys/module/relax_rmrr/refcnt", "-3\n");
  auto status = tool(fmt::format("status --root '{}'", root.path().string()));
  EXPECT_EQ(status.exit_code, 1) << status.output;
  EXPECT_NE(status.output.find("never writes"), std::string::npos) << status.output;
}

}  // namespace
}  // namespace rr::test
