// diff::compare and compiler-numbered constants: adding a string or a constant before a function renumbers
// the .LC labels of everything after it; that must not count as a change (the full kernel patch adds
// strings to intel_iommu_setup(), which renumbered a .rodata.cst constant of intel_iommu_probe_device()).
#include "common/file.h"
#include "diff/function_diff.h"
#include "elf/object.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <set>

using namespace rr;

namespace {

std::filesystem::path compile_object(const test::TempDir& d, const std::string& name, const std::string& code) {
  auto src = d.path() / (name + ".c");
  EXPECT_TRUE(write_file_text(src, code).ok());
  auto obj = d.path() / (name + ".o");
  auto r = test::run_command(
      fmt::format("gcc -O2 -fno-pic -mcmodel=kernel -ffunction-sections -fdata-sections -c -o {} {}", obj.string(), src.string()));
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
  auto a = compile_object(d, "a", kUser);
  // A new function with its own constants and a string, placed before: scale()'s .LC labels move.
  auto b = compile_object(d, "b", std::string(R"(
int puts(const char *);
double first(double x) { puts("a new string"); return x * 7.75 + 1.125; }
)") + kUser);
  std::string why;
  EXPECT_EQ(changed(a, b, why), (std::set<std::string>{"first:added"})) << why;
  // A constant that really changed is a change.
  auto c = compile_object(d, "c", "\ndouble scale(double x) { return x * 3.5 + 0.5; }\n");
  why.clear();
  EXPECT_EQ(changed(a, c, why), (std::set<std::string>{"scale:changed"})) << why;
}

// The kernel's __UNIQUE_ID(prefix) pastes __COUNTER__ into a name. Before 5.16, container_of() used
// compiletime_assert(), which takes a __COUNTER__ too: the relax transform, which drops to_pci_dev() from
// device_rmrr_is_relaxable(), renumbers every __UNIQUE_ID after it (seen on Debian 11's 5.10: the
// __ADDRESSABLE pointers of the PCI quirks, all in .discard.addressable).
constexpr const char* kCounterPrelude = R"(
#define ___PASTE(a, b) a##b
#define __PASTE(a, b) ___PASTE(a, b)
#define __UNIQUE_ID(prefix) __PASTE(__PASTE(__UNIQUE_ID_, prefix), __COUNTER__)
#define ASSERT_(cond, id) do { extern void id(void) __attribute__((error("no"))); if (!(cond)) id(); } while (0)
#define ASSERT(cond) ASSERT_(cond, __PASTE(__compiletime_assert_, __COUNTER__))
#define ADDRESSABLE_(sym, id) static void *id __attribute__((section(".discard.addressable"), used)) = (void *)&sym;
#define ADDRESSABLE(sym) ADDRESSABLE_(sym, __UNIQUE_ID(__addressable_##sym))
#define FLAG_(id) ({ static int id; &id; })
#define FLAG() FLAG_(__UNIQUE_ID(flag))
)";
constexpr const char* kCounterTail = R"(
int quirk(int x) { return x + 1; }
ADDRESSABLE(quirk)
int counted(void) { int *seen = FLAG(); return ++*seen; }
)";

TEST(DiffConstants, RenumberedUniqueIdsAreNotAChange) {
  test::TempDir d;
  auto a = compile_object(d, "a",
                          std::string(kCounterPrelude) +
                              "int relaxable(int x) { ASSERT(sizeof(x) == 4); ASSERT(sizeof(long) == 8); return x > 3; }\n" + kCounterTail);
  auto b = compile_object(d, "b", std::string(kCounterPrelude) + "int relaxable(int x) { (void)x; return 1; }\n" + kCounterTail);
  auto oa = obj::load(a);
  auto ob = obj::load(b);
  ASSERT_TRUE(oa.ok() && ob.ok());
  // The counter really moved: the flag's name differs between the two objects.
  auto flag_name = [](const obj::Object& o) {
    for (const auto& s : o.symbols)
      if (s.name.starts_with("__UNIQUE_ID_flag")) return s.name;
    return std::string();
  };
  ASSERT_FALSE(flag_name(*oa).empty());
  ASSERT_NE(flag_name(*oa), flag_name(*ob));
  EXPECT_EQ(obj::strip_number_suffixes(flag_name(*oa)), "__UNIQUE_ID_flag");
  EXPECT_EQ(obj::strip_number_suffixes("__UNIQUE_ID___addressable_quirk656"), "__UNIQUE_ID___addressable_quirk");
  EXPECT_EQ(obj::strip_number_suffixes("__UNIQUE_ID_"), "__UNIQUE_ID_");
  EXPECT_EQ(obj::strip_number_suffixes("quirk656"), "quirk656");  // only __UNIQUE_ID names carry a counter
  auto diff = diff::compare(*oa, *ob);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  std::set<std::string> fns;
  for (const auto& f : diff->functions) fns.insert(f.name + ":" + diff::status_name(f.status) + " (" + f.reason + ")");
  EXPECT_EQ(fns.size(), 1u) << ::testing::PrintToString(fns);
  EXPECT_EQ(fns.begin()->substr(0, fns.begin()->find(' ')), "relaxable:changed");
  // counted()'s static (writable .bss, renumbered) is the same variable; the discarded pointer is no data.
  for (const auto& x : diff->data) ADD_FAILURE() << "data " << x.name << ": " << diff::status_name(x.status) << " in " << x.section;
}

TEST(DiffConstants, DiscardedSectionsAreNoData) {
  test::TempDir d;
  auto a = compile_object(d, "a", std::string(kCounterPrelude) + kCounterTail);
  // The patched file drops the __ADDRESSABLE pointer and changes a real variable.
  auto b = compile_object(d, "b", std::string(kCounterPrelude) + R"(
int quirk(int x) { return x + 1; }
int counted(void) { int *seen = FLAG(); return ++*seen; }
int real_data = 4;
)");
  auto oa = obj::load(a);
  auto ob = obj::load(b);
  ASSERT_TRUE(oa.ok() && ob.ok());
  auto diff = diff::compare(*oa, *ob);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  ASSERT_EQ(diff->data.size(), 1u);
  EXPECT_EQ(diff->data[0].name, "real_data");
  EXPECT_EQ(diff->data[0].status, diff::Status::added);
}

}  // namespace
