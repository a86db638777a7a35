// Reading the running kernel's code from /proc/kcore (verify --text kcore): the refusals say why, and the bytes
// come from the PT_LOAD segment that holds the address. An ordinary executable stands in for the ELF core.
#include "verify/kernel_text.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <unistd.h>

namespace rr::verify {
namespace {

using test::TempDir;

// The error from_kcore gives for these files; fails the test when it succeeds.
Error refusal(const std::filesystem::path& kcore, const std::filesystem::path& lockdown) {
  auto t = KernelText::from_kcore(kcore, lockdown);
  EXPECT_FALSE(t) << kcore << " was read as a kernel core";
  return t ? Error{} : t.error();
}

TEST(KernelTextFromKcore, RefusalsSayWhy) {
  TempDir dir;
  Error missing = refusal(dir.path() / "kcore", dir.path() / "lockdown");
  EXPECT_EQ(missing.code, ExitCode::environment);
  EXPECT_NE(missing.message.find("has no /proc/kcore"), std::string::npos) << missing.message;

  ASSERT_TRUE(write_file_text(dir.path() / "text", "this is not an ELF file at all\n"));
  Error not_elf = refusal(dir.path() / "text", dir.path() / "lockdown");
  EXPECT_NE(not_elf.message.find("not an ELF core"), std::string::npos) << not_elf.message;

  // lockdown=confidentiality: refused before the file is even opened, however readable it is.
  ASSERT_TRUE(write_file_text(dir.path() / "lockdown", "none integrity [confidentiality]\n"));
  Error locked = refusal("/proc/self/exe", dir.path() / "lockdown");
  EXPECT_EQ(locked.code, ExitCode::environment);
  EXPECT_NE(locked.message.find("locked down"), std::string::npos) << locked.message;
}

TEST(KernelTextFromKcore, ReadsBytesThroughTheLoadSegments) {
  TempDir dir;
  auto t = KernelText::from_kcore("/proc/self/exe", dir.path() / "lockdown");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->origin(), TextOrigin::kcore);
  // A position-independent executable's first PT_LOAD maps the file's first page at address 0.
  auto head = t->read(0, 4);
  ASSERT_TRUE(head);
  EXPECT_EQ(std::string(head->begin(), head->end()),
            "\x7f"
            "ELF");
  EXPECT_FALSE(t->read(~0ull - 16, 4)) << "an address outside every segment reads nothing";
}

}  // namespace
}  // namespace rr::verify
