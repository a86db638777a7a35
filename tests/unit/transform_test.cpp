// The relax transform on synthetic C: found by parsing, refused when the shape is unexpected, rendered as
// edits that apply_edits() and `patch -p1` turn into the same text.
#include "source/transform.h"
#include "common/file.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace rr;
using namespace rr::source;

namespace {

// The shape of the upstream function (written here from its documented behaviour, not copied).
constexpr std::string_view kUpstreamLike = R"(// SPDX-License-Identifier: GPL-2.0
#include <linux/pci.h>

#define IS_USB(p) ((p)->class >> 8 == 0x0c03)

static bool device_rmrr_is_relaxable(struct device *dev);

/*
 * Whether the RMRRs of a device may go unenforced. { braces in a comment }
 */
static bool device_rmrr_is_relaxable(struct device *dev)
{
	struct pci_dev *pdev;

	if (!dev_is_pci(dev))
		return false;

	pdev = to_pci_dev(dev);
	if (IS_USB(pdev))
		return true;
	else
		return false;
}

static bool device_is_rmrr_locked(struct device *dev)
{
	if (device_rmrr_is_relaxable(dev))
		return false;
	return true;
}
)";

std::string patched_of(std::string_view text, std::string_view path = "drivers/iommu/intel/iommu.c") {
  auto tr = relax_transform(text, path);
  EXPECT_TRUE(tr.ok()) << tr.error().message;
  if (!tr) return {};
  auto out = apply_edits(text, tr->edits);
  EXPECT_TRUE(out.ok()) << out.error().message;
  return out ? *out : std::string{};
}

// The body of the (single) definition in patched text.
std::string body_of(std::string_view text) {
  auto defs = find_function_definitions(text, kRelaxFunction, "t.c");
  EXPECT_TRUE(defs.ok());
  if (!defs || defs->size() != 1) return {};
  const auto& d = defs->front();
  return std::string(text.substr(d.body_open, d.body_close + 1 - d.body_open));
}

TEST(Transform, ReplacesTheDefinitionNotThePrototypeOrCalls) {
  auto tr = relax_transform(kUpstreamLike, "drivers/iommu/intel/iommu.c");
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  EXPECT_EQ(tr->function, "device_rmrr_is_relaxable");
  EXPECT_EQ(tr->path, "drivers/iommu/intel/iommu.c");
  EXPECT_EQ(tr->line, 11u);
  ASSERT_EQ(tr->edits.size(), 1u);
  const TextEdit& e = tr->edits[0];
  EXPECT_EQ(kUpstreamLike.substr(e.offset, 2), "{\n");
  EXPECT_NE(e.old_text.find("IS_USB(pdev)"), std::string::npos);
  EXPECT_EQ(e.old_text.back(), '}');

  std::string patched = patched_of(kUpstreamLike);
  std::string body = body_of(patched);
  EXPECT_NE(body.find("return true;"), std::string::npos) << body;
  EXPECT_NE(body.find("(void)dev;"), std::string::npos) << "the parameter must stay referenced: " << body;
  EXPECT_EQ(body.find("return false"), std::string::npos) << body;
  // Everything else is untouched: the prototype, the caller.
  EXPECT_NE(patched.find("static bool device_rmrr_is_relaxable(struct device *dev);"), std::string::npos);
  EXPECT_NE(patched.find("\tif (device_rmrr_is_relaxable(dev))\n\t\treturn false;"), std::string::npos);
}

// The livepatch's transform: the selection first, then the kernel's own answer, compiled as kernel-style C
// (declarations after statements are an error) with stand-ins for the kernel's types, and run.
TEST(Transform, SelectedDevicesAskTheSelectionThenTheKernel) {
  auto tr = relax_transform(kUpstreamLike, "drivers/iommu/intel/iommu.c", RelaxScope::selected_devices);
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  auto patched = apply_edits(kUpstreamLike, tr->edits);
  ASSERT_TRUE(patched.ok()) << patched.error().message;
  // No line added or removed: __LINE__ below the function is what the kernel was compiled with.
  EXPECT_EQ(std::count(patched->begin(), patched->end(), '\n'), std::count(kUpstreamLike.begin(), kUpstreamLike.end(), '\n'));
  EXPECT_NE(body_of(*patched).find("IS_USB(pdev)"), std::string::npos) << "the kernel's own rule stays: " << *patched;

  test::TempDir dir;
  std::string program = *patched;
  program.replace(program.find("#include <linux/pci.h>"), 22, R"(#include <stdbool.h>
#include <stdio.h>
struct device { int pci; int class_code; };
struct pci_dev { int class; };
static struct pci_dev the_pdev;
#define dev_is_pci(d) ((d)->pci)
#define to_pci_dev(d) (the_pdev.class = (d)->class_code, &the_pdev)
static int selected;
bool relax_rmrr_device_selected(struct device *dev) { (void)dev; return selected; })");
  program += R"(
int main(void)
{
	struct device nic = { 1, 0x020000 }, usb = { 1, 0x0c0300 }, acpi = { 0, 0 };
	for (selected = 0; selected < 2; selected++)
		printf("%d%d%d", device_rmrr_is_relaxable(&nic), device_rmrr_is_relaxable(&usb), device_rmrr_is_relaxable(&acpi));
	printf("\n");
	return device_is_rmrr_locked(&nic);
}
)";
  ASSERT_TRUE(write_file_text(dir.path() / "t.c", program));
  auto built = test::run_command(fmt::format(
      "gcc -std=gnu11 -Wall -Wextra -Wno-unused-function -Wdeclaration-after-statement -Werror -o '{0}/t' '{0}/t.c'", dir.path().string()));
  ASSERT_EQ(built.exit_code, 0) << built.output << program;
  auto ran = test::run_command(fmt::format("'{}/t'", dir.path().string()));
  // Not selected: only the USB device (the kernel's rule); selected: all three. The NIC ends selected: not locked.
  EXPECT_EQ(ran.output, "010111\n");
  EXPECT_EQ(ran.exit_code, 0);
}

TEST(Transform, IsIdempotentInShapeAndAcceptsItsOwnOutput) {
  std::string once = patched_of(kUpstreamLike);
  std::string twice = patched_of(once);
  EXPECT_EQ(once, twice);
}

TEST(Transform, CommentsStringsAndCharsWithBracesAreNotCode) {
  std::string text = R"(static const char *s = "} { device_rmrr_is_relaxable(struct device *dev) {";
static const char c = '}';
static const char q[] = "\"}";
// static bool device_rmrr_is_relaxable(struct device *dev) { return false; }
/* static bool device_rmrr_is_relaxable(struct device *dev) { } */
static bool device_rmrr_is_relaxable(struct device *dev)
{
	/* } unbalanced in a comment */
	const char *msg = "}}}";   // {
	char open = '{';
	if (msg[0] == '}' && open == '{')
		return dev != NULL;
	return false;
}
int after(void) { return '}'; }
)";
  auto tr = relax_transform(text, "x.c");
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  EXPECT_EQ(tr->line, 6u);
  ASSERT_EQ(tr->edits.size(), 1u);
  EXPECT_TRUE(tr->edits[0].old_text.starts_with("{\n\t/* } unbalanced"));
  EXPECT_TRUE(tr->edits[0].old_text.ends_with("return false;\n}"));
  std::string patched = patched_of(text, "x.c");
  EXPECT_NE(patched.find("int after(void) { return '}'; }"), std::string::npos);
}

TEST(Transform, PreprocessorLinesAreSkipped) {
  std::string text = R"(#define OPEN {
#define MULTI(x) \
	static bool device_rmrr_is_relaxable(struct device *x) { \
		return false; }
#if 0 /* a comment
	spanning lines } */
#endif
static inline bool device_rmrr_is_relaxable(struct device *dev)
{
	return false;
}
)";
  auto tr = relax_transform(text, "pp.c");
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  EXPECT_EQ(tr->line, 8u);
}

TEST(Transform, MissingFunctionNamesFileAndExpectation) {
  std::string text = "static bool device_is_rmrr_locked(struct device *dev)\n{\n\treturn device_rmrr_is_relaxable(dev);\n}\n";
  auto tr = relax_transform(text, "drivers/iommu/intel-iommu.c");
  ASSERT_FALSE(tr.ok());
  EXPECT_EQ(tr.error().code, ExitCode::bad_input);
  EXPECT_NE(tr.error().message.find("drivers/iommu/intel-iommu.c"), std::string::npos) << tr.error().message;
  EXPECT_NE(tr.error().message.find("no definition of device_rmrr_is_relaxable()"), std::string::npos) << tr.error().message;
  EXPECT_NE(tr.error().message.find("static bool device_rmrr_is_relaxable(struct device *dev)"), std::string::npos);
}

TEST(Transform, PrototypeWithoutBodyIsMissing) {
  auto tr = relax_transform("static bool device_rmrr_is_relaxable(struct device *dev);\n", "p.c");
  ASSERT_FALSE(tr.ok());
  EXPECT_NE(tr.error().message.find("no definition"), std::string::npos);
}

TEST(Transform, TwoDefinitionsAreRefused) {
  std::string text = R"(#ifdef CONFIG_A
static bool device_rmrr_is_relaxable(struct device *dev)
{
	return false;
}
#else
static bool device_rmrr_is_relaxable(struct device *dev)
{
	return true;
}
#endif
)";
  auto tr = relax_transform(text, "two.c");
  ASSERT_FALSE(tr.ok());
  EXPECT_NE(tr.error().message.find("two.c: 2 definitions"), std::string::npos) << tr.error().message;
  EXPECT_NE(tr.error().message.find("lines 2, 7"), std::string::npos) << tr.error().message;
}

TEST(Transform, UnbalancedBracesAreRefused) {
  for (std::string text : {std::string("static bool device_rmrr_is_relaxable(struct device *dev)\n{\n\tif (dev) {\n\t\treturn false;\n}\n"),
                           std::string("static bool device_rmrr_is_relaxable(struct device *dev)\n{\n\treturn false;\n}\n}\n"),
                           std::string("static bool device_rmrr_is_relaxable(struct device *dev\n{\n\treturn false;\n}\n")}) {
    auto tr = relax_transform(text, "bad.c");
    ASSERT_FALSE(tr.ok()) << text;
    EXPECT_NE(tr.error().message.find("bad.c:"), std::string::npos) << tr.error().message;
    EXPECT_NE(tr.error().message.find("unbalanced"), std::string::npos) << tr.error().message;
  }
}

TEST(Transform, UnterminatedCommentOrStringIsRefused) {
  auto a = relax_transform("/* open\nstatic bool device_rmrr_is_relaxable(struct device *dev) { return 0; }\n", "c.c");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("c.c:1: unterminated /* comment"), std::string::npos) << a.error().message;
  auto b = relax_transform("static const char *s = \"abc\nstatic bool device_rmrr_is_relaxable(struct device *dev) { return 0; }\n", "s.c");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("unterminated string"), std::string::npos) << b.error().message;
}

TEST(Transform, UnexpectedSignatureIsRefused) {
  auto a = relax_transform("static struct x *device_rmrr_is_relaxable(struct device *dev)\n{\n\treturn NULL;\n}\n", "sig.c");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("sig.c:1"), std::string::npos) << a.error().message;
  auto b = relax_transform("static bool device_rmrr_is_relaxable(void)\n{\n\treturn false;\n}\n", "sig.c");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("takes no parameters"), std::string::npos) << b.error().message;
}

TEST(Transform, AttributesAndKAndRBraceStyle) {
  std::string text =
      "static bool __maybe_unused device_rmrr_is_relaxable(struct device *d, int flags) __attribute__((noinline)) {\n"
      "\treturn d && flags; }\n";
  auto tr = relax_transform(text, "attr.c");
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  ASSERT_EQ(tr->edits.size(), 1u);
  EXPECT_EQ(tr->edits[0].old_text, "{\n\treturn d && flags; }");
  EXPECT_NE(tr->edits[0].new_text.find("(void)d;"), std::string::npos);
  EXPECT_NE(tr->edits[0].new_text.find("(void)flags;"), std::string::npos);
}

TEST(FindFunctionDefinitions, ReportsSpecifiersParametersAndOffsets) {
  std::string text = "int a;\nstatic inline unsigned long f(const struct s *p, int (*cb)(int), char buf[16])\n{\n\treturn 0;\n}\n";
  auto defs = find_function_definitions(text, "f", "f.c");
  ASSERT_TRUE(defs.ok()) << defs.error().message;
  ASSERT_EQ(defs->size(), 1u);
  const auto& d = defs->front();
  EXPECT_EQ(d.specifiers, (std::vector<std::string>{"static", "inline", "unsigned", "long"}));
  EXPECT_EQ(d.parameters, (std::vector<std::string>{"p", "cb", "buf"}));
  EXPECT_EQ(d.line, 2u);
  EXPECT_EQ(text[d.body_open], '{');
  EXPECT_EQ(text[d.body_close], '}');
  EXPECT_EQ(text.substr(d.decl_offset, 6), "static");
}

TEST(ApplyEdits, RefusesEditsThatDoNotFit) {
  auto r = apply_edits("hello world", {TextEdit{6, "there", "x"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not apply"), std::string::npos);
  auto o = apply_edits("hello world", {TextEdit{0, "hello", "a"}, TextEdit{3, "lo", "b"}});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.error().message.find("overlap"), std::string::npos);
  auto ok = apply_edits("hello world", {TextEdit{6, "world", "there"}, TextEdit{0, "hello", "hi"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "hi there");
}

// The diff must be what `patch -p1` needs to turn the original into apply_edits()'s output.
void expect_patch_agrees(const std::string& original, const std::vector<TextEdit>& edits) {
  auto want = apply_edits(original, edits);
  ASSERT_TRUE(want.ok()) << want.error().message;
  auto diff = unified_diff(original, edits, "drivers/iommu/intel/iommu.c");
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  test::TempDir dir;
  ASSERT_TRUE(std::filesystem::create_directories(dir.path() / "drivers/iommu/intel"));
  ASSERT_TRUE(write_file_text(dir.path() / "drivers/iommu/intel/iommu.c", original).ok());
  ASSERT_TRUE(write_file_text(dir.path() / "relax.patch", *diff).ok());
  auto r = test::run_command(fmt::format("cd {} && patch -p1 --no-backup-if-mismatch -F0 < relax.patch", dir.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output << "\n" << *diff;
  auto got = read_file_text(dir.path() / "drivers/iommu/intel/iommu.c");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, *want) << *diff;
}

TEST(UnifiedDiff, PatchAppliesTheRelaxTransform) {
  std::string original(kUpstreamLike);
  auto tr = relax_transform(original, "drivers/iommu/intel/iommu.c");
  ASSERT_TRUE(tr.ok());
  expect_patch_agrees(original, tr->edits);
  auto diff = unified_diff(original, tr->edits, "drivers/iommu/intel/iommu.c");
  ASSERT_TRUE(diff.ok());
  EXPECT_TRUE(diff->starts_with("--- a/drivers/iommu/intel/iommu.c\n+++ b/drivers/iommu/intel/iommu.c\n@@ -10,16 +10,9 @@\n")) << *diff;
  EXPECT_NE(diff->find("\n-\tpdev = to_pci_dev(dev);\n"), std::string::npos) << *diff;
  EXPECT_NE(diff->find("\n+\treturn true;\n"), std::string::npos) << *diff;
}

TEST(UnifiedDiff, EdgeCasesAgreeWithPatch) {
  std::string lines;
  for (int i = 1; i <= 30; ++i) lines += fmt::format("line {}\n", i);
  // Mid-line edits, several hunks, merged hunks, first and last line, insertion and deletion.
  expect_patch_agrees(lines, {TextEdit{0, "line 1\n", ""}});
  expect_patch_agrees(lines, {TextEdit{lines.find("line 30"), "line 30\n", "the end\nreally\n"}});
  expect_patch_agrees(lines, {TextEdit{lines.find("5\n"), "5", "five"}, TextEdit{lines.find("line 7"), "", "inserted\n"}});
  expect_patch_agrees(lines, {TextEdit{lines.find("line 3\n"), "line 3\nline 4\n", ""}, TextEdit{lines.find("line 25"), "line", "LINE"}});
  expect_patch_agrees(lines, {TextEdit{lines.find("line 10"), "line 10\nline 1", "x"}});
  expect_patch_agrees(lines, {TextEdit{lines.size(), "", "appended\n"}});
  // Two edits on one line cannot be two changes: refused, not rendered wrong.
  auto shared = unified_diff(lines, {TextEdit{0, "l", "L"}, TextEdit{2, "n", "N"}}, "x");
  ASSERT_FALSE(shared.ok());
  EXPECT_NE(shared.error().message.find("share a line"), std::string::npos);
  std::string no_newline = "a\nb\nc";
  expect_patch_agrees(no_newline, {TextEdit{4, "c", "C"}});
  expect_patch_agrees(no_newline, {TextEdit{2, "b", "B\nBB"}});
}

}  // namespace

namespace {

// Every prefix of a real-shaped file and random bytes: an answer or an Error, never a crash or a hang.
TEST(Transform, TruncatedAndRandomInputNeverCrash) {
  std::string text(kUpstreamLike);
  size_t ok_count = 0;
  for (size_t n = 0; n <= text.size(); ++n) {
    auto tr = relax_transform(std::string_view(text).substr(0, n), "cut.c");
    if (tr.ok()) {
      ++ok_count;
      auto patched = apply_edits(text.substr(0, n), tr->edits);
      EXPECT_TRUE(patched.ok());
    } else {
      EXPECT_FALSE(tr.error().message.empty());
    }
  }
  EXPECT_GT(ok_count, 0u);  // the whole file (and prefixes that end after the function) work
  uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  const std::string alphabet = "{}()[];,*/\\\"'#\n\t abcdev_0123456789";
  for (int round = 0; round < 300; ++round) {
    std::string s;
    size_t len = next() % 400;
    for (size_t i = 0; i < len; ++i) s += alphabet[(next() >> 8) % alphabet.size()];
    if (round % 3 == 0) s.insert(s.size() / 2, "static bool device_rmrr_is_relaxable(struct device *dev) {");
    auto tr = relax_transform(s, "rand.c");
    if (tr.ok()) {
      auto diff = unified_diff(s, tr->edits, "rand.c");
      EXPECT_TRUE(diff.ok());
    }
  }
}

}  // namespace
