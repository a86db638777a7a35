// Reading the running kernel's code from /proc/kcore (verify --text kcore): the refusals say why, and the bytes
// come from the PT_LOAD segment that holds the address. An ordinary executable stands in for the ELF core.
#include "verify/kernel_text.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <unistd.h>

namespace rr::verify {
namespace {

using test::TempDir;

TEST(KernelTextFromKcore, MissingFileSaysTheKernelHasNone) {
  TempDir dir;
  auto t = KernelText::from_kcore(dir.path() / "kcore", dir.path() / "lockdown");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ExitCode::environment);
  EXPECT_NE(t.error().message.find("has no /proc/kcore"), std::string::npos) << t.error().message;
}

TEST(KernelTextFromKcore, ConfidentialityLockdownIsRefusedBeforeOpening) {
  TempDir dir;
  ASSERT_TRUE(write_file_text(dir.path() / "lockdown", "none integrity [confidentiality]\n"));
  auto t = KernelText::from_kcore("/proc/self/exe", dir.path() / "lockdown");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ExitCode::environment);
  EXPECT_NE(t.error().message.find("locked down"), std::string::npos) << t.error().message;
}

TEST(KernelTextFromKcore, NonElfFileIsNotAnElfCore) {
  TempDir dir;
  ASSERT_TRUE(write_file_text(dir.path() / "kcore", "this is not an ELF file at all\n"));
  auto t = KernelText::from_kcore(dir.path() / "kcore", dir.path() / "lockdown");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("not an ELF core"), std::string::npos) << t.error().message;
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
