// Hostile input, class 2: destructive output. An output path that holds a FIFO, a device node, a directory or
// a symbolic link is refused, never written through or replaced; a regular file is replaced atomically, so a
// failed write leaves the old one whole (common/atomic_file.h).
#include "common/atomic_file.h"
#include "hostile/hostile_util.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace rr::test {
namespace {

TEST(HostileOutput, DkmsTreeOverAFifoIsRefusedAndTheFifoStays) {
  TempDir out;
  ASSERT_EQ(::mkfifo((out.path() / "dkms.conf").c_str(), 0644), 0);
  auto r = tool(fmt::format("package --dkms --output '{}'", out.path().string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("a FIFO"), std::string::npos) << r.output;
  EXPECT_TRUE(is_named_pipe(out.path() / "dkms.conf"));
}

TEST(HostileOutput, SymbolicLinkAtTheOutputIsNotFollowedOrReplaced) {
  TempDir out, elsewhere;
  put_file(elsewhere.path(), "target", "keep me\n");
  fs::create_symlink(elsewhere.path() / "target", out.path() / "dkms.conf");
  auto r = tool(fmt::format("package --dkms --output '{}'", out.path().string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(read_back(elsewhere.path() / "target"), "keep me\n");
  EXPECT_TRUE(fs::is_symlink(out.path() / "dkms.conf"));
}

TEST(HostileOutput, DirectoryAndFifoTargetsAreRefusedByTheWriter) {
  TempDir dir;
  fs::create_directories(dir.path() / "a-directory");
  ASSERT_EQ(::mkfifo((dir.path() / "a-fifo").c_str(), 0644), 0);
  auto d = write_file_atomically(dir.path() / "a-directory", "x");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ExitCode::bad_input);
  auto f = write_file_atomically(dir.path() / "a-fifo", "x");
  ASSERT_FALSE(f);
  EXPECT_TRUE(is_named_pipe(dir.path() / "a-fifo"));
}

TEST(HostileOutput, AFailedWriteLeavesTheOldFileWholeAndNoTemporaryFile) {
  TempDir dir;
  fs::path target = dir.path() / "module.ko";
  put_file(dir.path(), "module.ko", "the old module\n");
  // A child whose file size limit is 1 KiB stands for a full disk: its write of 64 KiB must fail.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit {
      1024, 1024
    };
    ::setrlimit(RLIMIT_FSIZE, &limit);
    auto st = write_file_atomically(target, std::string(64 * 1024, 'n'));
    ::_exit(st ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << "the write should have failed";
  EXPECT_EQ(read_back(target), "the old module\n");
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u) << "a temporary file was left behind";
}

TEST(HostileOutput, ARegularFileIsReplacedWithItsMode) {
  TempDir dir;
  put_file(dir.path(), "out", "old\n");
  ASSERT_TRUE(write_file_atomically(dir.path() / "out", "new\n", 0755));
  EXPECT_EQ(read_back(dir.path() / "out"), "new\n");
  EXPECT_EQ(fs::status(dir.path() / "out").permissions() & fs::perms::all, static_cast<fs::perms>(0755));
}

}  // namespace
}  // namespace rr::test
