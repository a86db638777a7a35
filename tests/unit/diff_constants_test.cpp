// diff::compare and compiler-numbered constants: adding a string or a constant before a function renumbers
// the .LC labels of everything after it; that must not count as a change (issue 8: the full kernel patch adds
// strings to intel_iommu_setup(), which renumbered a .rodata.cst constant of intel_iommu_probe_device()).
#include "diff/function_diff.h"
#include "diff/object.h"
#include "common/file.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <set>

using namespace rr;

namespace {

std::filesystem::path compile(const test::TempDir& d, const std::string& name, const std::string& code) {
  auto src = d.path() / (name + ".c");
  EXPECT_TRUE(write_file_text(src, code).ok());
  auto obj = d.path() / (name + ".o");
  auto r = test::run_command(fmt::format("gcc -O2 -fno-pic -mcmodel=kernel -ffunction-sections -fdata-sections -c -o {} {}",
                                         obj.string(), src.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return obj;
}

std::set<std::string> changed(const std::filesystem::path& a, const std::filesystem::path& b, std::string& why) {
  auto oa = obj::load(a);
  auto ob = obj::load(b);
  EXPECT_TRUE(oa.ok() && ob.ok());
  if (!oa || !ob) return {};
  auto d = diff::compare(*oa, *ob);
  EXPECT_TRUE(d.ok());
  if (!d) return {};
  std::set<std::string> out;
  for (const auto& f : d->functions) {
    out.insert(f.name + ":" + diff::status_name(f.status));
    why += " " + f.name + ": " + f.reason + ";";
  }
  return out;
}

constexpr const char* kUser = R"(
double scale(double x) { return x * 3.25 + 0.5; }
)";

TEST(DiffConstants, RenumberedConstantPoolLabelsAreNotAChange) {
  test::TempDir d;
  auto a = compile(d, "a", kUser);
  // A new function with its own constants and a string, placed before: scale()'s .LC labels move.
  auto b = compile(d, "b", std::string(R"(
int puts(const char *);
double first(double x) { puts("a new string"); return x * 7.75 + 1.125; }
)") + kUser);
  std::string why;
  EXPECT_EQ(changed(a, b, why), (std::set<std::string>{"first:added"})) << why;
  // A constant that really changed is a change.
  auto c = compile(d, "c", "\ndouble scale(double x) { return x * 3.5 + 0.5; }\n");
  why.clear();
  EXPECT_EQ(changed(a, c, why), (std::set<std::string>{"scale:changed"})) << why;
}

}  // namespace
