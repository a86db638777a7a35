// symbols_from_elf on a program gcc builds in the test, with binutils' nm as the independent oracle: same
// names, addresses and type letters; gcc's clones (.cold, .isra, .constprop, .part) split back to their base.
#include "analysis/symbols.h"
#include "elf/elf_file.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace rr;
using namespace rr::analysis;

namespace {

// Two translation units with a same-name static function each (sympos 1 and 2), and code gcc -O2 splits into
// .cold parts and specialises into .isra/.constprop clones.
const char* kUnitA = R"(
#include <stdlib.h>
__attribute__((noinline)) static int helper(int x) { return x * 3 + 1; }
int use_a(int x) { return helper(x); }
__attribute__((noinline)) static int scale(int unused, int x, int k) { return x * k; }
int clone_me(int x) { return scale(0, x, 7) + scale(1, x + 1, 7); }
__attribute__((noinline)) int splitter(int x) {
  if (__builtin_expect(x == 12345, 0)) { abort(); }
  return x + 2;
}
int global_data = 42;
static int local_data[4] = {1, 2, 3, 4};
const int ro_data = 7;
int bss_data;
__attribute__((weak)) int weak_fn(void) { return local_data[1]; }
)";
const char* kUnitB = R"(
__attribute__((noinline)) static int helper(int x) { return x - 5; }
int use_b(int x) { return helper(x) * 2; }
int use_a(int);
int clone_me(int);
int splitter(int);
int weak_fn(void);
int main(int argc, char** argv) { (void)argv; return use_a(argc) + use_b(argc) + clone_me(argc) + splitter(argc) + weak_fn(); }
)";

struct NmSymbol {
  uint64_t address;
  char type;
};

TEST(ElfFromGcc, AgreesWithNm) {
  test::TempDir dir;
  auto d = dir.path();
  ASSERT_TRUE(write_file_text(d / "a.c", kUnitA));
  ASSERT_TRUE(write_file_text(d / "b.c", kUnitB));
  auto cc =
      test::run_command(fmt::format("cd {} && gcc -O2 -fno-inline-functions-called-once -fno-pie -no-pie "
                                    "-o prog a.c b.c",
                                    d.string()));
  ASSERT_EQ(cc.exit_code, 0) << cc.output;
  auto nm = test::run_command(fmt::format("nm --defined-only {}/prog", d.string()));
  ASSERT_EQ(nm.exit_code, 0) << nm.output;

  auto elf = elf::ElfFile::open(d / "prog");
  ASSERT_TRUE(elf.ok()) << elf.error().message;
  auto table = symbols_from_elf(*elf);
  ASSERT_TRUE(table.ok()) << table.error().message;

  size_t compared = 0;
  for (const auto& line : split_lines(nm.output)) {
    auto w = split_ws(line);
    if (w.size() != 3) continue;
    char type = w[1][0];
    // nm's 'a'/'A' (absolute, e.g. file-level markers) and 'N'/'n' (debug) are not kernel symbol kinds.
    if (type == 'a' || type == 'A' || type == 'N' || type == 'n' || type == 'U') continue;
    auto address = parse_uint(w[0], 16);
    ASSERT_TRUE(address.has_value()) << line;
    auto found = table->find(w[2]);
    bool match = false;
    for (const Symbol* s : found)
      if (s->address == *address && s->type == type) match = true;
    EXPECT_TRUE(match) << "nm says '" << line << "'; we have " << found.size() << " symbol(s) of that name"
                       << (found.empty() ? std::string() : fmt::format(", first {:#x} {}", found[0]->address, found[0]->type));
    ++compared;
  }
  EXPECT_GT(compared, 10u);

  // The two static helpers: sympos 1 and 2 by address.
  auto helpers = table->find_vmlinux("helper");
  ASSERT_EQ(helpers.size(), 2u);
  EXPECT_LT(helpers[0]->address, helpers[1]->address);
  EXPECT_EQ(table->sympos(*helpers[0]), 1u);
  EXPECT_EQ(table->sympos(*helpers[1]), 2u);
  EXPECT_EQ(table->sympos(*table->first("use_a")), 0u);
  EXPECT_EQ(table->first("global_data")->type, 'D');
  EXPECT_EQ(table->first("ro_data")->type, 'R');
  EXPECT_EQ(table->first("bss_data")->type, 'B');
  EXPECT_EQ(table->first("weak_fn")->type, 'W');

  // Whatever clones gcc made split back to a base that exists in the program's source.
  std::set<std::string> bases{"helper", "scale", "splitter", "clone_me", "use_a", "use_b", "main", "weak_fn"};
  size_t clones = 0;
  for (const Symbol& s : table->symbols()) {
    NameParts p = split_variant(s.name);
    if (p.suffix.empty()) continue;
    if (!bases.count(p.base)) continue;  // libc start files bring their own
    ++clones;
    bool listed = false;
    for (const Symbol* v : table->variants(p.base)) listed |= v == &s;
    EXPECT_TRUE(listed) << s.name;
  }
  EXPECT_GT(clones, 0u) << "gcc -O2 made no .cold/.isra/.constprop clone of the test functions";
}

}  // namespace
