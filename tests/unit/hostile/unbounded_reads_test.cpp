// Hostile input, class 4: unbounded reads and hangs. A FIFO given as an input never blocks, a device like
// /dev/zero is refused instead of read for gigabytes, and a regular file larger than its kind can be is an
// error, not a long read (common/file.h: open_regular_file, read_cap).
#include "hostile/hostile_util.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace rr::test {
namespace {

// `timeout` stands guard so that a regression shows as exit 124, not as a test run that never ends.
CommandResult guarded(const std::string& args) { return tool("--version >/dev/null && timeout 60 " RELAX_RMRR_BINARY " " + args); }

class FifoInput : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::mkfifo(fifo().c_str(), 0600), 0); }
  fs::path fifo() const { return dir_.path() / "input"; }
  TempDir dir_;
};

TEST_F(FifoInput, AsADmarTableIsRefusedWithoutBlocking) {
  auto r = guarded(fmt::format("dmar '{}'", fifo().string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("a FIFO"), std::string::npos) << r.output;
}

TEST_F(FifoInput, AsAKallsymsDumpIsRefusedWithoutBlocking) {
  auto r = guarded(fmt::format("analyze --kernel-release 6.1.0-56-amd64 --kallsyms '{}'", fifo().string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("a FIFO"), std::string::npos) << r.output;
}

TEST_F(FifoInput, AsASourceTarballIsRefusedWithoutBlocking) {
  fs::path tarball = dir_.path() / "linux-source-6.1.tar.xz";
  fs::rename(fifo(), tarball);
  auto r = guarded(fmt::format("patch --source '{}'", tarball.string()));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "blocked on the FIFO";
  EXPECT_TRUE(r.output.find("a FIFO") != std::string::npos || r.output.find("is not a file") != std::string::npos) << r.output;
}

TEST(HostileUnboundedReads, DevZeroIsRefusedNotReadForGigabytes) {
  for (const std::string& args : std::vector<std::string>{"analyze --kernel-release 6.1.0-56-amd64 --kallsyms /dev/zero",
                                                          "analyze --kernel-release 6.1.0-56-amd64 "
                                                          "--system-map /dev/zero",
                                                          "dmar /dev/zero", "analyze --image /dev/zero"}) {
    auto r = guarded(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find("a character device"), std::string::npos) << args << ": " << r.output;
  }
}

TEST(HostileUnboundedReads, ARegularFileLargerThanItsKindIsAnError) {
  TempDir dir;
  fs::path huge = dir.path() / "kallsyms";
  {
    // Sparse: 300 MiB that take no disk, more than any symbol dump.
    UniqueFd fd(::open(huge.c_str(), O_WRONLY | O_CREAT, 0600));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::ftruncate(fd.get(), off_t{300} << 20), 0);
  }
  auto text = read_file_text(huge);
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message.find("larger than"), std::string::npos) << text.error().message;
  auto table = read_file_bytes(huge, read_cap::table);
  EXPECT_FALSE(table);
}

}  // namespace
}  // namespace rr::test
