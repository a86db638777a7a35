// Hostile input, class 5: malformed input taken as good. Each input is checked against what a real one must
// look like: a kernel image is an x86_64 kernel ELF, a symbol table has _text and kernel addresses, names are
// names; anything else is exit 2 with a message that says what is wrong.
#include "analysis/symbols.h"
#include "hostile/hostile_util.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace rr::test {
namespace {

TEST(HostileMalformed, AnOrdinaryProgramIsNotAKernelImage) {
  for (const std::string& option : std::vector<std::string>{"--image", "--vmlinux"}) {
    auto r = tool("analyze --kernel-release 6.1.0-56-amd64 " + option + " /bin/ls");
    EXPECT_EQ(r.exit_code, 2) << option << ": " << r.output;
    EXPECT_NE(r.output.find("not an x86_64 kernel image"), std::string::npos) << r.output;
  }
  auto r = tool("kallsyms /bin/ls");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(HostileMalformed, ASymbolDumpNoKernelCouldProduceIsRefused) {
  // No _text: every x86_64 kernel has it.
  auto no_text = analysis::parse_kallsyms("ffffffff81000100 T intel_iommu_attach_device\n", "dump");
  ASSERT_FALSE(no_text);
  EXPECT_NE(no_text.error().message.find("_text"), std::string::npos);
  // A function in user space.
  auto user = analysis::parse_kallsyms("ffffffff81000000 T _text\n0000000000401000 T intel_iommu_attach_device\n", "dump");
  ASSERT_FALSE(user);
  EXPECT_EQ(user.error().code, ExitCode::bad_input);
  // The same through System.map.
  EXPECT_FALSE(analysis::parse_system_map("0000000000001000 t main\n", "System.map"));
  // Hidden addresses (a dump read without CAP_SYSLOG) are still a kernel's table: analyze says so itself.
  EXPECT_TRUE(analysis::parse_kallsyms("0000000000000000 T _text\n0000000000000000 t foo\n", "dump"));
}

TEST(HostileMalformed, SymbolDumpThroughTheToolExitsTwo) {
  TempDir dir;
  put_file(dir.path(), "kallsyms", "ffffffff81000100 T intel_iommu_attach_device\n");
  auto r = tool(fmt::format("analyze --kernel-release 6.1.0-56-amd64 --kallsyms '{}'", (dir.path() / "kallsyms").string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no _text symbol"), std::string::npos) << r.output;
}

TEST(HostileMalformed, NamesThatCannotBeModuleNamesAreUsageErrors) {
  TempDir root;
  fs::create_directories(root.path() / "sys");
  for (const std::string& args : std::vector<std::string>{"status --name 'relax rmrr'", "disable --name relax.rmrr",
                                                          "unload --name " + std::string(60, 'a'), "doctor --name ../x"}) {
    auto r = tool(fmt::format("{} --root '{}'", args, root.path().string()));
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
  }
  auto build = tool("build --name 'a/b' --kernel-release 6.1.0-56-amd64");
  EXPECT_EQ(build.exit_code, 2) << build.output;
}

TEST(HostileMalformed, OptionValuesOutOfRangeAreUsageErrors) {
  TempDir root;
  for (const std::string& args :
       std::vector<std::string>{"wait --timeout -1", "wait --timeout 1e12", "install --dir ../../etc", "uninstall --kernel-release ''"}) {
    auto r = tool(fmt::format("{} --root '{}'", args, root.path().string()));
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
  }
}

}  // namespace
}  // namespace rr::test
