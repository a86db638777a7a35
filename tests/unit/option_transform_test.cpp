// The option transform (the full kernel patch) and the line-preserving rendering of the relax
// transform (the kpatch patch) on synthetic C: where the edits land, that `patch -p1` and apply_edits() agree,
// that every unexpected shape is refused, and -- compiling the fixtures as host programs -- what the patched
// code does with and without intel_iommu=relax_rmrr.
#include "source/option_transform.h"
#include "common/file.h"
#include "iommu_fixtures.h"
#include "source/transform.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace rr;
using namespace rr::source;

namespace {

constexpr std::string_view kPath = "drivers/iommu/intel/iommu.c";

std::string option_patched(std::string_view text) {
  auto tr = option_transform(text, kPath);
  EXPECT_TRUE(tr.ok()) << tr.error().message;
  if (!tr) return {};
  auto out = apply_edits(text, tr->edits);
  EXPECT_TRUE(out.ok()) << out.error().message;
  return out ? *out : std::string{};
}

size_t count(std::string_view hay, std::string_view needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string_view::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

size_t lines(std::string_view s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

// `patch -p1` of the unified diff on a copy of `text` gives exactly apply_edits()'s result.
void expect_patch_agrees(std::string_view text, const std::vector<TextEdit>& edits) {
  auto expected = apply_edits(text, edits);
  ASSERT_TRUE(expected.ok()) << expected.error().message;
  auto diff = unified_diff(text, edits, kPath);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  test::TempDir d;
  std::filesystem::create_directories(d.path() / "drivers/iommu/intel");
  ASSERT_TRUE(write_file_text(d.path() / kPath, text).ok());
  ASSERT_TRUE(write_file_text(d.path() / "p.patch", *diff).ok());
  auto r = test::run_command(fmt::format("cd {} && patch -p1 -F0 --batch < p.patch", d.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output << "\n" << *diff;
  EXPECT_EQ(*read_file_text(d.path() / kPath), *expected) << *diff;
}

// Compiles a fixture (original or patched) as a host program and runs it: "relaxable=0|1" and its warnings.
std::string run_host(std::string_view driver, const std::string& options, const std::string& pci_class) {
  test::TempDir d;
  if (!write_file_text(d.path() / "prog.c", test::host_program(driver)).ok()) return "write failed";
  auto cc =
      test::run_command(fmt::format("cd {} && gcc -std=gnu11 -Wall -Wextra -Werror -Wdeclaration-after-statement "
                                    "-Wno-unused-parameter -o prog prog.c",
                                    d.path().string()));
  if (cc.exit_code != 0) return "compile failed: " + cc.output;
  return test::run_command(fmt::format("{}/prog '{}' {}", d.path().string(), options, pci_class)).output;
}

TEST(OptionTransform, ModernDriverGetsVariableBranchAndCheck) {
  auto tr = option_transform(test::kModernDriver, kPath);
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  EXPECT_EQ(tr->function, "device_rmrr_is_relaxable");
  EXPECT_EQ(tr->path, kPath);
  ASSERT_EQ(tr->edits.size(), 3u);
  for (const auto& e : tr->edits) EXPECT_TRUE(e.old_text.empty()) << "the option transform only adds text";
  std::string p = option_patched(test::kModernDriver);
  EXPECT_EQ(count(p, "static bool intel_iommu_relax_rmrr;\n"), 1u);
  // The new branch sits before the final bare else, indented like its siblings.
  EXPECT_NE(p.find("\t\t} else if (!strncmp(str, \"relax_rmrr\", 10)) {\n"
                   "\t\t\tpr_warn(\"relax_rmrr: every RMRR is treated as relaxable"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("\t\t\tintel_iommu_relax_rmrr = true;\n\t\t} else {\n\t\t\tpr_notice(\"Unknown option"), std::string::npos) << p;
  EXPECT_NE(p.find("instability or data loss"), std::string::npos);
  // The check follows the declarations (no -Wdeclaration-after-statement).
  EXPECT_NE(p.find("\tstruct pci_dev *pdev;\n\n\tif (intel_iommu_relax_rmrr)\n\t\treturn true;\n\n\tif (!dev_is_pci(dev))"),
            std::string::npos)
      << p;
  // The variable is declared before both users.
  EXPECT_LT(p.find("static bool intel_iommu_relax_rmrr;"), p.find("intel_iommu_setup(char *str)"));
  EXPECT_LT(p.find("static bool intel_iommu_relax_rmrr;"), p.find("device_rmrr_is_relaxable(struct device *dev)"));
  expect_patch_agrees(test::kModernDriver, tr->edits);
}

TEST(OptionTransform, OldDriverAppendsBranchAndDeclaresAboveTheComment) {
  auto tr = option_transform(test::kOldDriver, kPath);
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  std::string p = option_patched(test::kOldDriver);
  // No final else: the branch is appended after the last one.
  EXPECT_NE(p.find("\t\t\tdmar_disabled = 1;\n\t\t} else if (!strncmp(str, \"relax_rmrr\", 10)) {\n"), std::string::npos) << p;
  EXPECT_NE(p.find("\t\t\tintel_iommu_relax_rmrr = true;\n\t\t}\n\n\t\tstr += strcspn"), std::string::npos) << p;
  // device_rmrr_is_relaxable() comes first here: the declaration goes above its comment block.
  EXPECT_NE(p.find("static bool intel_iommu_relax_rmrr;\n\n/*\n * Whether the RMRRs"), std::string::npos) << p;
  // A body without declarations gets the check first.
  EXPECT_NE(p.find("(struct device *dev)\n{\n\tif (intel_iommu_relax_rmrr)\n\t\treturn true;\n\n\tif (!dev_is_pci(dev))"),
            std::string::npos)
      << p;
  expect_patch_agrees(test::kOldDriver, tr->edits);
}

TEST(OptionTransform, PatchedCodeIsOffByDefaultAndOnWithTheOption) {
  for (std::string_view driver : {test::kModernDriver, test::kOldDriver}) {
    std::string p = option_patched(driver);
    ASSERT_FALSE(p.empty());
    // The original: a NIC (0x0200) is never relaxable, USB (0x0c03) always is.
    EXPECT_EQ(run_host(driver, "on", "200"), "relaxable=0\n");
    // Patched, option off: the same answers, no warning.
    EXPECT_EQ(run_host(p, "on", "200"), "relaxable=0\n");
    EXPECT_EQ(run_host(p, "on", "c03"), "relaxable=1\n");
    EXPECT_EQ(run_host(p, "on,sp_off", "200"), "relaxable=0\n");
    // Patched, option on (alone, first, last): every device, and the warning.
    for (const char* opts : {"relax_rmrr", "relax_rmrr,on", "on,relax_rmrr"}) {
      std::string out = run_host(p, opts, "200");
      EXPECT_NE(out.find("relaxable=1\n"), std::string::npos) << opts << ": " << out;
      EXPECT_NE(out.find("WARN: relax_rmrr:"), std::string::npos) << opts << ": " << out;
      EXPECT_NE(out.find("instability or data loss"), std::string::npos) << out;
    }
  }
}

TEST(OptionTransform, RefusesTreesThatAlreadyHaveTheOption) {
  std::string once = option_patched(test::kModernDriver);
  auto again = option_transform(once, kPath);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ExitCode::bad_input);
  EXPECT_NE(again.error().message.find("already"), std::string::npos) << again.error().message;

  // Another spelling of the same option (a distribution kernel that carries it natively).
  std::string native(test::kModernDriver);
  native.replace(native.find("\"sp_off\", 6"), 11, "\"relax_rmrr\", 10");
  auto n = option_transform(native, kPath);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("already has an intel_iommu=relax_rmrr option"), std::string::npos) << n.error().message;
}

TEST(OptionTransform, RefusesUnexpectedShapes) {
  auto refused = [](std::string text, std::string_view what) {
    auto tr = option_transform(text, kPath);
    EXPECT_FALSE(tr.ok()) << "accepted: " << what;
    if (tr.ok()) return;
    EXPECT_EQ(tr.error().code, ExitCode::bad_input);
    EXPECT_NE(tr.error().message.find(std::string(what)), std::string::npos) << tr.error().message;
    EXPECT_NE(tr.error().message.find(std::string(kPath)), std::string::npos) << "names the file: " << tr.error().message;
  };
  std::string m(test::kModernDriver);
  auto replaced = [&](std::string_view from, std::string_view to) {
    std::string s = m;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
  };
  refused(replaced("intel_iommu_setup(char *str)\n{", "intel_iommu_parse(char *str)\n{"), "0 definitions of intel_iommu_setup()");
  refused(m + "\nstatic int __init intel_iommu_setup(char *s)\n{\n\treturn 0;\n}\n", "2 definitions of intel_iommu_setup()");
  refused(replaced("intel_iommu_setup(char *str)", "intel_iommu_setup(char *str, int n)"), "takes 2 parameters");
  std::string no_chain = m;
  for (size_t at = no_chain.find("!strncmp(str"); at != std::string::npos; at = no_chain.find("!strncmp(str"))
    no_chain.replace(at, 12, "!memcmp(str");
  refused(no_chain, "no `if (!strncmp(str, \"...\", N))` chain");
  refused(replaced("} else if (!strncmp(str, \"sp_off\", 6)) {\n\t\t\tintel_iommu_superpage = 0;\n\t\t}",
                   "} else if (!strncmp(str, \"sp_off\", 6))\n\t\t\tintel_iommu_superpage = 0;\n\t\t"),
          "has no braces");
  refused(replaced("device_rmrr_is_relaxable(struct device *dev)\n{", "device_rmrr_is_relaxed(struct device *dev)\n{"),
          "no definition of device_rmrr_is_relaxable()");
  refused(replaced("\tstruct pci_dev *pdev;\n", "\tstruct pci_dev *pdev; pdev = 0;\n"), "expected a line break after its declarations");
  refused(replaced("is_relaxable(struct device *dev)\n{\n", "is_relaxable(struct device *dev)\n{ struct pci_dev *q = 0; (void)q;\n"),
          "expected a line break after its declarations");
  refused(std::string(test::kModernDriver.substr(0, test::kModernDriver.size() - 3)), "unbalanced braces");
}

TEST(UnifiedDiff, InsertionInTheMiddleOfALine) {
  constexpr std::string_view text = "a\n\tif (x) {\n\t} else {\n\t}\nz\n";
  std::vector<TextEdit> edits{{text.find("else {"), "", "else if (y) {\n\t\ty();\n\t} "}};
  expect_patch_agrees(text, edits);
  std::vector<TextEdit> after{{text.find("} else") + 1, "", " else if (y) {\n\t}"}};
  expect_patch_agrees(text, after);
}

TEST(PreserveLineCount, KeepsTheLineCountAndOnlyAddsWhitespaceAndAComment) {
  auto tr = relax_transform(test::kModernDriver, kPath);
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  auto padded = preserve_line_count(tr->edits);
  ASSERT_EQ(padded.size(), tr->edits.size());
  auto plain = apply_edits(test::kModernDriver, tr->edits);
  auto kept = apply_edits(test::kModernDriver, padded);
  ASSERT_TRUE(plain.ok() && kept.ok());
  EXPECT_LT(lines(*plain), lines(test::kModernDriver)) << "the relax transform shortens the function";
  EXPECT_EQ(lines(*kept), lines(test::kModernDriver));
  // The code after the function sits on the same lines as in the original.
  auto defs_orig = find_function_definitions(test::kModernDriver, "intel_iommu_setup", kPath);
  auto defs_kept = find_function_definitions(*kept, "intel_iommu_setup", kPath);
  ASSERT_TRUE(defs_orig.ok() && defs_kept.ok());
  EXPECT_EQ(defs_orig->front().line, defs_kept->front().line);
  // Same program: the padded text minus its padding comment and blank lines is the plain one.
  auto squeeze = [](std::string s) {
    size_t c = s.find("\t/*\n\t * relax-rmrr: padding");
    if (c != std::string::npos) s.erase(c, s.find("*/\n", c) + 3 - c);
    std::string out;
    for (const auto& l : split_lines(s))
      if (!trim(l).empty()) out += l + "\n";
    return out;
  };
  EXPECT_EQ(squeeze(*kept), squeeze(*plain));
  EXPECT_EQ(run_host(*kept, "on", "200"), "relaxable=1\n");
  expect_patch_agrees(test::kModernDriver, padded);

  // Short gaps are blank lines; edits that grow the text are untouched.
  std::vector<TextEdit> small{{0, "a\nb\nc\n", "x\n"}, {6, "", "y\nz\n"}};
  auto s = preserve_line_count(small);
  EXPECT_EQ(s[0].new_text, "\n\nx\n");
  EXPECT_EQ(s[1].new_text, "y\nz\n");
}

TEST(PreserveLineCount, LeavesTheRelaxTransformItselfAlone) {
  auto tr = relax_transform(test::kModernDriver, kPath);
  ASSERT_TRUE(tr.ok());
  ASSERT_EQ(tr->edits.size(), 1u);
  EXPECT_EQ(tr->edits[0].new_text,
            "{\n\t/* relax-rmrr: every RMRR is relaxable, as with intel_iommu=relax_rmrr */\n\t(void)dev;\n\treturn true;\n}");
}

}  // namespace
